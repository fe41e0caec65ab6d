"""The per-cell machinery of the benchmark pages (benchmarks/image.py, benchmarks/text.py).

A cell is one method x seed (x setting) of a table: its run directory is run, resumed or read
back, a small metrics-only JSON record of it is written under docs/results/raw/, and the page is
built from those records alone: mean ± standard error over seeds, and orderings checked by
paired differences against deterministic over the seeds both have.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from uqbench import baselines
from uqbench.training.environment import git_commit, versions
from uqbench.training.progress import format_seconds

Cells = dict[str, list[dict]]


def finished_run(out: Path) -> dict | None:
    """The summary of the finished run in ``out``, or None when it has not finished."""
    path = out / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_baseline(script: str, flags: Sequence[str], out: Path) -> dict:
    """Run ``script`` with ``flags`` into ``out`` quietly; a killed run continues (``--resume``)."""
    return baselines.run(script, [*flags, f"--output_dir={out}", "--resume", "--quiet"])


def provenance(summary: Mapping[str, Any], threads: int) -> dict[str, Any]:
    """Where and when a cell ran: the run's commit, versions and device (this process's where the
    summary lacks them), ``threads``, the machine and today's date."""
    return {
        "git_commit": summary.get("git_commit") or git_commit(),
        "versions": summary.get("versions") or versions(),
        "device": summary.get("device"),
        "threads": threads,
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def run_in_pool(calls: Sequence[tuple[Callable[..., str], tuple]], jobs: int) -> float:
    """Each ``(function, args)`` call in a fresh spawned process (the baselines parse flags and
    set threads per process), ``jobs`` at a time in the order given, printing the line each call
    returns as it finishes; returns the wall seconds. A call that fails cancels the queued ones
    and raises its error once the running ones finish."""
    start = time.perf_counter()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=spawn, max_tasks_per_child=1) as pool:
        futures = [pool.submit(function, *args) for function, args in calls]
        try:
            for future in as_completed(futures):
                print(future.result(), flush=True)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # queued calls do not start after a failure
            raise
    return time.perf_counter() - start


def write_json(path: Path, record: dict) -> None:
    """``record`` as sorted, indented JSON at ``path``, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def load_cells(labels: Iterable[str], path: Callable[[str, int], Path], seeds: int) -> Cells:
    """Each label's records of seeds ``0..seeds-1`` whose files exist (``path(label, seed)``)."""
    return {
        label: [
            json.loads(path(label, seed).read_text())
            for seed in range(seeds)
            if path(label, seed).is_file()
        ]
        for label in labels
    }


def mean_se(values: Sequence[float | None]) -> str:
    """``mean ± standard error`` to 4 decimals ("-" when a value is missing); whole numbers over
    100 (e.g. parameter counts) as a plain mean with thousands separators."""
    if not values or any(v is None for v in values):
        return "-"
    array = np.asarray(values, dtype=np.float64)
    if bool(np.all(array == np.round(array)) and array.min() > 100):
        return f"{array.mean():,.0f}"
    if len(array) < 2:
        return f"{array.mean():.4f}"
    return f"{array.mean():.4f} ± {array.std(ddof=1) / np.sqrt(len(array)):.4f}"


def row_name(label: str, records: Sequence[dict], seeds: int) -> str:
    """``label``, with its number of seeds when fewer than all have a result."""
    return label if len(records) == seeds else f"{label} ({len(records)} seed(s))"


def metric_row(
    label: str, records: Sequence[dict], columns: Sequence[tuple[str, str]], seeds: int
) -> list[str]:
    """A table row: the name, mean ± se of each column's metric key, mean training time and
    milliseconds per test example."""
    row = [row_name(label, records, seeds)]
    row += [mean_se([r["metrics"].get(key) for r in records]) for _, key in columns]
    train = [r["metrics"]["cost/train_seconds"] for r in records]
    return [
        *row,
        format_seconds(float(np.mean(train))),
        f"{np.mean([r['metrics']['cost/ms_per_example'] for r in records]):.3f}",
    ]


def missing_cells(cells: Cells, seeds: int) -> list[str]:
    """``<label> seed <k>`` for every cell without a record."""
    return [
        f"{label} seed {seed}"
        for label, records in cells.items()
        for seed in range(seeds)
        if seed not in {r["seed"] for r in records}
    ]


def provenance_line(records: Sequence[dict], done: int, total: int, threads: str) -> str:
    """``<done> of <total> cells``, the machines (``threads``: how to name the thread count),
    torch versions and commits the records come from ("-" where there are none)."""
    machines = sorted({f"{r['machine']}, {r['device']}, {r['threads']} {threads}" for r in records})
    return (
        f"{done} of {total} cells; run on {'; '.join(machines) or '-'}; torch "
        f"{', '.join(sorted({r['versions'].get('torch', '?') for r in records})) or '-'}; "
        f"commits {', '.join(sorted({str(r['git_commit'])[:8] for r in records})) or '-'}."
    )


def paired_differences(
    cells: Cells, method: str, key: str, base: str = "deterministic"
) -> np.ndarray:
    """``key`` of ``method`` minus ``base``'s, over the seeds both have (the same seed: the same
    validation carve-out, held-out classes and corrupted images)."""
    by_seed = {r["seed"]: r for r in cells.get(base, [])}
    pairs = [(r, by_seed[r["seed"]]) for r in cells.get(method, []) if r["seed"] in by_seed]
    return np.array([r["metrics"][key] - b["metrics"][key] for r, b in pairs])


def verdict(diffs: np.ndarray, better: str, weak: str) -> tuple[float, float, str]:
    """Mean and standard error of ``diffs`` and whether the ordering (``better``: "lower" or
    "higher" than deterministic) holds: "holds" when the mean is on the right side and more
    than two standard errors from 0, ``weak`` when only on the right side."""
    mean = float(diffs.mean())
    se = float(diffs.std(ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else float("nan")
    right = mean < 0 if better == "lower" else mean > 0
    return mean, se, "holds" if right and abs(mean) > 2 * se else weak if right else "does NOT hold"


def write_page(report: str, output: str) -> None:
    """``report`` to ``output`` (atomically), or to stdout for ``-``."""
    if output == "-":
        print(report)
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(output).with_suffix(".tmp")
    tmp.write_text(report)
    os.replace(tmp, output)
    print(f"wrote {output}")
