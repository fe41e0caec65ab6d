"""What a search leaves besides its store: ``summary.json`` and ``history.jsonl`` in the
run-directory format, the ``search show`` table, and the exported best model.

Everything here is read from the trial store, so it can be regenerated at any time (and is,
after every finished trial): ``summary.json`` has ``kind: search``, the search's ``status``
(:func:`search_status`), the counts, the best trial and its metrics (``val/...`` for the
objective, ``test/...`` recorded once per trial); ``history.jsonl`` holds one line per finished
trial in the order they finished. :func:`conclusion` is the line ``uqbench search`` ends with.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from uqbench.search import ensemble
from uqbench.search.runner import STORE_FILE
from uqbench.search.space import space_from_dict
from uqbench.search.store import FINISHED, TrialRow, TrialStore
from uqbench.training.checkpoint import load_checkpoint, save_checkpoint
from uqbench.training.environment import describe_device
from uqbench.training.progress import format_seconds
from uqbench.training.report import format_table
from uqbench.training.rundir import build_summary, dumps

EXPORT_FILE = "best_model.safetensors"


def open_store(directory: str | Path) -> TrialStore:
    """The store of an existing search directory, or a clear error."""
    path = Path(directory) / STORE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{directory} holds no search ({STORE_FILE} missing): pass the --output_dir of a "
            "`uqbench search` run"
        )
    return TrialStore(path)


def ranked(trials: Sequence[TrialRow], sign: float) -> list[TrialRow]:
    """Completed single-network trials (ensembles apart), best first (``sign`` +1 minimises the
    objective, -1 maximises)."""
    done = [t for t in trials if t.status == "done" and t.objective is not None]
    done = [t for t in done if t.how != ensemble.HOW]
    return sorted(done, key=lambda t: (sign * t.objective, t.id))


class SearchNotComplete(RuntimeError):
    """A search ended without finishing its budget with at least one completed trial; the
    message is its :func:`conclusion` line."""


def search_status(counts: Mapping[str, int], budget: int) -> str:
    """``complete`` when every trial of the budget finished (done, failed or infeasible) and at
    least one is done; ``failed`` when every one finished and none is done; else ``incomplete``
    (trials still running, handed back, abandoned by a dead worker, or not started yet)."""
    finished = sum(counts.get(s, 0) for s in FINISHED)
    if finished < max(budget, 1) or counts.get("running", 0) or counts.get("pending", 0):
        return "incomplete"
    return "complete" if counts.get("done", 0) else "failed"


def _trial_ids(trials: Sequence[TrialRow]) -> str:
    ids = [str(t.id) for t in trials]
    listed = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
    return f"trial{'s' if len(ids) > 1 else ''} {listed}"


def _one_line(text: str | None, limit: int = 300) -> str:
    flat = " ".join((text or "no error recorded").split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def conclusion(directory: str | Path) -> tuple[str, str]:
    """The search's status (:func:`search_status`) and the one line that says it, counts
    included: what ``uqbench search`` prints last (its exit code is 0 only for ``complete``)."""
    store = open_store(directory)
    settings = store.experiment()
    space = space_from_dict(settings["space"])
    trials = store.trials()
    counts = store.counts()
    budget = ensemble.store_budget(int(settings.get("trials") or 0), space, trials)
    status = search_status(counts, budget)
    finished = [t for t in trials if t.status in FINISHED]
    total = max(budget, len(trials))
    tally = f"({counts['done']} done, {counts['failed']} failed, {counts['infeasible']} infeasible)"
    if status == "complete":
        best = ranked(trials, space.sign)[0]
        return status, (
            f"search finished: {len(finished)} of {total} trials {tally}; best trial {best.id} "
            f"{space.objective_key} {best.objective:.4f}"
        )
    if status == "failed":
        failed = [t for t in finished if t.status == "failed"]
        first = (failed or finished)[0]
        if counts["failed"] == len(finished):
            what = f"all {len(finished)} trials failed"
        elif counts["infeasible"] == len(finished):
            what = f"all {len(finished)} trials were infeasible"
        else:
            what = f"none of the {len(finished)} trials completed {tally}"
        reason = "first error" if failed else "first reason"
        return status, (
            f"search failed: {what}; {reason} (trial {first.id}): {_one_line(first.error)}"
        )
    running = [t for t in trials if t.status == "running"]
    abandoned = [t for t in running if not store.worker_alive(t.worker)]
    elsewhere = [t for t in running if t not in abandoned]
    pending = [t for t in trials if t.status == "pending"]
    unstarted = total - len(trials)
    parts = []
    if abandoned:
        parts.append(f"{len(abandoned)} abandoned by a worker that died ({_trial_ids(abandoned)})")
    if elsewhere:
        parts.append(f"{len(elsewhere)} still running in another worker ({_trial_ids(elsewhere)})")
    if pending:
        parts.append(f"{len(pending)} handed back unfinished ({_trial_ids(pending)})")
    if unstarted or not parts:
        parts.append(f"{unstarted} not started")
    left = len(running) + len(pending) + unstarted
    advice = (
        f"once {'it ends' if left == 1 else 'they end'}, run the same command with --resume"
        if elsewhere and left == len(elsewhere)
        else f"run the same command with --resume to finish {'it' if left == 1 else 'them'}"
    )
    return status, (
        f"search incomplete: {len(finished)} of {total} trials finished {tally}; "
        + ", ".join(parts)
        + f": {advice}"
    )


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def trial_record(trial: TrialRow) -> dict[str, Any]:
    """One trial as a ``history.jsonl`` line."""
    return {
        "trial": trial.id,
        "parent": trial.parent,
        "how": trial.how,
        "status": trial.status,
        "architecture": list(trial.architecture),
        "hparams": trial.hparams,
        "objective": trial.objective,
        "params": trial.params,
        "seconds": trial.seconds,
        "worker": trial.worker,
        "attempts": trial.attempts,
        "error": trial.error,
        **trial.val_metrics,
        **trial.test_metrics,
    }


def write_outputs(directory: str | Path, elapsed: float | None = None) -> dict[str, Any]:
    """(Re)write ``summary.json`` and ``history.jsonl`` from the store; returns the summary."""
    directory = Path(directory)
    store = open_store(directory)
    settings = store.experiment()
    space = space_from_dict(settings["space"])
    trials = store.trials()
    finished = sorted(
        (t for t in trials if t.status in FINISHED), key=lambda t: (t.seconds is None, t.id)
    )
    best = ranked(trials, space.sign)
    metrics: dict[str, float] = {}
    if best:
        metrics.update({k: float(v) for k, v in best[0].val_metrics.items()})
        metrics.update({k: float(v) for k, v in best[0].test_metrics.items()})
    counts = store.counts()
    budget = ensemble.store_budget(int(settings.get("trials") or 0), space, trials)
    summary = build_summary(
        kind="search",
        method=f"search/{settings['algorithm']}",
        dataset={"name": settings.get("dataset_name", settings["dataset"])},
        data_hash=settings.get("data_hash"),
        seed=settings.get("seed"),
        split="validation",
        device=describe_device(torch.device(settings.get("device") or "cpu")),
        metrics=metrics,
        timings={"search_seconds": elapsed} if elapsed is not None else {},
        params=best[0].params if best else None,
        peak_memory_mb=None,
        extra={
            "status": search_status(counts, budget),
            "objective": {"metric": space.objective_key, "direction": space.direction},
            "trials": {"budget": settings.get("trials"), **counts},
            "best_trial": trial_record(best[0]) if best else None,
            "top": [t.id for t in best[:10]],
            "ensemble": _final_ensemble(directory),
            "ensemble_trials": [
                _ensemble_record(t) for t in trials if t.how == ensemble.HOW and t.status == "done"
            ],
            "space": settings["space"],
        },
    )
    _write_atomic(directory / "summary.json", dumps(summary, indent=2) + "\n")
    _write_atomic(
        directory / "history.jsonl", "".join(dumps(trial_record(t)) + "\n" for t in finished)
    )
    return summary


def _ensemble_record(trial: TrialRow) -> dict[str, Any]:
    """An ensemble trial as ``summary.json`` lists it."""
    keys = ("val/nll", "val/accuracy", "test/nll", "test/accuracy", "test/ece")
    metrics = {**trial.val_metrics, **trial.test_metrics}
    return {
        "trial": trial.id,
        "pool": trial.hparams.get("pool"),
        **{k: metrics.get(k) for k in keys},
    }


def _final_ensemble(directory: Path) -> dict[str, Any] | None:
    """The end-of-search ensemble (``ensemble/summary.json``): its members and metrics."""
    path = directory / ensemble.FINAL_DIR / "summary.json"
    if not path.is_file():
        return None
    final = json.loads(path.read_text())
    return {
        "directory": ensemble.FINAL_DIR,
        "members": final.get("members"),
        "pool": final.get("pool"),
        "validation": final.get("validation"),
        "metrics": final.get("metrics"),
    }


def lineage(trials: Mapping[int, TrialRow], trial_id: int) -> list[int]:
    """``trial_id`` and its ancestors, oldest first."""
    chain, seen = [], set()
    current: int | None = trial_id
    while current is not None and current in trials and current not in seen:
        seen.add(current)
        chain.append(current)
        current = trials[current].parent
    return chain[::-1]


def show(directory: str | Path, top: int = 10) -> str:
    """The ``uqbench search show`` text: counts, the top trials and the best one's lineage."""
    store = open_store(directory)
    settings = store.experiment()
    space = space_from_dict(settings["space"])
    trials = store.trials()
    best = ranked(trials, space.sign)
    counts = store.counts()
    lines = [
        f"search in {directory}: {settings['algorithm']} on {settings['dataset']}, objective "
        f"{space.objective_key} ({space.direction}), seed {settings['seed']}",
        "trials: "
        + ", ".join(f"{counts[s]} {s}" for s in counts if counts[s])
        + f" (budget {settings.get('trials')})",
    ]
    rows = []
    regression = any("test/rmse" in t.test_metrics for t in best)
    first = "test/rmse" if regression else "test/accuracy"
    for trial in best[:top]:
        rows.append(
            [
                str(trial.id),
                "-" if trial.parent is None else str(trial.parent),
                trial.how,
                f"{trial.objective:.4f}",
                _fmt(trial.test_metrics.get(first)),
                _fmt(trial.test_metrics.get("test/nll")),
                str(trial.params),
                _warm(trial),
                format_seconds(trial.seconds or 0.0),
                " > ".join(trial.architecture) or "(head only)",
            ]
        )
    if rows:
        shown = "test rmse" if regression else "test acc"
        headers = ["trial", "parent", "how", space.objective_key, shown, "test nll"]
        lines.append(
            format_table(
                [*headers, "params", "warm", "time", "architecture"],
                rows,
                title=f"top {len(rows)} trials (by {space.objective_key})",
            )
        )
        by_id = {t.id: t for t in trials}
        chain = lineage(by_id, best[0].id)
        lines.append(
            "lineage of the best: "
            + " -> ".join(f"{i} ({by_id[i].how}, {_fmt(by_id[i].objective)})" for i in chain)
        )
        hparams = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(best[0].hparams.items()))
        lines.append(f"best hyperparameters: {hparams}")
    for trial in trials:
        if trial.how == ensemble.HOW and trial.status == "done":
            lines.append(
                f"ensemble trial {trial.id}: {space.objective_key} {_fmt(trial.objective)}, test "
                f"nll {_fmt(trial.test_metrics.get('test/nll'))}, "
                f"{_fmt_first(trial.test_metrics)} (pool {trial.hparams.get('pool')})"
            )
    final = _final_ensemble(Path(directory))
    if final is not None:
        metrics = final["metrics"] or {}
        lines.append(
            f"final ensemble ({final['directory']}/): members {final['members']}, test nll "
            f"{_fmt(metrics.get('test/nll'))}, {_fmt_first(metrics)}"
        )
    failed = [t for t in trials if t.status in ("failed", "infeasible")]
    for trial in failed[:5]:
        lines.append(f"trial {trial.id} {trial.status}: {trial.error}")
    if len(failed) > 5:
        lines.append(f"... and {len(failed) - 5} more failed or infeasible trials")
    return "\n".join(lines)


def _warm(trial: TrialRow) -> str:
    """The warm-started fraction of a trial's parameters, as ``search show`` prints it."""
    fraction = trial.val_metrics.get("transfer/warm_fraction")
    if fraction is None:
        return "-"
    if trial.val_metrics.get("transfer/parent_checkpoint_missing"):
        return "0 (parent checkpoint missing)"
    return f"{fraction:.1%}"


def _fmt_first(metrics: Mapping[str, Any]) -> str:
    """``test acc`` of a classifier, ``test rmse`` of a regression model."""
    if "test/rmse" in metrics:
        return f"test rmse {_fmt(metrics.get('test/rmse'))}"
    return f"test acc {_fmt(metrics.get('test/accuracy'))}"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def export(
    directory: str | Path, output: str | Path | None = None, trial: int | None = None
) -> Path:
    """Write the best trial's model (or ``trial``'s) as one checkpoint with its architecture
    in the metadata; :func:`load_model` rebuilds it. Returns the path written."""
    directory = Path(directory)
    store = open_store(directory)
    settings = store.experiment()
    space = space_from_dict(settings["space"])
    trials = store.trials()
    if trial is None:
        best = ranked(trials, space.sign)
        if not best:
            raise ValueError(f"the search in {directory} has no completed trial yet")
        chosen = best[0]
    else:
        matches = [t for t in trials if t.id == trial]
        if not matches or matches[0].status != "done" or not matches[0].checkpoint:
            raise ValueError(f"trial {trial} of {directory} has not completed (see search show)")
        chosen = matches[0]
    tensors, metadata = load_checkpoint(directory / chosen.checkpoint)
    metadata = {
        **metadata,
        "search": {
            "directory": str(directory.resolve()),
            "trial": chosen.id,
            "objective": {space.objective_key: chosen.objective},
            "test_metrics": chosen.test_metrics,
            "hparams": chosen.hparams,
            "architecture": list(chosen.architecture),
        },
    }
    target = Path(output) if output is not None else directory / EXPORT_FILE
    save_checkpoint(target, tensors, metadata)
    return target


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, dict]:
    """The network saved by ``uqbench search export`` (or a trial's checkpoint, or a trial's
    run directory), in eval mode, and the checkpoint's metadata (``search`` the trial's record).
    The network takes normalised input; ``uqbench.load_run(path)`` predicts from raw input."""
    from uqbench.training.predictors import load_networks

    networks, metadata = load_networks(path, device)
    return networks[0], metadata
