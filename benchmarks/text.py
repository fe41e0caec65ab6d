"""Regenerate docs/results/text.md (CLINC150 intent detection with out-of-scope queries) from one
result file per cell (method x seed).

    python benchmarks/text.py --data_dir=../shared/data             # run missing cells, rebuild
    python benchmarks/text.py --data_dir=../shared/data --jobs=2    # two cells at a time
    python benchmarks/text.py --methods=deterministic --seeds=0     # one cell
    python benchmarks/text.py --methods=none                        # rebuild the page only

``--jobs=N`` runs N cells at once, each in its own process with ``--threads`` threads (on 2 free
cores, ``--jobs=2 --threads=1`` is the fastest); the longest cells start first. On a CPU shared
with other jobs, run it with ``OMP_WAIT_POLICY=PASSIVE``.
Each finished cell writes a small metrics-only JSON, ``docs/results/raw/text/<method>-seed<k>
.json`` (committed); a cell whose file exists is skipped, so the table fills over several
sittings, and a killed cell continues from its last epoch (every run is started with
``--resume``).

Protocol (written before the runs): CLINC150's published split (15,000 train, 3,000 validation,
4,500 test in-scope queries over 150 intents; 100 + 1,000 out-of-scope queries as ``oos_val``
and ``oos_test``), the vocabulary built from the training texts (4,096 entries), every method
with its script's defaults (``uqbench run text/<method> --help``) over seeds 0, 1, 2; mean +-
standard error over seeds. OOD detection of ``oos_test`` against the in-scope test set:
in-distribution positive for AUROC / AUPR-in / FPR95, OOD positive for AUPR-out and
TNR@95TPR (UB's ``(1-fpr)@95tpr``). The orderings checked (paired over seeds): the deep
ensemble and SNGP have a higher OOD AUROC than deterministic (the issue's targets).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import cells
from uqbench import metrics
from uqbench.training.progress import format_seconds
from uqbench.training.report import markdown_table

RAW = Path("docs/results/raw/text")
SEEDS = 3
TARGET_ACCURACY = 0.90
# Networks trained per run, for the time estimate of cells not yet run (BatchEnsemble: its 4
# members see every query, so about 4 networks' work).
NETWORKS = {"ensemble": 4, "batchensemble": 4, "transformer ensemble": 4}
# label -> (baseline script, extra flags)
METHODS = {
    "deterministic": ("text/deterministic", []),
    "dropout": ("text/dropout", []),
    "ensemble": ("text/ensemble", []),
    "SNGP": ("text/sngp", []),
    "batchensemble": ("text/batchensemble", []),
    "transformer deterministic": ("text/deterministic", ["--model=transformer"]),
    "transformer ensemble": ("text/ensemble", ["--model=transformer"]),
}
COLUMNS = (
    ("accuracy", "test/accuracy"),
    ("NLL", "test/nll"),
    ("ECE", "test/ece"),
    ("AUROC", "ood/oos_test/auroc"),
    ("AUROC entropy", "ood/oos_test/entropy/auroc"),
    ("AUROC MI", "ood/oos_test/mutual_information/auroc"),
    ("AUPR-in", "ood/oos_test/aupr_in"),
    ("AUPR-out", "ood/oos_test/aupr_out"),
    ("FPR95", "ood/oos_test/fpr95"),
    ("TNR@95TPR", "ood/oos_test/tnr_at_95_tpr"),
)
COVERAGES = (0.5, 0.7, 0.8, 0.9, 1.0)
ORDERINGS = (
    ("ensemble", "ood/oos_test/auroc", "higher"),
    ("SNGP", "ood/oos_test/auroc", "higher"),
    ("ensemble", "test/nll", "lower"),
)
# Uncertainty Baselines' published CLINC numbers (baselines/clinc_intent/README.md, commit
# 11dff4b): every row is BERT-base (110M parameters) fine-tuned from pretrained weights, so
# none is comparable with networks trained from scratch here. Their AUPRC is Keras' PR-AUC with
# OOD positive: compare it with AUPR-out.
UB_ROWS = (
    ("Deterministic", "0.186", "0.965", "0.0218", "0.942", "0.853"),
    ("Monte Carlo Dropout (10)", "0.171", "0.965", "0.0170", "0.951", "0.861"),
    ("SNGP", "0.139", "0.969", "0.0104", "0.969", "0.908"),
    ("SNGP Ensemble (10)", "0.118", "0.974", "0.0094", "0.973", "0.910"),
    ("Ensemble (10)", "0.169", "0.975", "0.0128", "0.958", "0.862"),
)


def slug(label: str) -> str:
    return label.replace(" ", "_")


def raw_path(label: str, seed: int) -> Path:
    return RAW / f"{slug(label)}-seed{seed}.json"


def selective_accuracy(run_dir: Path) -> dict[str, float]:
    """Accuracy on the most confident fraction of the test set, at each of :data:`COVERAGES`
    (from the saved predictions)."""
    saved = np.load(run_dir / "predictions" / "test.npz")
    probs, labels = saved["probs"], saved["labels"]
    return {
        f"{c:g}": metrics.accuracy_at_coverage(probs, labels, c)
        if c < 1
        else metrics.accuracy(probs, labels)
        for c in COVERAGES
    }


def run_cell(label: str, seed: int, data_dir: str, runs_dir: Path, threads: int) -> dict:
    """Run (or resume, or read back) one cell and return its record."""
    script, extra = METHODS[label]
    out = runs_dir / slug(label) / f"seed{seed}"
    flags = [
        "--dataset=clinc150",
        f"--data_dir={data_dir}",
        f"--seed={seed}",
        "--device=cpu",
        f"--threads={threads}",
        *extra,
    ]
    summary = cells.finished_run(out)
    if summary is None:
        summary = cells.run_baseline(script, flags, out)
    recipe = summary.get("recipe", {})
    return {
        "method": label,
        "seed": seed,
        "command": f"uqbench run {script} " + " ".join(flags),
        **cells.provenance(summary, threads),
        "epochs": recipe.get("epochs"),
        "timings": summary.get("timings", {}),
        "validation": summary.get("validation", {}),
        "selective_accuracy": selective_accuracy(out),
        "metrics": summary["metrics"],
    }


def run_and_save(
    label: str, seed: int, data_dir: str, runs_dir: Path, threads: int, path: Path
) -> str:
    """Run one cell, write its record to ``path``; returns the line that reports it."""
    start = time.perf_counter()
    record = run_cell(label, seed, data_dir, runs_dir, threads)
    cells.write_json(path, record)
    return (
        f"{label} seed {seed}: accuracy {record['metrics']['test/accuracy']:.4f}, "
        f"AUROC {record['metrics']['ood/oos_test/auroc']:.4f} in "
        f"{format_seconds(time.perf_counter() - start)} -> {path}"
    )


def run_pending(pending: list[tuple[str, int]], args: argparse.Namespace) -> None:
    """Every pending ``(label, seed)`` cell, ``args.jobs`` at a time, each in a fresh process
    (the baselines parse flags and set threads per process); the longest cells first. A cell
    that fails stops the table with its error after the running ones finish."""
    pending = sorted(pending, key=lambda cell: -NETWORKS.get(cell[0], 1))
    calls = [
        (
            run_and_save,
            (label, seed, args.data_dir, args.runs_dir, args.threads, raw_path(label, seed)),
        )
        for label, seed in pending
    ]
    seconds = cells.run_in_pool(calls, args.jobs)
    print(
        f"{len(pending)} cell(s) in {format_seconds(seconds)} of wall time "
        f"({args.jobs} job(s), {args.threads} thread(s) each)",
        flush=True,
    )


def checks(found: cells.Cells) -> list[str]:
    """The orderings against deterministic, by paired differences over shared seeds; "holds"
    only beyond two standard errors."""
    out = []
    for method, key, better in ORDERINGS:
        diffs = cells.paired_differences(found, method, key)
        if len(diffs) == 0:
            out.append(f"- {method} {key} {better} than deterministic: pending (no paired runs)")
            continue
        weak = "same direction, not significant (or one seed)"
        mean, se, verdict = cells.verdict(diffs, better, weak)
        out.append(
            f"- {method} {key} {better} than deterministic: difference {mean:+.4f} ± {se:.4f} "
            f"over {len(diffs)} paired seed(s): {verdict}"
        )
    return out


def estimate(found: cells.Cells) -> str:
    """The whole table's training time: measured cells as they took, the others from the mean
    time per network-epoch of their model (TextCNN or transformer) in the measured cells."""
    per_epoch: dict[str, list[float]] = {}
    for label, records in found.items():
        model = "transformer" if label.startswith("transformer") else "textcnn"
        for r in records:
            per_epoch.setdefault(model, []).append(
                r["metrics"]["cost/train_seconds"] / (r["epochs"] * NETWORKS.get(label, 1))
            )
    total, guessed = 0.0, []
    for label, records in found.items():
        model = "transformer" if label.startswith("transformer") else "textcnn"
        measured = [r["metrics"]["cost/train_seconds"] for r in records]
        missing = SEEDS - len(measured)
        total += sum(measured)
        if missing and model in per_epoch:
            total += missing * NETWORKS.get(label, 1) * 10 * float(np.mean(per_epoch[model]))
        elif missing:
            guessed.append(label)
    if guessed:
        return f"Estimate of the whole table: pending (no measured epoch for {', '.join(guessed)})."
    if all(len(records) == SEEDS for records in found.values()):
        return (
            f"Training of the {len(METHODS) * SEEDS} cells added up (one thread each): "
            f"{format_seconds(total)}."
        )
    return (
        f"Estimate of the whole table's training ({len(METHODS)} methods x {SEEDS} seeds, 10 "
        f"epochs each, one thread each, added up) at these speeds: {format_seconds(total)}."
    )


def page(found: cells.Cells) -> str:
    rows, selective, timing = [], [], []
    for label, records in found.items():
        if not records:
            continue
        params = f"{records[0]['metrics']['cost/params']:,.0f}"
        rows.append([*cells.metric_row(label, records, COLUMNS, SEEDS), params])
        selective.append(
            [cells.row_name(label, records, SEEDS)]
            + [
                cells.mean_se([r["selective_accuracy"][f"{c:g}"] for r in records])
                for c in COVERAGES
            ]
        )
        per_epoch = [
            r["metrics"]["cost/train_seconds"] / (r["epochs"] * NETWORKS.get(label, 1))
            for r in records
        ]
        timing.append(f"{label}: {np.mean(per_epoch):.1f} s per epoch of one network")
    lines_estimate = estimate(found)
    done = sum(len(v) for v in found.values())
    missing = cells.missing_cells(found, SEEDS)
    records = [r for v in found.values() for r in v]
    target = [
        f"TextCNN accuracy target (>= {TARGET_ACCURACY}): "
        + (
            f"{np.mean([r['metrics']['test/accuracy'] for r in found['deterministic']]):.4f} "
            f"over {len(found['deterministic'])} seed(s)"
            if found["deterministic"]
            else "pending"
        )
    ]
    lines = [
        "# Text baselines: CLINC150 intent detection with out-of-scope queries",
        "",
        "Built by `python benchmarks/text.py` from the per-cell files in `docs/results/raw/text/`"
        " (each records its command, machine, torch version and commit); the protocol is in the "
        "script's docstring. Every network is trained from scratch (no pretrained weights): "
        "the TextCNN (Kim 2014) for every method, the small transformer for deterministic and "
        "the ensemble. Mean ± standard error over seeds 0-2. NLL in nats per example, ECE with "
        "15 equal-width bins; OOD: in-scope test (4,500) against `oos_test` (1,000), scores "
        "max probability (AUROC, AUPR, FPR95, TNR), entropy and, for methods with members, "
        "mutual information. train: training seconds per run on the machine below.",
        "",
        cells.provenance_line(records, done, len(METHODS) * SEEDS, "thread(s)"),
        "",
    ]
    if rows:
        headers = ["method", *(c for c, _ in COLUMNS), "train", "ms/example", "params"]
        lines += [markdown_table(headers, rows), ""]
    if missing:
        lines += [
            f"Pending cells (run `python benchmarks/text.py --data_dir=DIR`): "
            f"{', '.join(missing)}.",
            "",
        ]
    lines += [*target, "", "## Checks", "", *checks(found), "", *READING]
    if selective:
        lines += [
            "## Selective prediction",
            "",
            "Accuracy on the most confident fraction (coverage) of the in-scope test set, "
            "confidence = max probability.",
            "",
            markdown_table(["method", *(f"{c:g}" for c in COVERAGES)], selective),
            "",
        ]
    lines += [
        "## Cost",
        "",
        *(f"- {t}" for t in timing),
        "",
        *SIZING,
        lines_estimate,
        "",
        "## Reference: Uncertainty Baselines on CLINC (BERT, not comparable)",
        "",
        "Published in Uncertainty Baselines' `baselines/clinc_intent/README.md` (commit "
        "11dff4b). Every row is BERT-base (110M parameters) fine-tuned from pretrained weights "
        "on TPUs, so none is comparable with the networks trained from scratch above; UB has "
        "no published numbers for a network trained from scratch. Their AUPRC takes OOD as "
        "positive: compare it with AUPR-out.",
        "",
        markdown_table(
            ["method (BERT-base)", "test NLL", "test accuracy", "test ECE", "AUROC", "AUPRC"],
            [list(r) for r in UB_ROWS],
        ),
        "",
    ]
    return "\n".join(lines)


# How to read the table: written after looking at the seed-0 results.
READING = (
    "Reading (written 2026-12-03 from the 21 cells above). The TextCNN trained from scratch "
    "reaches 0.898 in-scope accuracy (0.897, 0.897, 0.899), just short of the 0.90 target; the "
    "4-member ensemble (0.919) and BatchEnsemble (0.904) pass it, MC dropout (0.891) and SNGP "
    "(0.892) do not. The ensemble detects out-of-scope queries better than deterministic "
    "(AUROC +0.015 ± 0.001, every seed; AUPR-out 0.759 against 0.699, FPR95 0.29 against 0.39) "
    "and has lower NLL (-0.081 ± 0.005): that target holds. SNGP's does not: +0.002 ± 0.002, "
    "within noise, and this with its mean-field factor chosen on validation (UB's 0.1 gave test "
    "AUROC 0.911, below deterministic, on the first seed-0 run); there the GP's predictive "
    "variance hardly differed between in-scope and out-of-scope queries (0.066 against 0.072 "
    "on validation) when one convolution layer feeds it. Entropy is a better OOD score than the "
    "max probability for every method on every seed (by 0.0003-0.016), and the members' mutual information is worse than "
    "entropy for every method with members. MC dropout (10 samples of Kim's 0.5 dropout) costs "
    "accuracy and makes the network underconfident (ECE 0.066) while raising AUROC a little "
    "(0.931, every seed). BatchEnsemble gains accuracy (0.904) and a little AUROC (0.928), "
    "both on every seed, at deterministic's NLL. "
    "Averaged members are underconfident here as on CIFAR-10 (ECE 0.032 and 0.041 for the two "
    "ensembles against 0.019). The transformer from scratch reaches 0.872, but its ensemble is "
    "the best OOD detector of the table (AUROC 0.941 against the TextCNN ensemble's 0.937 on "
    "every seed; 0.949 by entropy; AUPR-out 0.778) while "
    "less accurate than the TextCNN ensemble. Every number is below UB's BERT-base rows "
    "(accuracy 0.965-0.975), as expected without pretraining.",
    "",
)
SIZING = (
    "How the defaults were sized: one epoch of the TextCNN (or the transformer) on CLINC150's "
    "15,000 training queries was measured first: 19.5 s (19.6 s) on one thread while other jobs "
    "kept both cores busy. The TextCNN needs about 10 epochs to reach its validation accuracy "
    "(0.896; 0.884 after 6, the same 0.896 after 15), so the defaults keep 10 epochs and 4 "
    "ensemble members (UB: 10), and the time came from the network instead: the TextCNN's "
    "convolutions take the embedding dimensions as input channels, the same function as the "
    "paper's layout at 25-30 ms of CPU per training step against 48-53 ms (docs/text.md), and "
    "the table runs two cells at a time on one thread each. Measured: `python "
    "benchmarks/text.py --data_dir=../shared/data --jobs=2 --threads=1` ran all 21 cells in "
    "**42m16s** of wall time on this machine's 2 cores (2026-12-03; a lower-priority job "
    "waited beside it), within the 45 minutes asked for; the per-epoch times above are one "
    "thread's while the other core ran another cell.",
    "",
)


def main() -> int:
    global RAW
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data_dir", default=os.environ.get("UQBENCH_DATA_DIR", "../shared/data"))
    parser.add_argument("--methods", default=",".join(METHODS), help="comma separated, or none")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1, help="threads per cell")
    parser.add_argument("--jobs", type=int, default=1, help="cells at once")
    parser.add_argument("--runs_dir", default="runs/benchmark/text")
    parser.add_argument("--raw_dir", default=str(RAW))
    parser.add_argument("--output", default="docs/results/text.md", help="- for stdout")
    args = parser.parse_args()
    RAW = Path(args.raw_dir)
    args.runs_dir = Path(args.runs_dir)
    methods = [m.strip() for m in args.methods.split(",") if m.strip() and m.strip() != "none"]
    unknown = set(methods) - set(METHODS)
    if unknown:
        parser.error(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    if methods and not (Path(args.data_dir) / "clinc150" / "data_full.json").is_file():
        parser.error(f"no clinc150/data_full.json under {args.data_dir} (give --data_dir)")
    if args.jobs < 1 or args.threads < 1:
        parser.error("--jobs and --threads must be at least 1")
    seeds = [int(s) for s in args.seeds.split(",")]
    pending = [(m, k) for k in seeds for m in methods if not raw_path(m, k).is_file()]
    if pending:
        run_pending(pending, args)
    cells.write_page(page(cells.load_cells(METHODS, raw_path, SEEDS)), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
