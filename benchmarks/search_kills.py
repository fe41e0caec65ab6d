"""SIGKILL a 3-worker search and a Ray search at random moments, and check what they kept.

    python benchmarks/search_kills.py                # 10 kills each (about 15 minutes on 2 cores)
    python benchmarks/search_kills.py --kills=2 --output=-

Each round starts (or resumes) a digits search with a budget 6 trials larger than the last, waits
a random 0-8 s once a trial of the round runs, and SIGKILLs one process drawn at random: the driver (`uqbench search`) or one
of its workers (a local worker process, or the Ray worker process running a trial). After a
worker's death the search must finish on its own (exit 0); after the driver's, its processes must
go away and `--resume` must finish it. Then the store is read: every trial finished at the kill
is unchanged, ids run 1..n with each trial once in history.jsonl, none is left running, every
done trial has its run directory, and no staging folder is left. The results replace the
section of docs/results/search.md that starts at ``## SIGKILL with 3 workers``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from uqbench.search.store import FINISHED, TrialStore
from uqbench.training.progress import format_seconds
from uqbench.training.report import markdown_table

HEADING = "## SIGKILL with 3 workers"
RAY_NOTE = (
    "On Ray a worker can be drawn only when a task process is already running a trial at the "
    "kill; such a process starts some seconds after its trial is claimed, so short draws find "
    "none and hit the driver."
)
STEP = 6  # trials added to the budget each round, so that every kill lands mid-search


def command(directory: Path, trials: int, executor: str, resume: bool) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uqbench",
        "search",
        "--dataset=digits",
        f"--trials={trials}",
        f"--output_dir={directory}",
        "--workers=3",
        f"--executor={executor}",
        "--quiet",
        *(["--resume"] if resume else []),
    ]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def workers_of(driver: int, db: Path, executor: str) -> list[int]:
    """The worker processes that may be killed: local workers holding a lease, or Ray worker
    processes (of this driver's Ray) running a trial."""
    if executor == "ray":
        return [p for p in descendants(driver) if cmdline(p).startswith("ray::run_remote_trial")]
    if not db.exists():
        return []
    leases = TrialStore(db).leases().values()
    return [x.pid for x in leases if x.pid and x.pid != driver and not x.revoked and alive(x.pid)]


def started(db: Path, finished_before: int) -> bool:
    """Whether this round's search runs a trial (and so has workers that can be killed)."""
    if not db.exists():
        return False
    trials = TrialStore(db).trials()
    return any(t.status == "running" for t in trials) and (
        len(trials) > finished_before or any(t.attempts > 1 for t in trials)
    )


def check(directory: Path, before: dict, budget: int) -> dict:
    """What the store and the folders say after a round."""
    after = {t.id: t for t in TrialStore(directory / "search.db").trials()}
    kept = all(
        i in after
        and (after[i].status, after[i].objective, after[i].attempts)
        == (t.status, t.objective, t.attempts)
        for i, t in before.items()
        if t.status in FINISHED
    )
    history = [
        json.loads(line)["trial"] for line in (directory / "history.jsonl").read_text().splitlines()
    ]
    once = sorted(after) == list(range(1, budget + 1)) and sorted(history) == sorted(
        i for i, t in after.items() if t.status in FINISHED
    )
    staging = directory / "staging"
    litter = list((directory / "trials").glob(".*partial*")) + (
        list(staging.iterdir()) if staging.exists() else []
    )
    missing = [
        i
        for i, t in after.items()
        if t.status == "done" and not (directory / "trials" / f"{i:04d}" / "summary.json").is_file()
    ]
    return {
        "kept": kept,
        "once": once,
        "finished": sum(t.status in FINISHED for t in after.values()),
        "running": sum(t.status in ("running", "pending") for t in after.values()),
        "litter": litter,
        "missing": missing,
        "rerun": sum(t.attempts > 1 for t in after.values()),
    }


def kill_rounds(executor: str, directory: Path, kills: int, rng: random.Random):
    rows, problems = [], []
    db = directory / "search.db"
    budget = STEP
    directory.parent.mkdir(parents=True, exist_ok=True)
    log = (directory.parent / f"{executor}.log").open("a")
    for kill in range(1, kills + 1):
        driver = subprocess.Popen(
            command(directory, budget, executor, db.exists()), stdout=log, stderr=log
        )
        delay = rng.uniform(0.0, 8.0)
        deadline = time.time() + 120
        while driver.poll() is None and not started(db, budget - STEP) and time.time() < deadline:
            time.sleep(0.05)
        start = time.time()
        while time.time() - start < delay and driver.poll() is None:
            time.sleep(0.05)
        if driver.poll() is not None:
            rows.append([str(kill), f"{delay:.1f}s", "finished before the kill", *[""] * 7])
            budget += STEP
            continue
        victims = workers_of(driver.pid, db, executor)
        victim = rng.choice(["driver", *victims])
        below = descendants(driver.pid)
        os.kill(driver.pid if victim == "driver" else victim, signal.SIGKILL)
        before = {t.id: t for t in TrialStore(db).trials()} if db.exists() else {}
        done = sum(t.status in FINISHED for t in before.values())
        left = []
        if victim == "driver":
            driver.wait()
            code = subprocess.run(
                command(directory, budget, executor, True), stdout=log, stderr=log
            ).returncode
            what = "the driver"
            deadline = time.time() + 120  # Ray's agents notice the lost raylet within ~70 s
            while any(alive(p) for p in below) and time.time() < deadline:
                time.sleep(0.5)
            left = [f"{p} {cmdline(p)[:40]}" for p in below if alive(p)]
            for pid in below:  # ours: started by the killed driver
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        else:
            code = driver.wait()
            what = "a worker"
        state = check(directory, before, budget)
        if not state["kept"]:
            problems.append(f"{executor} kill {kill}: a finished trial changed or vanished")
        if code != 0 or not state["once"] or state["running"] or state["finished"] != budget:
            problems.append(f"{executor} kill {kill}: exit {code}, {state}")
        if state["litter"] or state["missing"]:
            problems.append(f"{executor} kill {kill}: {state['litter']} {state['missing']}")
        if left:
            problems.append(f"{executor} kill {kill}: still alive 2 min after the resume: {left}")
        rows.append(
            [
                str(kill),
                f"{delay:.1f}s",
                what,
                f"{done} finished, {len(before) - done} unfinished",
                "yes" if state["kept"] else "NO",
                f"{code}" + ("" if victim != "driver" else " (after --resume)"),
                f"{state['finished']}/{budget}",
                "yes" if state["once"] else "NO",
                str(state["running"]),
                "none" if not state["litter"] else str(len(state["litter"])),
            ]
        )
        print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
        budget += STEP
    log.close()
    return rows, problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--output", default="docs/results/search.md", help="'-' for stdout")
    parser.add_argument(
        "--scratch", default=None, help="where the searches run (a temporary folder)"
    )
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    sections = []
    with tempfile.TemporaryDirectory(prefix="uqbench-search-kills-", dir=args.scratch) as scratch:
        for executor in args.executors.split(","):
            rows, problems = kill_rounds(
                executor, Path(scratch) / executor / "search", args.kills, random.Random(0)
            )
            title = "3 local worker processes" if executor == "local" else "Ray (3 tasks at once)"
            sections += [
                f"### {title}: `uqbench search --workers=3"
                + (" --executor=ray" if executor == "ray" else "")
                + "`",
                "",
                markdown_table(
                    [
                        "kill",
                        "after",
                        "killed",
                        "store at the kill",
                        "finished trials kept",
                        "exit code",
                        "finished at the end",
                        "ids 1..n once",
                        "left running",
                        "staging folders left",
                    ],
                    rows,
                ),
                "",
                *([RAY_NOTE, ""] if executor == "ray" else []),
                "Problems: " + ("; ".join(problems) if problems else "none"),
                "",
            ]
    lines = [
        HEADING + " and on Ray: SIGKILL of the driver or of a worker",
        "",
        f"Generated by `python benchmarks/{Path(__file__).name}"
        + "".join(f" {a}" for a in sys.argv[1:])
        + f"` ({format_seconds(time.perf_counter() - start)}, {time.strftime('%Y-%m-%d')}). "
        f"Each round adds {STEP} trials to the budget of a digits search (default space), "
        "starts or resumes it, and SIGKILLs the driver or one worker, drawn at random, after a "
        "random 0-8 s once the round's first trial runs. A killed worker's trial is handed back while the search runs (its lock "
        "is free) and run again by another worker, so the search finishes on its own; a killed "
        "driver's workers stop, and `--resume` finishes the search. 'left running' counts trials "
        "still running or pending at the end.",
        "",
        *sections,
    ]
    text = "\n".join(lines)
    if args.output == "-":
        print(text)
        return
    path = Path(args.output)
    old = path.read_text() if path.exists() else ""
    kept = old.split(HEADING, 1)[0].rstrip() + "\n\n" if HEADING in old or old else ""
    path.write_text(kept + text)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
