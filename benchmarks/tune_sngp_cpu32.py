"""Choose SNGP's spectral bound and mean-field factor for the ``cpu32`` protocol on CIFAR-10's
validation NLL; writes docs/results/sngp_cpu32.md.

    python benchmarks/tune_sngp_cpu32.py --cifar=../shared/data/cifar10/cifar10-jpeg75.tar.gz

Why: ``cpu32`` first kept the settings chosen on digits (bound c = 3, factor pi/8). On CIFAR-10
(seed 0) that SNGP reached 0.680 test accuracy where a deterministic resnet8 with the same recipe
reached 0.761, so the digits choice is checked on CIFAR-10 itself.

Protocol (written before the runs): ``image/sngp`` under ``cpu32`` (resnet8, 8 epochs, ship and
truck held out), seed 0, once per spectral bound c in {3, 6} (3: the digits choice; 6: UB's
CIFAR value); for each trained network the mean-field factor lambda in {pi/8, 1, 5, 20} (UB's
CIFAR value is 20; lambda changes only test-time logits, so every lambda of one network is
re-scored from its checkpoint) and -1 (the MAP logits, shown, not a candidate: the adjustment is
what makes the method SNGP). Choice: the lowest validation NLL (the fixed 10% carve-out of the
kept classes; nothing from the test or OOD sets). A run directory that exists is reused (c = 3:
``--runs_dir``/c3, else the table's seed-0 SNGP cell of the first ``cpu32``, which had c = 3 and
lambda = pi/8, when ``--table_run`` holds it).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from uqbench import baselines, data, metrics
from uqbench.data import ood as ood_sets
from uqbench.layers.random_feature_gp import RandomFeatureGaussianProcess
from uqbench.training.classifier import Runtime
from uqbench.training.environment import select_device
from uqbench.training.predictors import load_networks, single
from uqbench.training.report import markdown_table
from uqbench.training.task import VALIDATION_SEED

BOUNDS = (3.0, 6.0)
FACTORS = (("pi/8", math.pi / 8), ("1", 1.0), ("5", 5.0), ("20", 20.0), ("MAP", -1.0))
HOLDOUT = "ship,truck"


def train(bound: float, cifar: str, runs_dir: Path, table_run: Path) -> Path:
    """The run directory of SNGP with ``bound`` (trained here unless it exists)."""
    out = runs_dir / f"c{bound:g}"
    if bound == 3.0 and not out.is_dir() and (table_run / "summary.json").is_file():
        return table_run
    if not (out / "summary.json").is_file():
        baselines.run(
            "image/sngp",
            [
                f"--dataset={cifar}",
                "--protocol=cpu32",
                "--device=cpu",
                f"--holdout_classes={HOLDOUT}",
                f"--spec_norm_bound={bound}",
                "--seed=0",
                f"--output_dir={out}",
                "--resume",
                "--quiet",
            ],
        )
    return out


def score(run: Path, x_val: torch.Tensor, y_val: np.ndarray) -> dict[str, dict[str, float]]:
    """Validation NLL, accuracy and ECE of the run's network under every mean-field factor."""
    runtime = Runtime.for_device(select_device("cpu"))
    networks, metadata = load_networks(run, runtime.device)
    network = networks[0]
    gp = next(m for m in network.modules() if isinstance(m, RandomFeatureGaussianProcess))
    norm = (tuple(metadata["mean"]), tuple(metadata["std"]))
    predict = single(network, norm, runtime, bool(metadata.get("test_flips", False)))
    out = {}
    for name, factor in FACTORS:
        gp.mean_field_factor = factor
        with torch.no_grad():
            logits = torch.cat([predict(x)["logits"] for x in x_val.split(1000)]).numpy()
        probs = torch.from_numpy(logits).softmax(-1).numpy()
        out[name] = {
            "nll": metrics.nll_from_logits(logits, y_val),
            "accuracy": metrics.accuracy(probs, y_val),
            "ece": metrics.ece(probs, y_val),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar", required=True, help="the CIFAR-10 image-folder archive")
    parser.add_argument("--runs_dir", default="runs/benchmark/tune_sngp_cpu32")
    parser.add_argument("--table_run", default="runs/benchmark/image/cifar10-cpu/SNGP/seed0")
    parser.add_argument("--raw", default="docs/results/raw/tune_sngp_cpu32/results.json")
    parser.add_argument("--output", default="docs/results/sngp_cpu32.md")
    args = parser.parse_args()
    images = data.get_images(args.cifar, validation_fraction=0.1, seed=VALIDATION_SEED)
    images, _ = ood_sets.hold_out_classes(images, HOLDOUT.split(","))
    y_val = images.y_val.numpy()
    results = {}
    for bound in BOUNDS:
        run = train(bound, args.cifar, Path(args.runs_dir), Path(args.table_run))
        summary = json.loads((run / "summary.json").read_text())
        trained = (summary["sngp"]["spec_norm_bound"], summary["protocol"], summary["seed"])
        if trained != (bound, "cpu32", 0):
            raise SystemExit(
                f"{run} is (bound, protocol, seed) {trained}, not {(bound, 'cpu32', 0)}"
            )
        results[f"{bound:g}"] = {
            "run": str(run),
            "validation": score(run, images.x_val, y_val),
            "test": {k: summary["metrics"][k] for k in sorted(summary["metrics"]) if "/" in k},
        }
        print(
            f"c = {bound:g}: "
            + ", ".join(
                f"{name} {v['nll']:.4f}" for name, v in results[f"{bound:g}"]["validation"].items()
            ),
            flush=True,
        )
    Path(args.raw).parent.mkdir(parents=True, exist_ok=True)
    Path(args.raw).write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    candidates = [
        (v["validation"][name]["nll"], bound, name)
        for bound, v in results.items()
        for name, _ in FACTORS
        if name != "MAP"
    ]
    best_nll, best_bound, best_factor = min(candidates)
    close = [results[best_bound]["validation"][n]["nll"] for n in ("pi/8", "1", "5", "MAP")]
    spread = max(close) - min(close)
    rows = [
        [f"c = {bound}", *(f"{v['validation'][name]['nll']:.4f}" for name, _ in FACTORS)]
        for bound, v in results.items()
    ]
    keys = ("test/accuracy", "test/nll", "ood/holdout/auroc", "ood/uniform_noise/auroc")
    test_rows = [
        [f"c = {bound}", *(f"{v['test'].get(k, float('nan')):.4f}" for k in keys)]
        for bound, v in results.items()
    ]
    page = [
        "# SNGP's settings under `cpu32` (CIFAR-10 on a CPU)",
        "",
        f"Generated by `python benchmarks/tune_sngp_cpu32.py` (raw: `{args.raw}`). Protocol: "
        "the script's docstring, written before the runs.",
        "",
        "Validation NLL (10% carve-out of the 8 kept classes), mean-field factor in columns:",
        "",
        markdown_table(["bound", *(f"lambda = {n}" for n, _ in FACTORS)], rows),
        "",
        f"Chosen: **c = {best_bound}, lambda = {best_factor}** (validation NLL {best_nll:.4f}).",
        "",
        f"How much the factor matters: for c = {best_bound} the validation NLL over lambda in "
        f"{{pi/8, 1, 5}} and the MAP logits spans {spread:.4f}; a spread this small means the "
        "GP's predictive variance is small on this network, so the mean-field adjustment (what "
        "makes the output layer SNGP's) hardly changes a prediction, and the choice between "
        "these factors is within noise.",
        "",
        "For the record only (not used to choose), each network's test metrics as its run "
        "evaluated it (lambda = the protocol's value when it ran):",
        "",
        markdown_table(["bound", *keys], test_rows),
        "",
        "The CIFAR-10 CPU table's first seed-0 SNGP cell ran with the digits choice (c = 3, "
        "lambda = pi/8) before this check; it is kept as "
        "`docs/results/raw/tune_sngp_cpu32/table-cell-SNGP-seed0-before.json` and the table's "
        "SNGP cells run with the choice above. The accuracy gap to a deterministic resnet8 of the "
        "same recipe (0.761 on seed 0, the table's `deterministic (resnet8)` row) is there at "
        "both bounds, so it does not come from the bound.",
        "",
    ]
    Path(args.output).write_text("\n".join(page))
    print(f"wrote {args.output}; chosen c = {best_bound}, lambda = {best_factor}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
