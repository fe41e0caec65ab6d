"""Regenerate docs/results/uci.md: 9 UCI sets x 3 baselines, all standard splits, next to the
published Deep Ensembles table (Lakshminarayanan et al. 2017, Table 1), with the wall time.

    python benchmarks/uci.py --data_dir=../shared/data            # the whole table
    python benchmarks/uci.py --datasets=boston,yacht --methods=uci/ensemble --output=-

Ours is printed as mean +- standard deviation over splits, the kind of error bar the published
table prints; the run directories (runs/benchmark/uci/...) also hold standard errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from uqbench import baselines
from uqbench.data import resolve_data_dir
from uqbench.training.progress import format_seconds
from uqbench.training.report import markdown_table

DATASETS = ("boston", "concrete", "energy", "kin8nm", "naval", "power", "protein", "wine", "yacht")
METHODS = ("uci/deterministic", "uci/dropout", "uci/ensemble")

# Deep Ensembles paper, Table 1, as printed: (mean, sd over splits) for RMSE and NLL.
PUBLISHED = {
    "boston": {
        "pbp": ((3.01, 0.18), (2.57, 0.09)),
        "dropout": ((2.97, 0.85), (2.46, 0.25)),
        "ensemble": ((3.28, 1.00), (2.41, 0.25)),
    },
    "concrete": {
        "pbp": ((5.67, 0.09), (3.16, 0.02)),
        "dropout": ((5.23, 0.53), (3.04, 0.09)),
        "ensemble": ((6.03, 0.58), (3.06, 0.18)),
    },
    "energy": {
        "pbp": ((1.80, 0.05), (2.04, 0.02)),
        "dropout": ((1.66, 0.19), (1.99, 0.09)),
        "ensemble": ((2.09, 0.29), (1.38, 0.22)),
    },
    "kin8nm": {
        "pbp": ((0.10, 0.00), (-0.90, 0.01)),
        "dropout": ((0.10, 0.00), (-0.95, 0.03)),
        "ensemble": ((0.09, 0.00), (-1.20, 0.02)),
    },
    "naval": {
        "pbp": ((0.01, 0.00), (-3.73, 0.01)),
        "dropout": ((0.01, 0.00), (-3.80, 0.05)),
        "ensemble": ((0.00, 0.00), (-5.63, 0.05)),
    },
    "power": {
        "pbp": ((4.12, 0.03), (2.84, 0.01)),
        "dropout": ((4.02, 0.18), (2.80, 0.05)),
        "ensemble": ((4.11, 0.17), (2.79, 0.04)),
    },
    "protein": {
        "pbp": ((4.73, 0.01), (2.97, 0.00)),
        "dropout": ((4.36, 0.04), (2.89, 0.01)),
        "ensemble": ((4.71, 0.06), (2.83, 0.02)),
    },
    "wine": {
        "pbp": ((0.64, 0.01), (0.97, 0.01)),
        "dropout": ((0.62, 0.04), (0.93, 0.06)),
        "ensemble": ((0.64, 0.04), (0.94, 0.12)),
    },
    "yacht": {
        "pbp": ((1.02, 0.05), (1.63, 0.02)),
        "dropout": ((1.11, 0.38), (1.55, 0.12)),
        "ensemble": ((1.58, 0.48), (1.18, 0.21)),
    },
}


def split_sd(summary: dict, key: str) -> tuple[float, float]:
    """Mean and standard deviation over splits of ``test/<key>`` from a run summary."""
    import numpy as np

    values = np.array([m[f"test/{key}"] for m in summary["splits"].values()])
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def fmt(pair: tuple[float, float], digits: int = 2) -> str:
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data_dir", default=None, help="data directory holding uci/ (default: $UQBENCH_DATA_DIR)"
    )
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--runs_dir", default="runs/benchmark/uci")
    parser.add_argument(
        "--output",
        default="docs/results/uci.md",
        help="Markdown file to write, or - for stdout only",
    )
    parser.add_argument(
        "--extra_flags", default="", help="flags passed to every baseline, space separated"
    )
    args = parser.parse_args()
    data_dir = str(resolve_data_dir(args.data_dir))
    datasets, methods = args.datasets.split(","), args.methods.split(",")
    summaries: dict[tuple[str, str], dict] = {}
    start = time.perf_counter()
    for dataset in datasets:
        for method in methods:
            out = Path(args.runs_dir) / dataset / method.replace("/", "_")
            t0 = time.perf_counter()
            summaries[dataset, method] = baselines.run(
                method,
                [
                    f"--dataset={dataset}",
                    f"--data_dir={data_dir}",
                    "--split=all",
                    f"--output_dir={out}",
                    "--overwrite",
                    *args.extra_flags.split(),
                ],
            )
            print(
                f"[{format_seconds(time.perf_counter() - start)}] {dataset} {method} done in "
                f"{format_seconds(time.perf_counter() - t0)}",
                flush=True,
            )
    total = time.perf_counter() - start

    rows, de_wins, dropout_ok = [], 0, 0
    for dataset in datasets:
        row = [dataset]
        pub = PUBLISHED.get(dataset)
        for metric, index in (("rmse", 0), ("nll", 1)):
            for method in methods:
                row.append(fmt(split_sd(summaries[dataset, method], metric)))
            if pub:
                row += [fmt(pub["dropout"][index]), fmt(pub["ensemble"][index])]
        if pub and "uci/ensemble" in methods:
            de_wins += (
                split_sd(summaries[dataset, "uci/ensemble"], "nll")[0] <= pub["ensemble"][1][0]
            )
        if pub and "uci/dropout" in methods:
            ours = split_sd(summaries[dataset, "uci/dropout"], "nll")[0]
            dropout_ok += ours <= pub["dropout"][1][0] + pub["dropout"][1][1]
        row.append(
            format_seconds(sum(summaries[dataset, m]["timings"]["total_seconds"] for m in methods))
        )
        rows.append(row)
    short = [m.split("/")[-1] for m in methods]
    headers = [
        "data set",
        *(f"RMSE {m}" for m in short),
        "RMSE MC-dropout (pub.)",
        "RMSE Deep Ens. (pub.)",
        *(f"NLL {m}" for m in short),
        "NLL MC-dropout (pub.)",
        "NLL Deep Ens. (pub.)",
        "time",
    ]
    table = markdown_table(headers, rows)
    checks = []
    if "uci/ensemble" in methods:
        checks.append(
            f"- Deep ensemble NLL at or below the published Deep Ensembles NLL: {de_wins} of {len(datasets)} (target: 7 of 9)"
        )
    if "uci/dropout" in methods:
        checks.append(
            f"- MC dropout NLL within or below the published MC-dropout error bar: {dropout_ok} of {len(datasets)} (target: 6 of 9)"
        )
    checks.append(
        f"- Wall time for the whole table: {format_seconds(total)} (target: under 15 minutes)"
    )
    command = "python benchmarks/uci.py " + " ".join(sys.argv[1:])
    report = "\n".join(
        [
            "# UCI regression: 9 data sets x 3 baselines, standard splits (20; protein 5)",
            "",
            f"Generated by `{command.strip()}` on {platform.machine()} with {torch.get_num_threads()} threads, "
            f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}. Ours: mean ± standard deviation over splits "
            "(the published table's kind of error bar; standard errors are in each run's summary.json). "
            "NLL is the mean per-example negative log-likelihood in nats, in the original target units. "
            "Published columns: Lakshminarayanan et al. (2017), Table 1 (40-epoch protocol).",
            "",
            table,
            "",
            *checks,
            "",
        ]
    )
    print(report)
    if args.output != "-":
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.output).with_suffix(".tmp")
        tmp.write_text(report)
        os.replace(tmp, args.output)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
