"""Ensembles of a search's trials: greedy forward selection with replacement (Caruana et al.
2004, "Ensemble selection from libraries of models") on validation NLL, probabilities averaged.

Every ``every``-th trial of a search is an ensemble trial (as Model Search's intermixed ensemble
search tries one every 5th trial): its suggestion records the pool, the ``pool`` best single
trials finished by then, so a resumed search builds the same ensemble. Selection starts empty
and adds, with replacement, the pool member whose addition gives the lowest validation NLL of
the averaged probabilities, ``size`` times; the ensemble is the best of those prefixes. The
chosen ensemble is evaluated once on the test split and written as a run directory in the format
of ``image/ensemble`` (``predictions/test.npz`` with ``member_probs``, a checkpoint holding every
member, a member chosen twice counted twice). At the end of a search one more ensemble, of the
``pool`` best single trials of the whole search, goes to ``<search>/ensemble/``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uqbench import metrics
from uqbench.search.space import SearchSpace
from uqbench.search.store import TrialRow

HOW = "ensemble"
METHOD = "search/ensemble"
FINAL_DIR = "ensemble"
VALIDATION_FILE = "predictions/validation.npz"
IMPROVEMENT = 1e-12  # a longer prefix must lower the NLL by more than rounding does


def greedy_selection(
    member_probs: Sequence[np.ndarray], labels: np.ndarray, size: int
) -> list[int]:
    """Indices (with repeats) of the members Caruana's greedy forward selection with
    replacement picks: ``size`` steps, each adding the member whose addition gives the lowest
    NLL (ties to the lower index), then the best of those ``size`` prefixes (the shortest on
    ties)."""
    if size < 1:
        raise ValueError(f"an ensemble needs at least one member, got size {size}")
    if not member_probs:
        raise ValueError("no members to select from")
    probs = [np.asarray(p, dtype=np.float64) for p in member_probs]
    chosen: list[int] = []
    total = np.zeros_like(probs[0])
    best, best_length = math.inf, 0
    while len(chosen) < size:
        scores = [metrics.nll((total + p) / (len(chosen) + 1), labels) for p in probs]
        pick = int(np.argmin(scores))
        chosen.append(pick)
        total += probs[pick]
        if scores[pick] < best - IMPROVEMENT:
            best, best_length = scores[pick], len(chosen)
    return chosen[:best_length]


def single_trials(rows: Sequence[TrialRow]) -> list[TrialRow]:
    """The trials that trained a network (not ensembles)."""
    return [t for t in rows if t.how != HOW]


def pool_of(rows: Sequence[TrialRow], space: SearchSpace) -> list[int]:
    """The ids of the ``ensemble_pool`` best completed single trials, best first."""
    done = [t for t in single_trials(rows) if t.status == "done" and t.objective is not None]
    done = [t for t in done if math.isfinite(t.objective)]
    done.sort(key=lambda t: (space.sign * t.objective, t.id))
    return [t.id for t in done[: space.ensemble_pool]]


def ensemble_due(space: SearchSpace, number: int) -> bool:
    """Whether trial ``number`` is an ensemble trial of this space (never with a weighted-sum
    or OOD objective: an ensemble's costs and OOD scores are not measured)."""
    if space.terms or space.ood is not None:
        return False
    return (
        space.ensemble_enabled and space.ensemble_every > 0 and number % space.ensemble_every == 0
    )


def ensemble_suggestion(
    space: SearchSpace, rows: Sequence[TrialRow], number: int
) -> dict[str, Any] | None:
    """Trial ``number``'s suggestion when it is an ensemble trial with at least two finished
    single trials to choose from; else ``None`` (it trains a network)."""
    if not ensemble_due(space, number):
        return None
    pool = pool_of(rows, space)
    if len(pool) < 2:
        return None
    return {"architecture": [], "hparams": {"pool": pool}, "parent": None, "how": HOW}


def store_budget(trials: int, space: SearchSpace, rows: Sequence[TrialRow]) -> int:
    """How many trials the store holds when the ``trials`` budget is used up: ensemble trials
    come on top unless the space counts them (``counts_toward_trials``)."""
    if space.ensemble_counts:
        return trials
    return trials + sum(t.how == HOW for t in rows)


def write_validation(run_dir: Path, probs: np.ndarray, labels: np.ndarray) -> None:
    """``predictions/validation.npz`` (float32 probabilities, labels), written atomically."""
    target = run_dir / VALIDATION_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".validation.", suffix=".npz")
    with os.fdopen(fd, "wb") as handle:
        np.savez_compressed(handle, probs=probs.astype(np.float32), labels=labels)
    os.replace(tmp, target)


def read_validation(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The validation probabilities and labels a trial saved."""
    path = run_dir / VALIDATION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the trial's validation predictions are gone")
    with np.load(path) as saved:
        return saved["probs"], saved["labels"]


def build_ensemble(
    context: Any,
    pool: Sequence[int],
    output: Path,
    extra: Mapping[str, Any],
    trial_dir: Any,
) -> tuple[dict[str, float], dict[str, Any], list[int], int]:
    """Select from the trials ``pool`` on validation, evaluate the ensemble once on test and
    write its run directory at ``output``; returns its validation metrics, the summary, the
    members (with repeats) and its parameter count."""
    from uqbench.training.classifier import network_logits
    from uqbench.training.evaluation import classification_metrics, evaluate
    from uqbench.training.predictors import checkpoint_of, load_networks, mixture

    data, runtime = context.data, context.runtime
    space: SearchSpace = context.space
    validation = [read_validation(trial_dir(context.directory, i)) for i in pool]
    labels = data.y_val.cpu().numpy()
    for (_, saved), trial in zip(validation, pool, strict=True):
        if saved.shape != labels.shape or not np.array_equal(saved, labels):
            raise ValueError(f"trial {trial}'s validation predictions are of other data")
    picks = greedy_selection([p for p, _ in validation], labels, space.ensemble_size)
    members = [pool[i] for i in picks]
    loaded = {
        i: load_networks(trial_dir(context.directory, i), runtime.device) for i in set(members)
    }
    networks = [loaded[i][0][0] for i in members]
    flips = [bool(loaded[i][1].get("test_flips", False)) for i in members]
    norm = (data.mean, data.std)

    def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = torch.stack(
            [
                network_logits(n, images, *norm, runtime, f)
                for n, f in zip(networks, flips, strict=True)
            ]
        )
        return mixture(logits)

    probs = np.mean([validation[i][0].astype(np.float64) for i in picks], axis=0)
    log_probs = np.log(np.maximum(probs, np.finfo(np.float32).tiny))
    val_metrics = classification_metrics(probs, labels, "val", log_probs=log_probs)
    params = sum(sum(p.numel() for p in loaded[i][0][0].parameters()) for i in set(members))
    checkpoint = checkpoint_of(
        METHOD,
        networks,
        norm=norm,
        image_shape=data.image_shape,
        class_names=data.class_names,
        flips=flips[0],
        members=members,
    )
    with torch.no_grad():
        summary = evaluate(
            predict,
            data,
            # the search's test OOD set (held-out classes, noise or a named set), as its trials
            ood=[context.test_ood] if getattr(context, "test_ood", None) is not None else [],
            output_dir=output,
            method=METHOD,
            overwrite=True,
            device=runtime.device,
            params=params,
            flag_lines=[
                f"# an ensemble of the search in {context.directory}",
                f"# members (trials, with repeats): {', '.join(map(str, members))}",
                f"# chosen greedily from the pool: {', '.join(map(str, pool))}",
            ],
            checkpoint=checkpoint,
            extra={
                "num_members": len(members),
                "members": members,
                "pool": list(pool),
                "selection": "greedy forward selection with replacement on validation NLL",
                "validation": val_metrics,
                **extra,
            },
            quiet=True,
        )
    write_validation(output, probs, labels)
    return val_metrics, summary, members, params


def write_final_ensemble(context: Any, rows: Sequence[TrialRow]) -> dict[str, Any] | None:
    """The end-of-search ensemble in ``<search>/ensemble/``, from the ``pool`` best single
    trials; ``None`` (and nothing written) when ensembles are off or fewer than two are done."""
    from uqbench.search.runner import trial_dir

    space: SearchSpace = context.space
    if not space.ensemble_enabled:
        return None
    pool = pool_of(rows, space)
    if len(pool) < 2:
        return None
    output = Path(context.directory) / FINAL_DIR
    if context.is_table:
        from uqbench.search.table_trial import build_table_ensemble

        build_table_ensemble(context, pool, output, {"final": True})
        return json.loads((output / "summary.json").read_text())
    _, summary, _, _ = build_ensemble(context, pool, output, {"final": True}, trial_dir)
    return summary
