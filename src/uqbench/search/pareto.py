"""The Pareto front of two metrics over a search's completed trials (``search show --pareto``).

A metric is a validation or test metric (``val/nll``, ``test/ece``; a bare name means
``val/<name>``), ``params`` or ``ms_per_example``. Each is minimised unless higher is better
(accuracy, AUROC and the like). A trial is on the front when no other trial is at least as good
in both metrics and better in one; trials with equal values in both are all kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from uqbench.search.space import MAXIMIZED
from uqbench.search.store import TrialRow
from uqbench.training.report import format_table

COSTS = {"params": "cost/params", "ms_per_example": "cost/ms_per_example"}


def metric_key(name: str) -> str:
    """``name`` as a trial's metric key: ``params``, ``ms_per_example``, ``val/...``,
    ``test/...``; a bare metric name is its validation value."""
    name = name.strip()
    if name in COSTS or "/" in name:
        return name
    return f"val/{name}"


def maximised(key: str) -> bool:
    """Whether higher is better for metric ``key``."""
    last = key.split("/")[-1]
    return last in MAXIMIZED or last in ("auroc", "aupr_in", "aupr_out")


def value_of(trial: TrialRow, key: str) -> float | None:
    """The trial's value of metric ``key``, or ``None`` when it has none."""
    if key == "params":
        return None if trial.params is None else float(trial.params)
    if key == "ms_per_example":
        return trial.test_metrics.get(COSTS[key])
    value = {**trial.val_metrics, **trial.test_metrics}.get(key)
    return None if value is None or not math.isfinite(value) else float(value)


def front(points: Sequence[tuple[int, float, float]]) -> list[int]:
    """Ids of the non-dominated points ``(id, a, b)``, both minimised, in order of ``a``: one
    pass over the points sorted by ``(a, b)``, keeping each whose ``b`` beats every earlier
    kept one (or ties the last kept point exactly)."""
    kept: list[tuple[int, float, float]] = []
    for point in sorted(points, key=lambda p: (p[1], p[2], p[0])):
        if not kept or point[2] < kept[-1][2] or point[1:] == kept[-1][1:]:
            kept.append(point)
    return [p[0] for p in kept]


def pareto_trials(
    trials: Sequence[TrialRow], first: str, second: str
) -> tuple[list[TrialRow], str, str]:
    """The completed trials on the front of metrics ``first`` and ``second`` (keys resolved
    by :func:`metric_key`), ordered by the first; a ValueError when no trial has both."""
    keys = metric_key(first), metric_key(second)
    if keys[0] == keys[1]:
        raise ValueError(f"--pareto needs two different metrics, got {keys[0]} twice")
    done = [t for t in trials if t.status == "done"]
    points, by_id = [], {t.id: t for t in done}
    for trial in done:
        values = [value_of(trial, k) for k in keys]
        if None in values:
            continue
        signed = [-v if maximised(k) else v for v, k in zip(values, keys, strict=True)]
        points.append((trial.id, signed[0], signed[1]))
    if not points:
        known = sorted({k for t in done for k in (*t.val_metrics, *t.test_metrics)})
        raise ValueError(
            f"no completed trial has both {keys[0]} and {keys[1]}; trials record "
            f"{', '.join([*COSTS, *known])}"
        )
    return [by_id[i] for i in front(points)], keys[0], keys[1]


def show_pareto(directory: str | Path, first: str, second: str) -> str:
    """The ``search show --pareto=FIRST,SECOND`` text: the front's trials, each exportable
    with ``uqbench search export DIR --trial=N``."""
    from uqbench.search.outputs import open_store

    chosen, a, b = pareto_trials(open_store(directory).trials(), first, second)
    rows = [
        [
            str(t.id),
            t.how,
            f"{value_of(t, a):.6g}",
            f"{value_of(t, b):.6g}",
            _architecture(t),
        ]
        for t in chosen
    ]
    table = format_table(
        ["trial", "how", a, b, "architecture"],
        rows,
        title=f"Pareto front of {a} ({_way(a)}) and {b} ({_way(b)}): {len(rows)} trials",
    )
    return table + f"\nexport one with: uqbench search export {directory} --trial=N"


def _architecture(trial: TrialRow) -> str:
    if trial.how == "ensemble":
        return f"ensemble chosen from trials {trial.hparams.get('pool')}"
    return " > ".join(trial.architecture) or "(head only)"


def _way(key: str) -> str:
    return "higher is better" if maximised(key) else "lower is better"
