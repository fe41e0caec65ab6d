"""A search directory's trials, read from its files: ``history.jsonl`` (one line per finished
trial: parent, status, objective, parameters, every validation and test metric) and, for when
each trial finished, the trial store ``search.db`` opened read-only. Without the store the time
axis is the running sum of the trials' own durations (what one worker would have taken)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uqbench.analysis.rundirs import Run

ENSEMBLE_HOW = "ensemble"


@dataclass
class Trial:
    """One finished trial as the search recorded it."""

    id: int
    parent: int | None
    status: str
    how: str
    objective: float | None
    params: float | None
    seconds: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    elapsed: float | None = None  # seconds from the search's first claim to this trial's end


@dataclass
class Search:
    """A search: its run record, objective and trials in the order they were numbered."""

    run: Run
    objective: str
    minimise: bool
    trials: list[Trial]
    timed_by_store: bool

    @property
    def algorithm(self) -> str:
        return self.run.method.removeprefix("search/")

    @property
    def name(self) -> str:
        return f"{self.run.path.name} ({self.algorithm}, seed {self.run.summary.get('seed')})"

    def best_so_far(self) -> list[tuple[int, float, float | None]]:
        """``(trial id, best objective up to it, elapsed seconds)`` over the completed single
        trials (ensembles apart), in trial order."""
        out: list[tuple[int, float, float | None]] = []
        best: float | None = None
        for trial in self.trials:
            if trial.status != "done" or trial.objective is None or trial.how == ENSEMBLE_HOW:
                continue
            value = trial.objective
            if best is None or (value < best if self.minimise else value > best):
                best = value
            out.append((trial.id, best, trial.elapsed))
        return out


def _record(line: dict[str, Any]) -> Trial:
    metrics = {
        k: float(v)
        for k, v in line.items()
        if "/" in k and isinstance(v, int | float) and not isinstance(v, bool)
    }
    return Trial(
        id=int(line["trial"]),
        parent=line.get("parent"),
        status=str(line.get("status")),
        how=str(line.get("how") or ""),
        objective=line.get("objective"),
        params=line.get("params"),
        seconds=line.get("seconds"),
        metrics=metrics,
    )


def _store_times(path: Path) -> dict[int, float] | None:
    """``{trial id: seconds from the first claim to its end}`` from the store, or ``None``."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = db.execute("SELECT id, claimed, finished FROM trials").fetchall()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    claims = [c for _, c, _ in rows if c is not None]
    if not claims:
        return None
    start = min(claims)
    return {int(i): f - start for i, _, f in rows if f is not None}


def read_search(run: Run) -> Search:
    """The trials of the search directory ``run``; a clear error without ``history.jsonl``."""
    history = run.path / "history.jsonl"
    if not history.is_file():
        raise FileNotFoundError(f"{run.path} has no history.jsonl: not a finished search")
    trials = [_record(json.loads(line)) for line in history.read_text().splitlines() if line]
    trials.sort(key=lambda t: t.id)
    times = _store_times(run.path / "search.db")
    if times is not None:
        for trial in trials:
            trial.elapsed = times.get(trial.id)
    else:
        total = 0.0
        for trial in trials:
            total += trial.seconds or 0.0
            trial.elapsed = total
    objective = run.summary.get("objective") or {}
    return Search(
        run=run,
        objective=str(objective.get("metric", "val/nll")),
        minimise=objective.get("direction", "minimize") == "minimize",
        trials=trials,
        timed_by_store=times is not None,
    )
