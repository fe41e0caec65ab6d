"""Find every run and search directory under some paths; list what cannot be read as skipped.

A directory with a ``summary.json`` is a run (``kind: baseline``: a baseline run, an evaluation
or a post-hoc run) or a search (``kind: search``). A search contributes its final ensemble
(``ensemble/``) and its best single trial (``trials/<id>``) as runs, labelled with the search's
flags, so searched models sit in the same tables as baselines; its other trials are read by
``uqbench.analysis.searches``. A summary of another kind (a sweep, anything newer than this
code) is listed as skipped and its sub-directories are searched for runs. Hidden directories
(staging folders, training state) are never read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from uqbench.analysis.rundirs import NotARun, Run, parse_flags, read_run

RUN_KINDS = ("baseline",)
SEARCH_KIND = "search"


@dataclass
class Found:
    """What :func:`discover` found: runs, searches, and skipped directories with the reason."""

    runs: list[Run] = field(default_factory=list)
    searches: list[Run] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def _with_source_flags(run: Run) -> Run:
    """An evaluation (``evaluated_from``) groups by its source run's flags overlaid with its own,
    so evaluations of 4- and 8-member ensembles never merge; the source may be gone."""
    source = run.summary.get("evaluated_from")
    if source and (Path(source) / "flags.txt").is_file():
        run.flags = {**parse_flags((Path(source) / "flags.txt").read_text()), **run.flags}
    return run


def _search_runs(search: Run, found: Found) -> None:
    """The final ensemble and the best trial of ``search`` as runs carrying the search's flags."""
    best = (search.summary.get("best_trial") or {}).get("trial")
    parts = [("final ensemble", search.path / "ensemble")]
    if best is not None:
        parts.append(("best trial", search.path / "trials" / f"{int(best):04d}"))
    for role, path in parts:
        if not (path / "summary.json").is_file():
            continue
        try:
            run = read_run(path)
        except NotARun as err:
            found.skipped.append((path, str(err)))
            continue
        run.flags = {**search.flags, "role": role}
        run.summary = {**run.summary, "seed": search.summary.get("seed")}
        run.summary["method"] = f"{search.method} ({role})"
        run.label = f"{search.path.name}/{path.name}"
        found.runs.append(run)


def _visit(directory: Path, found: Found) -> bool:
    """Read ``directory`` if it holds a summary; returns whether to look inside it."""
    if not (directory / "summary.json").is_file():
        return True
    try:
        run = read_run(directory)
    except NotARun as err:
        found.skipped.append((directory, str(err)))
        return False
    kind = run.summary.get("kind")
    if kind in RUN_KINDS:
        found.runs.append(_with_source_flags(run))
        return False
    if kind == SEARCH_KIND:
        found.searches.append(run)
        _search_runs(run, found)
        return False
    found.skipped.append((directory, f"unknown kind {kind!r}: not read by this version"))
    return True


def _trial_dirs(path: Path) -> bool:
    """Whether ``path`` is a search's ``trials`` or ``ensemble`` folder (read with the search)."""
    return path.name in ("trials", "ensemble", "workers") and (path.parent / "search.db").is_file()


def discover(paths: list[str | Path]) -> Found:
    """Every run and search directory at or below ``paths``, in path order."""
    found = Found()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise FileNotFoundError(f"{root} does not exist")
        if not root.is_dir():
            raise ValueError(f"{root} is not a directory: pass run or search directories")
        for current, subdirs, _ in os.walk(root):
            here = Path(current)
            keep = _visit(here, found) and not _trial_dirs(here)
            subdirs[:] = (
                sorted(d for d in subdirs if not d.startswith(".") and not _trial_dirs(here / d))
                if keep
                else []
            )
    unique: dict[Path, Run] = {}
    for run in found.runs:  # overlapping paths (a folder and a run inside it) read a run once
        unique.setdefault(run.path.resolve(), run)
    found.runs = list(unique.values())
    return found
