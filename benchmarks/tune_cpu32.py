"""Choose the ``cpu32`` protocol (CIFAR-10 on a 2-core CPU) on validation NLL; writes
docs/results/cpu32_protocol.md.

    python benchmarks/tune_cpu32.py --cifar=../shared/data/cifar10/cifar10-jpeg75.tar.gz

Protocol (written before the runs): every candidate trains ``image/deterministic`` once (seed 0)
on the CIFAR-10 JPEG-75 copy with the 10% validation carve-out (the test set is read only for
the record, never for the choice) and the ``cpu32`` recipe's augmentation (2-pixel crops,
flips), one-cycle schedule with 10% warm-up, Nesterov SGD, weight decay 5e-4. The choice: the
lowest validation NLL among candidates whose training fits about 3 minutes on these 2 cores,
judged by the fastest epoch of any run of the same network and batch size times the epochs
(epochs are timed one by one; the fastest is the best estimate of an epoch on free cores, which
the wall-clock total on a shared machine is not). A candidate whose result file exists in ``--raw_dir`` is not run again.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from uqbench import baselines
from uqbench.training.progress import format_seconds
from uqbench.training.report import markdown_table

BUDGET_SECONDS = 200
# (name, model, epochs, batch size, learning rate)
CANDIDATES = (
    ("lenet-30", "lenet", 30, 64, 0.05),
    ("lenet_bn-25", "lenet_bn", 25, 128, 0.1),
    ("lenet_wide-15", "lenet_wide", 15, 128, 0.1),
    ("lenet_wide-20", "lenet_wide", 20, 128, 0.1),
    ("lenet_wide-15-lr0.2", "lenet_wide", 15, 128, 0.2),
    ("lenet_wide-15-lr0.05", "lenet_wide", 15, 128, 0.05),
)


def run(candidate: tuple, cifar: str, runs_dir: Path) -> dict:
    name, model, epochs, batch_size, lr = candidate
    out = runs_dir / name
    summary = baselines.run(
        "image/deterministic",
        [
            f"--dataset={cifar}",
            "--protocol=cpu32",
            "--device=cpu",
            f"--model={model}",
            f"--epochs={epochs}",
            f"--batch_size={batch_size}",
            f"--learning_rate={lr}",
            "--seed=0",
            f"--output_dir={out}",
            "--resume",
            "--quiet",
        ],
    )
    lines = (out / "history.jsonl").read_text().splitlines()
    seconds = [json.loads(line)["seconds"] for line in lines]
    return {
        "name": name,
        "model": model,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": lr,
        "val/nll": summary["validation"]["val/nll"],
        "val/accuracy": summary["validation"]["val/accuracy"],
        "test/accuracy": summary["metrics"]["test/accuracy"],
        "test/nll": summary["metrics"]["test/nll"],
        "params": summary["metrics"]["cost/params"],
        "min_epoch_seconds": min(seconds),
        "median_epoch_seconds": statistics.median(seconds),
        "train_seconds": summary["metrics"]["cost/train_seconds"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cifar", default="../shared/data/cifar10/cifar10-jpeg75.tar.gz")
    parser.add_argument("--runs_dir", default="runs/benchmark/tune_cpu32")
    parser.add_argument("--raw_dir", default="docs/results/raw/tune_cpu32")
    parser.add_argument("--only", default="", help="comma-separated candidate names to run")
    parser.add_argument("--output", default="docs/results/cpu32_protocol.md")
    args = parser.parse_args()
    only = {n for n in args.only.split(",") if n}
    results = []
    for candidate in CANDIDATES:
        path = Path(args.raw_dir) / f"{candidate[0]}.json"
        if not path.is_file():
            if only and candidate[0] not in only:
                continue
            record = run(candidate, args.cifar, Path(args.runs_dir))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
            print(f"{candidate[0]}: val NLL {record['val/nll']:.4f}", flush=True)
        results.append(json.loads(path.read_text()))
    fastest: dict[tuple, float] = {}
    for r in results:
        key = (r["model"], r["batch_size"])
        fastest[key] = min(fastest.get(key, float("inf")), r["min_epoch_seconds"])

    def estimate(r: dict) -> float:
        return fastest[(r["model"], r["batch_size"])] * r["epochs"]

    rows = []
    for r in results:
        cost = estimate(r)
        rows.append(
            [
                r["name"],
                r["model"],
                str(r["epochs"]),
                str(r["batch_size"]),
                f"{r['learning_rate']:g}",
                f"{r['val/nll']:.4f}",
                f"{r['val/accuracy']:.4f}",
                f"{r['test/accuracy']:.4f}",
                f"{r['params']:,.0f}",
                f"{r['min_epoch_seconds']:.1f}s",
                format_seconds(cost) + ("" if cost <= BUDGET_SECONDS else " (over)"),
                format_seconds(r["train_seconds"]),
            ]
        )
    fits = [r for r in results if estimate(r) <= BUDGET_SECONDS]
    best = min(fits, key=lambda r: r["val/nll"]) if fits else None
    text = "\n".join(
        [
            "# The `cpu32` protocol: CIFAR-10 on a 2-core CPU",
            "",
            f"Generated by `python benchmarks/tune_cpu32.py {' '.join(sys.argv[1:])}` from the "
            f"files in `{args.raw_dir}/`. The protocol of the choice is the docstring of that "
            "script: one seed per candidate, validation NLL decides among those whose fastest "
            f"epoch time x epochs is within {BUDGET_SECONDS} s (test accuracy is shown for the "
            "record only). Wall-clock training time was measured while other jobs shared the "
            "two cores, so it is longer than the estimate.",
            "",
            markdown_table(
                [
                    "candidate",
                    "model",
                    "epochs",
                    "batch",
                    "lr",
                    "val NLL",
                    "val acc",
                    "test acc",
                    "params",
                    "fastest epoch (this run)",
                    "estimate",
                    "wall (shared)",
                ],
                rows,
            ),
            "",
            f"Chosen: **{best['name']}**." if best else "No candidate fits the budget.",
            "",
            *NOTES,
        ]
    )
    tmp = Path(args.output).with_suffix(".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")
    return 0


NOTES = (
    "Notes:",
    "",
    "- `lenet_bn-25` and `lenet_wide-15` ran before those names were registered, as "
    "`--model=package.module:factory` networks with the same layers in the same order (so the "
    "same initialisation for a seed); their files say so in `run_as`.",
    "- Also timed, not trained: fast_cifar at widths 16/64/64 and a three-layer conv-BN net "
    "(24/48/96 maps) took 30-40 s per epoch here, 4-5 times lenet_wide's, so at most 5-6 "
    "epochs fit the budget.",
    "- lenet_wide at 15 epochs: learning rates 0.05, 0.1 and 0.2 give validation NLL 0.681, "
    "0.672 and 0.671; 20 epochs at 0.1 gives 0.650, the lowest, so `cpu32` trains 20 epochs "
    "at 0.1 (estimate 20 x 8.2 s = 2.7 min on free cores). The first version of the rule "
    "took each run's own fastest epoch: lenet_wide-20 ran entirely while the cores were shared "
    "(fastest epoch 15.1 s, against 8.2 s for the same network and batch in another run), so it "
    "was counted over budget and lenet_wide-15-lr0.2 (0.671) chosen; an epoch's cost is the "
    "network's and batch size's, not the run's, so the rule now takes the fastest over runs. "
    "The ensemble methods keep `cpu`'s "
    "settings (not tuned on CIFAR-10); SNGP trains resnet8, the smallest residual network, for "
    "8 epochs.",
    "- End to end on a nearly idle machine (load 0.7), the README's command as written with "
    "`OMP_WAIT_POLICY=PASSIVE` set: 20 epochs of 11.0-15.4 s, 4m18s of training, test accuracy "
    "0.7830 (the same as lenet_wide-20 above). The passive wait policy that saves a shared "
    "machine costs about 40% per epoch on a free one.",
    "- The same command on free cores with the default OpenMP policy (2026-12-03, nothing else "
    "running; `time uqbench run image/deterministic --dataset=.../cifar10-jpeg75.tar.gz "
    "--protocol=cpu32 --output_dir=/tmp/c10time --quiet`): 20 epochs of 7.9-10.6 s, **3m11s of "
    "training** (3m24s for the whole command, evaluation included), test accuracy 0.7830: the "
    "'about 3 minutes, at least 72%' of the protocol's brief holds.",
)

if __name__ == "__main__":
    sys.exit(main())
