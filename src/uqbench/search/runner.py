"""One trial from start to end, and the loop a worker runs over trials.

A trial builds its architecture, trains it with the data set's protocol recipe (the search
space's ``[training]`` settings and the trial's hyperparameters on top), scores the objective on
the **validation** split, checks the constraints, and only then evaluates the test split once, for
the record, writing the trial's run directory (``trials/<id>``, the run-directory contract of
DESIGN.md) atomically. The search's decisions see validation metrics only.

A failing trial (NaN loss, out of memory, a shape error) is recorded with its error and the
search goes on; a trial over the parameter or latency budget is recorded as ``infeasible``.
"""

from __future__ import annotations

import math
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uqbench import data as data_sets
from uqbench.metrics.latency import latency_record
from uqbench.search import (
    blocks,
    distill,
    ensemble,
    objectives,
    table_trial,
    tables,
    transfer,
    validation_ood,
)
from uqbench.search.algorithms import Algorithm, Trial, make_algorithm
from uqbench.search.space import SearchSpace, space_from_dict
from uqbench.search.store import TrialRow, TrialStore, worker_id
from uqbench.training.classifier import Recipe, Runtime, fit
from uqbench.training.environment import select_device
from uqbench.training.evaluation import classification_metrics, collect, evaluate
from uqbench.training.predictors import checkpoint_of, single
from uqbench.training.protocols import choose_protocol

STORE_FILE = "search.db"
TRIALS_DIR = "trials"
METHOD = "search/trial"


class StopRequested(Exception):
    """The worker was asked to stop (its parent process is gone, or Ctrl-C)."""


@dataclass
class TrialOutcome:
    """How a trial ended, as the store records it."""

    status: str
    objective: float | None = None
    val_metrics: dict[str, float] = field(default_factory=dict)
    test_metrics: dict[str, float] = field(default_factory=dict)
    params: int | None = None
    seconds: float | None = None
    checkpoint: str | None = None
    error: str | None = None

    def as_record(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SearchContext:
    """Everything a worker needs to run trials of one search: its settings, data and space."""

    directory: Path
    settings: dict[str, Any]
    space: SearchSpace
    data: Any
    runtime: Runtime
    base_recipe: Recipe
    quiet: bool = True
    val_ood: torch.Tensor | None = None
    test_ood: Any = None
    staging: Path | None = None  # where run directories are written before the store installs them

    @property
    def is_table(self) -> bool:
        return isinstance(self.data, tables.TableData)

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.data.input_shape if self.is_table else self.data.image_shape)

    @property
    def num_outputs(self) -> int:
        return self.data.num_outputs if self.is_table else self.data.num_classes

    def builds(self, architecture: tuple[str, ...]) -> bool:
        """Whether ``architecture`` connects for this data's image shape and has at most the
        space's ``max_params`` parameters (counted without training)."""
        try:
            blocks.infer_shapes(architecture, self.in_shape)
        except ValueError:  # ShapeError included
            return False
        if self.space.max_params is None:
            return True
        count = count_parameters(architecture, self.in_shape, self.num_outputs, self.space.head)
        return count <= self.space.max_params

    def algorithm(self) -> Algorithm:
        return make_algorithm(
            self.settings["algorithm"], self.space, int(self.settings["seed"]), self.builds
        )


def count_parameters(
    architecture: Sequence[str], in_shape: Sequence[int], num_classes: int, head: str
) -> int:
    """The parameters of the network ``architecture`` would build, counted on the meta device
    (no memory, no training; on the CPU for a block the meta device cannot build)."""
    with torch.random.fork_rng(devices=[]):
        try:
            with torch.device("meta"):
                network = blocks.build_network(architecture, in_shape, num_classes, head=head)
        except Exception:  # a user block that needs real tensors to build
            network = blocks.build_network(architecture, in_shape, num_classes, head=head)
    return sum(p.numel() for p in network.parameters())


def load_data(settings: Mapping[str, Any]) -> Any:
    """The search's data set with its validation carve-out (seeded by 0, like the baselines):
    a :class:`~uqbench.search.tables.TableData` for tables, else an image set (the held-out
    classes of an OOD objective leave it in :func:`make_context`)."""
    fraction = float(settings["validation_fraction"])
    if not 0 < fraction < 1:
        raise ValueError(
            f"--validation_fraction must be in (0, 1) for a search (its objective is measured "
            f"on the validation split), got {fraction}"
        )
    if tables.is_table(settings["dataset"]):
        return tables.load_table(settings)
    for key in ("target", "task"):
        if settings.get(key):
            raise ValueError(f"--{key} is for tables; {settings['dataset']} is an image set")
    if int(settings.get("split") or 0) != 0:
        raise ValueError(f"{settings['dataset']} has one train/test split: --split must be 0")
    return data_sets.get_images(
        settings["dataset"], data_dir=settings.get("data_dir"), validation_fraction=fraction
    )


def make_context(
    directory: str | Path,
    settings: Mapping[str, Any],
    *,
    data: Any = None,
    device: str | None = None,
    quiet: bool = True,
) -> SearchContext:
    """A :class:`SearchContext` from the settings a search recorded in its store (``data``
    may be passed when already loaded)."""
    dataset = data if data is not None else load_data(settings)
    table = isinstance(dataset, tables.TableData)
    space = space_from_dict(settings["space"], table)
    recorded = settings.get("data_hash")
    if recorded and dataset.data_hash != recorded:
        raise ValueError(
            f"the data set {settings['dataset']!r} has changed since this search started (hash "
            f"{dataset.data_hash[:12]}, recorded {str(recorded)[:12]}): resume with the same data"
        )
    target = select_device(device or settings.get("device") or "auto")
    runtime = Runtime.for_device(target)
    protocol = choose_protocol("auto", None, target.type)
    val_ood = test_ood = None
    if not table:
        dataset, val_ood, test_ood = validation_ood.prepare(dataset, space, settings)
    return SearchContext(
        directory=Path(directory),
        settings=dict(settings),
        space=space,
        data=dataset.to(target),
        runtime=runtime,
        base_recipe=protocol.recipe,
        quiet=quiet,
        val_ood=None if val_ood is None else val_ood.to(target),
        test_ood=None if test_ood is None else test_ood.to(target),
    )


def trial_recipe(base: Recipe, space: SearchSpace, hparams: Mapping[str, Any]) -> Recipe:
    """The protocol's recipe with the space's ``[training]`` settings and the trial's
    hyperparameters on top; the warm-up keeps its fraction of training when epochs change."""
    values = {**space.training, **hparams}
    if "epochs" in values and "warmup_epochs" not in values:
        values["warmup_epochs"] = base.warmup_epochs / base.epochs * values["epochs"]
    return base.with_overrides(**values).check()


def trial_seed(search_seed: int, trial_id: int) -> int:
    """A seed per trial, different across trials and searches, the same when a trial re-runs."""
    return int(np.random.SeedSequence([search_seed, trial_id]).generate_state(1)[0])


def _describe(err: BaseException) -> str:
    """``Type: message`` and the innermost frame, for the store's error column."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def run_trial(
    context: SearchContext,
    trial: TrialRow,
    should_stop: Callable[[], bool] = lambda: False,
    finished: Sequence[TrialRow] = (),
) -> TrialOutcome:
    """Build (warm-started from the parent with ``[transfer]``), train (distilled from the best
    of the ``finished`` trials with ``[distillation]``), score on validation, check constraints,
    evaluate test, write the run directory. Errors inside the trial become a ``failed`` outcome;
    ``KeyboardInterrupt`` and :class:`StopRequested` propagate (the trial is then handed back,
    not recorded)."""
    if trial.how == ensemble.HOW:
        return run_ensemble_trial(context, trial)
    if context.is_table:
        return table_trial.run_table_trial(context, trial, should_stop)
    start = time.perf_counter()
    space, data, runtime = context.space, context.data, context.runtime
    seed = trial_seed(int(context.settings["seed"]), trial.id)
    outcome = TrialOutcome(status="failed")
    try:
        torch.manual_seed(seed)
        network = blocks.build_network(
            trial.architecture, context.in_shape, data.num_classes, head=space.head
        )
        network = network.to(runtime.device)
        outcome.params = sum(p.numel() for p in network.parameters())
        if space.max_params is not None and outcome.params > space.max_params:
            outcome.status = "infeasible"
            outcome.error = f"{outcome.params} parameters > max_params {space.max_params}"
            return outcome
        recipe = trial_recipe(context.base_recipe, space, trial.hparams)
        warm = None
        if space.transfer != "none" and trial.parent is not None:
            parent = trial_dir(context.directory, trial.parent) / "checkpoint.safetensors"
            warm = transfer.warm_start_from(network, parent, space.transfer)
        soft, distilled = _distillation(context, trial, recipe, finished)

        def check_stop(record: dict) -> None:
            if should_stop():
                raise StopRequested("stop requested")

        history = fit(
            network,
            data.x_train,
            data.y_train,
            data.mean,
            data.std,
            recipe,
            runtime,
            seed=seed,
            quiet=True,
            on_epoch_end=check_stop,
            batch_loss=soft,
        )
        train_seconds = time.perf_counter() - start
        norm = (data.mean, data.std)
        predict = single(network, norm, runtime, recipe.test_flips)
        val = collect(predict, data.x_val, runtime.device, quiet=True)
        outcome.val_metrics = classification_metrics(
            val.probs, data.y_val.cpu().numpy(), "val", log_probs=val.log_probabilities()
        )
        if warm is not None:
            outcome.val_metrics["transfer/warm_fraction"] = warm.fraction
            if warm.note:
                outcome.val_metrics["transfer/parent_checkpoint_missing"] = 1.0
        outcome.val_metrics.update(objectives.derived(outcome.val_metrics))
        if context.val_ood is not None:
            ood_val = collect(predict, context.val_ood, runtime.device, quiet=True)
            outcome.val_metrics.update(objectives.ood_auroc(val.probs, ood_val.probs))
        sample = data.x_val[: min(256, data.x_val.shape[0])]
        with torch.no_grad():
            latency = latency_record(predict, sample, warmup=1, repeats=3, device=runtime.device)
        if not score(space, outcome, latency):
            return outcome
        notes = {"transfer": warm.as_record()} if warm is not None else {}
        if distilled:
            notes["distillation"] = distilled
        outcome.test_metrics, outcome.checkpoint = _record_test(
            context,
            trial,
            network,
            predict,
            latency,
            recipe,
            history,
            train_seconds,
            outcome,
            seed,
            notes,
        )
        ensemble.write_validation(
            trial_dir(context.staging or context.directory, trial.id),
            val.probs,
            data.y_val.cpu().numpy(),
        )
        outcome.status = "done"
    except (KeyboardInterrupt, StopRequested):
        raise
    except Exception as err:  # a failing trial is data for the search, not the end of it
        outcome.status = "failed"
        outcome.error = _describe(err)
        if runtime.device.type == "cuda":
            torch.cuda.empty_cache()
    finally:
        outcome.seconds = time.perf_counter() - start
    return outcome


def _distillation(
    context: SearchContext, trial: TrialRow, recipe: Recipe, finished: Sequence[TrialRow]
) -> tuple[Callable | None, dict[str, Any]]:
    """The distillation term of a trial (``None`` when off or no teacher yet) and its record."""
    space = context.space
    if space.distill_weight <= 0:
        return None, {}
    teacher_row = distill.best_teacher(finished, trial.id, space)
    if teacher_row is None:
        return None, {"teacher": None, "note": "no completed trial yet: trained on labels"}
    teacher_dir = trial_dir(context.directory, teacher_row.id)
    if not (teacher_dir / "checkpoint.safetensors").is_file():
        note = f"the teacher's checkpoint (trial {teacher_row.id}) is missing: trained on labels"
        return None, {"teacher": teacher_row.id, "note": note}
    teacher = distill.load_teacher(teacher_dir, space, recipe, context.data, context.runtime)
    term = distill.batch_loss(
        teacher, space.distill_weight, space.distill_loss, space.distill_temperature
    )
    return term, {
        "teacher": teacher_row.id,
        "teacher_is_ensemble": teacher_row.how == ensemble.HOW,
        "weight": space.distill_weight,
        "temperature": space.distill_temperature,
        "loss": space.distill_loss,
        "teacher_outputs": "computed once" if teacher.precomputed else "per augmented batch",
    }


def score(space: SearchSpace, outcome: TrialOutcome, latency: Mapping[str, float]) -> bool:
    """Set ``outcome``'s objective from its validation metrics and costs (parameters, measured
    latency); False, with the error (and ``infeasible`` for a broken latency budget), when the
    trial cannot count."""
    cost = {"params": float(outcome.params), "ms_per_example": latency["ms_per_example"]}
    objective = objectives.value(space, outcome.val_metrics, cost)
    if space.terms:
        outcome.val_metrics[space.objective_key] = objective
    if not math.isfinite(objective):
        outcome.error = f"the objective {space.objective_key} is {objective}"
        return False
    outcome.objective = float(objective)
    limit = space.max_ms_per_example
    if limit is not None and latency["ms_per_example"] > limit:
        outcome.status = "infeasible"
        outcome.error = (
            f"{latency['ms_per_example']:.4f} ms per example > max_ms_per_example {limit}"
        )
        return False
    return True


def run_ensemble_trial(context: SearchContext, trial: TrialRow) -> TrialOutcome:
    """An ensemble trial: greedy selection from the pool its suggestion recorded, scored on
    validation, evaluated once on test, written to ``trials/<id>``."""
    start = time.perf_counter()
    outcome = TrialOutcome(status="failed")
    try:
        pool = [int(i) for i in trial.hparams["pool"]]
        output = trial_dir(context.staging or context.directory, trial.id)
        record = {"trial": trial.id, "how": trial.how}
        if context.is_table:
            val_metrics, test_metrics, members, params = table_trial.build_table_ensemble(
                context, pool, output, record
            )
        else:
            val_metrics, summary, members, params = ensemble.build_ensemble(
                context, pool, output, record, trial_dir
            )
            test_metrics = {k: v for k, v in summary["metrics"].items() if not k.startswith("ood/")}
        val_metrics = {**val_metrics, **objectives.derived(val_metrics)}
        outcome.val_metrics = {**val_metrics, "ensemble/members": float(len(members))}
        outcome.params = params
        objective = val_metrics[context.space.objective_key]
        if not math.isfinite(objective):
            outcome.error = f"the objective {context.space.objective_key} is {objective}"
            return outcome
        outcome.objective = float(objective)
        outcome.test_metrics = test_metrics
        outcome.checkpoint = str(Path(TRIALS_DIR) / output.name / "checkpoint.safetensors")
        outcome.status = "done"
    except (KeyboardInterrupt, StopRequested):
        raise
    except Exception as err:
        outcome.error = _describe(err)
    finally:
        outcome.seconds = time.perf_counter() - start
    return outcome


def trial_dir(directory: Path, trial_id: int) -> Path:
    return directory / TRIALS_DIR / f"{trial_id:04d}"


def remove_stale_staging(directory: Path, running: set[int]) -> list[Path]:
    """Delete the staging folders (``trials/.<id>.partial-*``) that a killed worker left behind,
    except those of trials still ``running`` elsewhere; returns what was removed."""
    removed = []
    for path in sorted((directory / TRIALS_DIR).glob(".*.partial-*")):
        name = path.name[1:].split(".partial-", 1)[0]
        if name.isdigit() and int(name) in running:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _record_test(
    context: SearchContext,
    trial: TrialRow,
    network: torch.nn.Module,
    predict: Callable[[torch.Tensor], Any],
    latency: Mapping[str, Any],
    recipe: Recipe,
    history: list[dict],
    train_seconds: float,
    outcome: TrialOutcome,
    seed: int,
    notes: Mapping[str, Any],
) -> tuple[dict[str, float], str]:
    """Evaluate the test split once and write ``trials/<id>`` atomically; returns the test
    metrics (with the latency measured for the constraint) and the checkpoint path relative to
    the search directory."""
    data, runtime = context.data, context.runtime
    norm = (data.mean, data.std)
    output = trial_dir(context.staging or context.directory, trial.id)
    checkpoint = checkpoint_of(
        METHOD,
        [network],
        norm=norm,
        image_shape=data.image_shape,
        class_names=data.class_names,
        flips=recipe.test_flips,
        trial=trial.id,
    )
    summary = evaluate(
        predict,
        data,
        ood=[context.test_ood] if context.test_ood is not None else [],
        output_dir=output,
        method=METHOD,
        overwrite=True,
        device=runtime.device,
        params=outcome.params,
        train_seconds=train_seconds,
        history=history,
        flag_lines=[
            f"# trial {trial.id} of the search in {context.directory}",
            f"# architecture: {' > '.join(trial.architecture) or '(head only)'}",
            *(f"--{k}={v}" for k, v in sorted(trial.hparams.items())),
        ],
        checkpoint=checkpoint,
        seed=seed,
        latency=latency,
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
        quiet=True,
    )
    test = {k: v for k, v in summary["metrics"].items() if not k.startswith("ood/")}
    relative = Path(TRIALS_DIR) / output.name / "checkpoint.safetensors"
    return test, str(relative)


def as_trial(row: TrialRow, space: SearchSpace) -> Trial:
    """What an algorithm sees of a stored trial: the objective signed so lower is better."""
    objective = None if row.objective is None else space.sign * row.objective
    return Trial(
        id=row.id,
        parent=row.parent,
        architecture=tuple(row.architecture),
        hparams=dict(row.hparams),
        status=row.status,
        objective=objective,
    )


def suggester(context: SearchContext) -> Callable[[list[TrialRow], int], dict[str, Any]]:
    """The store's ``suggest``: the search's algorithm on every trial so far, any status."""
    algorithm = context.algorithm()
    space = context.space

    def suggest(history: list[TrialRow], number: int) -> dict[str, Any]:
        combined = ensemble.ensemble_suggestion(space, history, number)
        if combined is not None:
            return combined
        singles = ensemble.single_trials(history)
        suggestion = algorithm.suggest([as_trial(t, space) for t in singles], number)
        return {
            "architecture": list(suggestion.architecture),
            "hparams": suggestion.hparams,
            "parent": suggestion.parent,
            "how": suggestion.how,
        }

    return suggest


def worker_loop(
    context: SearchContext,
    store: TrialStore,
    *,
    on_finish: Callable[[TrialRow, TrialOutcome], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Claim and run trials until the budget (the ``trials`` setting, re-read at every claim so
    a resumed search may raise it) is used up; returns how many this worker ran."""
    suggest = suggester(context)
    space = context.space
    me = worker_id()
    ran = 0
    while not should_stop():
        trials = int(store.experiment().get("trials", 0))
        budget = ensemble.store_budget(trials, space, store.trials())
        trial = store.claim(budget, suggest, worker=me)
        if trial is None:
            break
        try:
            outcome = run_trial(context, trial, should_stop, store.trials())
        except (KeyboardInterrupt, StopRequested):
            store.release(trial.id, worker=me)
            raise
        written = context.staging is not None and outcome.status == "done"
        staged = trial_dir(context.staging, trial.id) if written else None
        if store.finish(trial.id, worker=me, run_dir=staged, **outcome.as_record()):
            ran += 1
            if on_finish is not None:
                on_finish(trial, outcome)
    return ran
