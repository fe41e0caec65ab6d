"""Where SNGP's accuracy gap under ``cpu32`` comes from: its spectral bound or its GP output
layer; writes docs/results/sngp_gap_cpu32.md.

    python benchmarks/sngp_gap_cpu32.py --cifar=../shared/data/cifar10/cifar10-jpeg75.tar.gz

Why: in the CIFAR-10 CPU table (docs/results/image.md) SNGP on resnet8 reaches about 0.68 test
accuracy where a deterministic resnet8 with the same recipe (``deterministic (resnet8)``)
reaches about 0.76, at either spectral bound (docs/results/sngp_cpu32.md).

Protocol (written before the runs): ``image/sngp`` under ``cpu32`` with the table's settings
(resnet8, 8 epochs, ship and truck held out, c = 3, lambda = 1), seeds 0 and 1, with one of
SNGP's two parts switched off by Uncertainty Baselines' own flags: ``--nouse_gp_layer`` (bounded
convolutions, dense output layer) and ``--nouse_spec_norm`` (unbounded convolutions, GP output
layer). The full SNGP and the deterministic resnet8 are the table's cells of the same seeds
(``docs/results/raw/cifar10-cpu/``), not rerun. Reported: validation and test accuracy and NLL
per arm and seed, and each part's share of the gap, deterministic minus arm, paired by seed.
This explains a result; nothing is chosen from it, so test numbers are shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import cells
from uqbench.training.report import markdown_table

SEEDS = (0, 1)
TABLE = Path("docs/results/raw/cifar10-cpu")
# label -> extra flags of image/sngp (None: the table's cell of that name)
ARMS = {
    "deterministic (resnet8)": None,
    "SNGP": None,
    "spectral bound only (--nouse_gp_layer)": ["--nouse_gp_layer"],
    "GP layer only (--nouse_spec_norm)": ["--nouse_spec_norm"],
}
TABLE_CELLS = {"deterministic (resnet8)": "deterministic_resnet8", "SNGP": "SNGP"}
KEYS = ("val/accuracy", "val/nll", "test/accuracy", "test/nll")


def slug(label: str) -> str:
    return label.split(" (")[0].replace(" ", "_")


def run_arm(label: str, seed: int, cifar: str, runs_dir: Path, raw: Path) -> dict:
    """The record of one arm and seed: the table's cell, or a run made here (resumed)."""
    if label in TABLE_CELLS:
        path = TABLE / f"{TABLE_CELLS[label]}-seed{seed}.json"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run the CIFAR-10 table (benchmarks/image.py)")
        return json.loads(path.read_text())
    path = raw / f"{slug(label)}-seed{seed}.json"
    if path.is_file():
        record = json.loads(path.read_text())
        switches = {
            "use_gp_layer": "--nouse_gp_layer" not in ARMS[label],
            "use_spec_norm": "--nouse_spec_norm" not in ARMS[label],
        }
        found = {k: (record.get("sngp") or {}).get(k) for k in switches}
        if found != switches or record.get("seed") != seed:
            raise SystemExit(f"{path} is not {label} seed {seed} ({found}); remove it to rerun")
        return record
    flags = [
        f"--dataset={cifar}",
        f"--seed={seed}",
        "--protocol=cpu32",
        "--device=cpu",
        "--holdout_classes=ship,truck",
        *ARMS[label],
    ]
    summary = cells.run_baseline("image/sngp", flags, runs_dir / slug(label) / f"seed{seed}")
    record = {
        "method": label,
        "seed": seed,
        "command": "uqbench run image/sngp " + " ".join(flags),
        **cells.provenance(summary, torch.get_num_threads()),
        "sngp": summary.get("sngp"),
        "validation": summary.get("validation", {}),
        "metrics": summary["metrics"],
    }
    cells.write_json(path, record)
    return record


def value(record: dict, key: str) -> float:
    """A validation (``val/``) or test metric of a record."""
    return record["validation" if key.startswith("val/") else "metrics"][key]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar", required=True, help="the CIFAR-10 image-folder archive")
    parser.add_argument("--runs_dir", default="runs/benchmark/sngp_gap_cpu32")
    parser.add_argument("--raw", default="docs/results/raw/sngp_gap_cpu32")
    parser.add_argument("--output", default="docs/results/sngp_gap_cpu32.md")
    args = parser.parse_args()
    found = {
        label: [run_arm(label, s, args.cifar, Path(args.runs_dir), Path(args.raw)) for s in SEEDS]
        for label in ARMS
    }
    rows = [
        [label, str(seed), *(f"{value(r, k):.4f}" for k in KEYS)]
        for label, records in found.items()
        for seed, r in zip(SEEDS, records, strict=True)
    ]
    base = found["deterministic (resnet8)"]
    gaps = []
    for label, records in found.items():
        if label == "deterministic (resnet8)":
            continue
        diffs = {
            k: np.array([value(b, k) - value(r, k) for b, r in zip(base, records, strict=True)])
            for k in ("test/accuracy", "test/nll")
        }
        gaps.append(
            [
                label,
                *(cells.mean_se(list(diffs[k])) for k in diffs),
                ", ".join(f"{d:+.4f}" for d in diffs["test/accuracy"]),
            ]
        )
    page = [
        "# Where SNGP's accuracy gap under `cpu32` comes from",
        "",
        f"Generated by `python benchmarks/sngp_gap_cpu32.py` (raw: `{args.raw}/`; the SNGP and "
        "deterministic resnet8 rows are the CIFAR-10 table's cells). Protocol: the script's "
        "docstring, written before the runs.",
        "",
        markdown_table(["arm", "seed", *KEYS], rows),
        "",
        "Deterministic resnet8 minus each arm, mean ± standard error over the paired seeds "
        "(positive accuracy: the arm is less accurate; negative NLL: the arm's NLL is higher):",
        "",
        markdown_table(
            ["arm", "accuracy gap", "NLL gap", "accuracy gap per seed"],
            gaps,
        ),
        "",
        "Reading (written 2026-12-03 from the runs above): the gap is the GP output layer's. With "
        "the spectral bound alone the network is as accurate as deterministic's (gap -0.001 ± "
        "0.003); with the GP layer alone it loses what full SNGP loses (0.079 ± 0.005 against "
        "0.075 ± 0.006). On 8 epochs of resnet8 the random-feature output layer learns a worse "
        "classifier than a dense one; why (the feature scale, the number of features, or the "
        "training length it needs) is not tested here.",
        "",
    ]
    Path(args.output).write_text("\n".join(page))
    print("\n".join(page))
    return 0


if __name__ == "__main__":
    sys.exit(main())
