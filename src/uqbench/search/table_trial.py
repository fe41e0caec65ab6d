"""A search trial on a table, and an ensemble of such trials.

As for images (``runner.run_trial``): build the architecture on the ``(D,)`` features, train
(:func:`~uqbench.training.tables.fit_table`), score the objective on the validation split, check
the constraints, then evaluate the test split once and write ``trials/<id>`` atomically. Its
checkpoint carries the table's preprocessing, so ``uqbench.load_run`` predicts from raw rows.
An ensemble trial selects members greedily on validation NLL (classification: Caruana et al.'s
selection on averaged probabilities; regression: the same on the Gaussian mixture's NLL),
from the members' networks run again, and is written the same way.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from uqbench import metrics
from uqbench.metrics.latency import latency_record
from uqbench.search import blocks, ensemble, objectives, transfer
from uqbench.search import runner as _runner
from uqbench.search.store import TrialRow
from uqbench.training.checkpoint import load_checkpoint
from uqbench.training.environment import describe_device, peak_memory_mb
from uqbench.training.rundir import RunDirectory, build_summary
from uqbench.training.tables import TABLE_RECIPE, fit_table, table_metrics, table_outputs

METHOD = "search/trial"


def labels_of(data: Any, part: str) -> np.ndarray:
    """Labels, or targets in their own units, of the ``val`` or ``test`` part."""
    if data.task == "regression":
        return getattr(data, f"y_{part}_original")
    return getattr(data, f"y_{part}").cpu().numpy()


def run_table_trial(
    context: Any, trial: TrialRow, should_stop: Callable[[], bool] = lambda: False
) -> Any:
    """One trial on a table (see the module docstring); errors become a ``failed`` outcome."""
    start = time.perf_counter()
    space, data, runtime = context.space, context.data, context.runtime
    seed = _runner.trial_seed(int(context.settings["seed"]), trial.id)
    outcome = _runner.TrialOutcome(status="failed")
    try:
        torch.manual_seed(seed)
        network = blocks.build_network(
            trial.architecture, data.input_shape, data.num_outputs, head=space.head
        ).to(runtime.device)
        outcome.params = sum(p.numel() for p in network.parameters())
        if space.max_params is not None and outcome.params > space.max_params:
            outcome.status = "infeasible"
            outcome.error = f"{outcome.params} parameters > max_params {space.max_params}"
            return outcome
        recipe = _runner.trial_recipe(TABLE_RECIPE, space, trial.hparams)
        warm = None
        if space.transfer != "none" and trial.parent is not None:
            parent = _runner.trial_dir(context.directory, trial.parent) / "checkpoint.safetensors"
            warm = transfer.warm_start_from(network, parent, space.transfer)

        def check_stop(record: dict) -> None:
            if should_stop():
                raise _runner.StopRequested("stop requested")

        history = fit_table(
            network,
            data.x_train,
            data.y_train,
            data.task,
            recipe,
            seed=seed,
            on_epoch_end=check_stop,
        )
        train_seconds = time.perf_counter() - start
        val = table_outputs([network], data.x_val, data.preprocessing)
        outcome.val_metrics = table_metrics(val, labels_of(data, "val"), "val")
        if warm is not None:
            outcome.val_metrics["transfer/warm_fraction"] = warm.fraction
            if warm.note:
                outcome.val_metrics["transfer/parent_checkpoint_missing"] = 1.0
        sample = data.x_val[: min(256, data.x_val.shape[0])]
        with torch.no_grad():
            latency = latency_record(network, sample, warmup=1, repeats=3, device=runtime.device)
        outcome.val_metrics.update(objectives.derived(outcome.val_metrics))
        if not _runner.score(space, outcome, latency):
            return outcome
        output = _runner.trial_dir(context.staging or context.directory, trial.id)
        notes = {"transfer": warm.as_record()} if warm is not None else {}
        outcome.test_metrics = write_table_run(
            context,
            output,
            [network],
            val,
            method=METHOD,
            history=history,
            seed=seed,
            train_seconds=train_seconds,
            latency=latency,
            flag_lines=[
                f"# trial {trial.id} of the search in {context.directory}",
                f"# architecture: {' > '.join(trial.architecture) or '(head only)'}",
                *(f"--{k}={v}" for k, v in sorted(trial.hparams.items())),
            ],
            extra={
                "trial": trial.id,
                "parent": trial.parent,
                "how": trial.how,
                "architecture": list(trial.architecture),
                "hparams": trial.hparams,
                "recipe": recipe.as_dict(),
                "validation": outcome.val_metrics,
                **notes,
            },
        )
        outcome.checkpoint = str(Path(_runner.TRIALS_DIR) / output.name / "checkpoint.safetensors")
        outcome.status = "done"
    except (KeyboardInterrupt, _runner.StopRequested):
        raise
    except Exception as err:  # a failing trial is data for the search
        outcome.status = "failed"
        outcome.error = _runner._describe(err)
    finally:
        outcome.seconds = time.perf_counter() - start
    return outcome


def write_table_run(
    context: Any,
    output: Path,
    networks: Sequence[nn.Module],
    val: Mapping[str, np.ndarray],
    *,
    method: str,
    history: Sequence[Mapping[str, Any]],
    seed: int | None,
    train_seconds: float | None,
    latency: Mapping[str, Any] | None,
    flag_lines: Sequence[str],
    extra: Mapping[str, Any],
    members: Sequence[int] | None = None,
) -> dict[str, float]:
    """Evaluate ``networks`` (a uniform mixture when several) once on test and write the run
    directory at ``output`` atomically; returns the test metrics."""
    data, runtime = context.data, context.runtime
    prep = data.preprocessing
    test = table_outputs(networks, data.x_test, prep)
    results = table_metrics(test, labels_of(data, "test"), "test")
    distinct = {id(n): n for n in networks}.values()
    params = sum(sum(p.numel() for p in n.parameters()) for n in distinct)
    results["cost/params"] = float(params)
    if latency is not None:
        results["cost/ms_per_example"] = float(latency["ms_per_example"])
    if train_seconds is not None:
        results["cost/train_seconds"] = float(train_seconds)
    results["cost/peak_memory_mb"] = peak_memory_mb(runtime.device)
    summary = build_summary(
        kind="baseline",
        method=method,
        dataset={"name": data.name, "root": Path(data.source).name, "source": data.source},
        data_hash=data.data_hash,
        seed=seed,
        split=data.split,
        device=describe_device(runtime.device),
        metrics=results,
        timings={"train_seconds": train_seconds} if train_seconds is not None else {},
        params=params,
        peak_memory_mb=results["cost/peak_memory_mb"],
        extra={"task": data.task, **({"latency": dict(latency)} if latency else {}), **extra},
    )
    tensors: dict[str, torch.Tensor] = {}
    if len(networks) == 1:
        tensors = dict(networks[0].state_dict())
    else:
        for i, network in enumerate(networks):
            state = network.state_dict()
            tensors.update({f"member{i}.{k}": v.clone() for k, v in state.items()})
    architectures = [
        {"class": f"{type(n).__module__}.{type(n).__qualname__}", "kwargs": dict(n.config)}
        for n in networks
    ]
    metadata = {
        "method": method,
        **architectures[0],
        "num_networks": len(networks),
        "networks": architectures,
        "preprocessing": prep.as_record(),
        "class_names": list(data.class_names),
        **({"members": list(members)} if members is not None else {}),
    }
    with RunDirectory(output, overwrite=True) as run:
        run.write_flags(flag_lines)
        run.write_text("history.jsonl", "")
        for record in history:
            run.append_history(record)
        run.save_predictions("test", **_arrays(test, labels_of(data, "test")))
        run.save_predictions("validation", **_arrays(val, labels_of(data, "val")))
        run.save_checkpoint(tensors, metadata)
        run.write_summary(summary)
        run.commit()
    return {k: v for k, v in results.items() if not k.startswith("ood/")}


def _arrays(outputs: Mapping[str, np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
    key = "labels" if "probs" in outputs else "y"
    return {**outputs, key: y}


def load_members(context: Any, ids: Sequence[int]) -> dict[int, nn.Module]:
    """The trained network of each trial in ``ids``, rebuilt from its checkpoint."""
    networks = {}
    for trial_id in set(ids):
        path = _runner.trial_dir(context.directory, trial_id) / "checkpoint.safetensors"
        tensors, metadata = load_checkpoint(path)
        network = blocks.SearchNet.from_config(metadata["kwargs"])
        network.load_state_dict(tensors)
        networks[trial_id] = network.to(context.runtime.device).eval()
    return networks


def greedy_members(
    candidates: Sequence[Mapping[str, np.ndarray]], y: np.ndarray, size: int, task: str
) -> list[int]:
    """Greedy forward selection with replacement on validation NLL (see ``ensemble``):
    ``size`` additions, each the candidate whose addition lowers the NLL most, then the best
    prefix. Classification uses ``ensemble.greedy_selection`` on probabilities."""
    if task == "classification":
        return ensemble.greedy_selection([c["probs"] for c in candidates], y, size)
    chosen: list[int] = []
    best, best_length = math.inf, 0
    while len(chosen) < size:
        scores = []
        for i in range(len(candidates)):
            picked = [*chosen, i]
            means = np.concatenate([candidates[j]["member_means"] for j in picked])
            variances = np.concatenate([candidates[j]["member_variances"] for j in picked])
            scores.append(metrics.mixture_gaussian_nll(means, variances, y))
        pick = int(np.argmin(scores))
        chosen.append(pick)
        if scores[pick] < best - ensemble.IMPROVEMENT:
            best, best_length = scores[pick], len(chosen)
    return chosen[:best_length]


def build_table_ensemble(
    context: Any, pool: Sequence[int], output: Path, extra: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, float], list[int], int]:
    """Select an ensemble of the ``pool`` trials on validation, evaluate it once on test and
    write its run directory; returns validation and test metrics, members and parameters."""
    data = context.data
    networks = load_members(context, pool)
    y_val = labels_of(data, "val")
    candidates = [table_outputs([networks[i]], data.x_val, data.preprocessing) for i in pool]
    picks = greedy_members(candidates, y_val, context.space.ensemble_size, data.task)
    members = [pool[i] for i in picks]
    chosen = [networks[i] for i in members]
    val = table_outputs(chosen, data.x_val, data.preprocessing)
    val_metrics = table_metrics(val, y_val, "val")
    test_metrics = write_table_run(
        context,
        output,
        chosen,
        val,
        method=ensemble.METHOD,
        history=[],
        seed=None,
        train_seconds=None,
        latency=None,
        flag_lines=[
            f"# an ensemble of the search in {context.directory}",
            f"# members (trials, with repeats): {', '.join(map(str, members))}",
            f"# chosen greedily from the pool: {', '.join(map(str, pool))}",
        ],
        extra={
            "num_members": len(members),
            "members": members,
            "pool": list(pool),
            "selection": "greedy forward selection with replacement on validation NLL",
            "validation": val_metrics,
            **extra,
        },
        members=members,
    )
    params = sum(sum(p.numel() for p in networks[i].parameters()) for i in set(members))
    return val_metrics, test_metrics, members, params
