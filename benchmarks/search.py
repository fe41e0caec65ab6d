"""Regenerate docs/results/search.md: 30-trial digits searches (time, best model) for each
algorithm, and a search killed with SIGKILL at 10 random moments, resumed each time.

    python benchmarks/search.py                      # both parts (about 10 minutes on 2 cores)
    python benchmarks/search.py --kills=0 --output=-  # only the timed searches, to stdout

Targets (issue 4): a 30-trial digits search in under 3 minutes on 2 cores; after every kill and
``--resume``, every trial that had finished is still there with the same result, none twice.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from uqbench.search.store import FINISHED, TrialStore
from uqbench.training.progress import format_seconds
from uqbench.training.report import markdown_table

ALGORITHMS = ("adaptive", "random", "evolution")
TARGET_SECONDS = 180


def search_command(directory: Path, algorithm: str, trials: int, seed: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uqbench",
        "search",
        "--dataset=digits",
        f"--trials={trials}",
        f"--algorithm={algorithm}",
        f"--seed={seed}",
        f"--output_dir={directory}",
        "--quiet",
    ]


def timed_search(directory: Path, algorithm: str, trials: int, seed: int) -> list[str]:
    """One search from the command line; a row of the table."""
    start = time.perf_counter()
    subprocess.run(search_command(directory, algorithm, trials, seed), check=True)
    seconds = time.perf_counter() - start
    summary = json.loads((directory / "summary.json").read_text())
    best = summary["best_trial"]
    counts = summary["trials"]
    return [
        algorithm,
        str(seed),
        f"{counts['done']}/{trials}"
        + (f" ({counts['failed']} failed)" if counts["failed"] else ""),
        format_seconds(seconds),
        "yes" if seconds < TARGET_SECONDS else "NO",
        f"{best['val/nll']:.4f}",
        f"{best['test/accuracy']:.4f}",
        f"{best['test/nll']:.4f}",
        f"{best['params']}",
        f"#{best['trial']}: " + " > ".join(best["architecture"]),
    ]


def kill_and_resume(directory: Path, kills: int, trials: int, seed: int, rng: random.Random):
    """Kill the search at ``kills`` random moments, resume each time to the end, and check
    that every trial finished at the kill is unchanged and that ids run 1..n once."""
    rows, problems = [], []
    db = directory / "search.db"
    for kill in range(1, kills + 1):
        command = search_command(directory, "adaptive", trials, seed)
        resume = ["--resume"] if db.exists() else []
        process = subprocess.Popen([*command, *resume])
        delay = rng.uniform(1.0, 8.0)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        else:
            rows.append([str(kill), f"{delay:.1f}s", "finished before the kill", "", "", "", ""])
            trials += 5
            continue
        before = {t.id: t for t in TrialStore(db).trials()} if db.exists() else {}
        done = {i: t for i, t in before.items() if t.status in FINISHED}
        resume = ["--resume"] if db.exists() else []
        result = subprocess.run([*command, *resume], timeout=900)
        after = {t.id: t for t in TrialStore(db).trials()}
        kept = all(
            i in after and after[i].status == t.status and after[i].objective == t.objective
            for i, t in done.items()
        )
        once = sorted(after) == list(range(1, trials + 1))
        litter = list((directory / "trials").glob(".*.partial-*"))
        if litter:
            problems.append(f"kill {kill}: staging folders left behind: {litter}")
        complete = all(t.status in FINISHED for t in after.values())
        if not kept:
            problems.append(f"kill {kill}: a finished trial changed or vanished")
        if result.returncode != 0 or not once or not complete:
            problems.append(f"kill {kill}: resume exit {result.returncode}, ids {sorted(after)}")
        rows.append(
            [
                str(kill),
                f"{delay:.1f}s",
                f"{len(done)} finished, {len(before) - len(done)} running",
                "yes" if kept else "NO",
                f"{sum(t.status in FINISHED for t in after.values())}/{trials}",
                "yes" if once else "NO",
                "none" if not litter else str(len(litter)),
            ]
        )
        trials += 5  # the next round has new trials to run, so the next kill lands mid-search
    return rows, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--output", default="docs/results/search.md", help="'-' for stdout")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="uqbench-search-bench-") as scratch:
        for algorithm in ALGORITHMS:
            for seed in range(args.seeds):
                directory = Path(scratch) / f"{algorithm}-{seed}"
                rows.append(timed_search(directory, algorithm, args.trials, seed))
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
        kill_rows, problems = [], []
        if args.kills:
            kill_rows, problems = kill_and_resume(
                Path(scratch) / "killed", args.kills, 6, 0, random.Random(0)
            )
    lines = [
        "# Model search (part 1): digits",
        "",
        f"Generated by `python benchmarks/{Path(__file__).name}"
        + "".join(f" {a}" for a in sys.argv[1:])
        + f"` on {platform.machine()} with {torch.get_num_threads()} CPU threads, torch "
        f"{torch.__version__}, {time.strftime('%Y-%m-%d')}, in "
        f"{format_seconds(time.perf_counter() - start)}.",
        "",
        f"## {args.trials}-trial searches (default space, `uqbench search --dataset=digits`)",
        "",
        "Each trial trains on the training split (80% of the official training part), is scored "
        "on the validation split (20%, objective: NLL), and is evaluated once on the test split "
        "for the record.",
        "",
        markdown_table(
            [
                "algorithm",
                "seed",
                "trials done",
                "wall time",
                f"< {TARGET_SECONDS // 60} min",
                "best val NLL",
                "its test accuracy",
                "its test NLL",
                "params",
                "best architecture",
            ],
            rows,
        ),
        "",
        "Evolution's first `population` (20) trials are random draws, the same ones random search makes with the same seed, so with 30 trials its best comes from that phase; the 3-minute target is for the default (adaptive) search, which starts shallow and grows. Comparing algorithms properly (many seeds, equal budgets, CIFAR-10) is part 2's evidence.",
    ]
    if args.kills:
        lines += [
            "",
            f"## SIGKILL at {args.kills} random moments, each followed by `--resume`",
            "",
            "A 6-trial adaptive search (the budget raised by 5 after each resume so that the next"
            " kill lands mid-search) is killed after a random 1-8 s; the store is read, the"
            " search is resumed to its end, and the store and the trials folder are read again.",
            "",
            markdown_table(
                [
                    "kill",
                    "after",
                    "state at the kill",
                    "finished trials kept",
                    "finished after resume",
                    "ids 1..n once",
                    "staging folders left",
                ],
                kill_rows,
            ),
            "",
            "Problems: " + ("; ".join(problems) if problems else "none"),
        ]
    text = "\n".join(lines) + "\n"
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
