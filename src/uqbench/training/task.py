"""What the image and text tasks share: the start of a run (flags checked, threads, device), its
per-epoch training state (``--resume``), training a network with it, and :func:`finish_run`
(validation record, one evaluation of the test and OOD sets, the run directory).

``image_task.ImageTask`` and ``text_task.TextTask`` are :class:`Task` with their data, network,
checkpoint and the methods left unimplemented here; scripts reach it all through those modules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from absl import flags as absl_flags
from torch import nn

from uqbench.data.corrupted import CorruptionSuite
from uqbench.training import flags as common
from uqbench.training.classifier import Recipe, Runtime, fit
from uqbench.training.environment import select_device
from uqbench.training.evaluation import PredictFn, evaluate
from uqbench.training.resume import TrainingState
from uqbench.training.rundir import check_output_dir

# Flags that change where or how fast a run goes, or what it prints, not what it computes.
NOT_IN_CONFIG = frozenset(
    {"output_dir", "overwrite", "resume", "quiet", "threads", "eval_batch_size", "flagfile"}
    | {"data_dir", "download"}
)
# The validation carve-out does not depend on --seed: runs with different seeds share it, so
# their networks can be combined and calibrated on data none of them trained on.
VALIDATION_SEED = 0


@dataclass(kw_only=True)
class Task:
    """The resolved data, network choice, recipe and runtime of one run, and where it writes."""

    method: str
    data: Any
    model_name: str
    recipe: Recipe
    runtime: Runtime
    seed: int
    output_dir: Path
    overwrite: bool
    quiet: bool
    training_state: TrainingState | None = None
    started: float = field(default_factory=time.perf_counter)

    def fit_inputs(self) -> dict[str, Any]:
        """``fit``'s arguments for this kind of data: the normalisation and any batch preparation."""
        raise NotImplementedError

    def resume_config(self) -> dict[str, Any]:
        """What the run is, for ``--resume`` to check a saved training state against."""
        raise NotImplementedError

    def calibrate(self, predict: PredictFn) -> tuple[PredictFn, dict[str, Any]]:
        """``predict`` temperature-scaled on validation data if asked, and the validation record."""
        raise NotImplementedError

    def evaluation_sets(self) -> tuple[list[Any], CorruptionSuite | None]:
        """The OOD and corrupted sets evaluated with the test set."""
        raise NotImplementedError

    def summary_fields(self, flag_lines: Sequence[str]) -> dict[str, Any]:
        """What the run's ``summary.json`` records of this kind of task."""
        raise NotImplementedError

    def train(
        self,
        model: nn.Module,
        recipe: Recipe | None = None,
        *,
        seed_offset: int = 0,
        label: str = "",
        **options: Any,
    ) -> tuple[list[dict], float]:
        """``classifier.fit`` of ``model`` on the task's training set with ``recipe`` (default
        the task's), seed ``seed + seed_offset``, the task's runtime and progress settings, and
        a per-epoch checkpoint in the run's training state (``--resume``); ``options`` go to
        ``fit`` (e.g. ``param_groups``). Returns the history and the training seconds (those
        of epochs trained before a resume included)."""
        start = time.perf_counter()
        state = self.training_state.next_fit() if self.training_state is not None else None
        history = fit(
            model,
            self.data.x_train,
            self.data.y_train,
            recipe=recipe or self.recipe,
            runtime=self.runtime,
            seed=self.seed + seed_offset,
            description=f"{self.method} {self.data.name}{label}",
            quiet=self.quiet,
            state=state,
            **self.fit_inputs(),
            **options,
        )
        restored = state.restored_seconds if state is not None else 0.0
        return history, time.perf_counter() - start + restored

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def start_run(missing_dataset: str) -> torch.device:
    """Check the flags every run needs (``missing_dataset``: what to say without --dataset),
    apply --threads and pick the device."""
    if not common.DATASET.value:
        raise ValueError(missing_dataset)
    if common.OUTPUT_DIR.value:
        check_output_dir(common.OUTPUT_DIR.value, common.OVERWRITE.value)
    common.apply_threads()
    return select_device(common.DEVICE.value or "auto")


def run_fields(method: str, dataset_name: str) -> dict[str, Any]:
    """The :class:`Task` fields the flags give every run: seed and where and how it writes."""
    return {
        "method": method,
        "seed": common.SEED.value,
        "output_dir": Path(
            common.OUTPUT_DIR.value or common.default_output_dir(method, dataset_name)
        ),
        "overwrite": common.OVERWRITE.value,
        "quiet": common.QUIET.value,
    }


def open_training_state(task: Task) -> TrainingState:
    """The run's per-epoch training state (``--resume`` continues from it), checked against
    what the run is (``task.resume_config()``) and every result-changing flag given."""
    if common.RESUME.value and not common.OUTPUT_DIR.value:
        raise ValueError("--resume continues the run in --output_dir: give that --output_dir")
    given = {
        name: absl_flags.FLAGS[name].serialize()
        for name in absl_flags.FLAGS
        if absl_flags.FLAGS[name].present and name not in NOT_IN_CONFIG
    }
    config = {**task.resume_config(), "flags": given}
    state = TrainingState.open(
        task.output_dir, config, resume=common.RESUME.value, overwrite=task.overwrite
    )
    if state.resumed:
        task.log(f"{task.method}: resuming from the training state in {state.folder}")
    elif common.RESUME.value:
        task.log(f"{task.method}: no training state to resume in {state.folder}; starting afresh")
    return state


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def finish_run(
    task: Task,
    predict: PredictFn,
    *,
    flag_lines: Sequence[str],
    history: Sequence[Mapping[str, Any]],
    train_seconds: float,
    params: int,
    checkpoint: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validation metrics (temperature-scaled if asked), then the test, OOD and corrupted sets
    evaluated once; writes the run directory and removes the training state."""
    predict, validation = task.calibrate(predict)
    ood, corrupted = task.evaluation_sets()
    summary = evaluate(
        predict,
        task.data,
        ood=ood,
        output_dir=task.output_dir,
        method=task.method,
        overwrite=task.overwrite,
        device=task.runtime.device,
        batch_size=common.EVAL_BATCH_SIZE.value,
        params=params,
        train_seconds=train_seconds,
        history=history,
        flag_lines=flag_lines,
        checkpoint=checkpoint,
        seed=task.seed,
        corrupted=corrupted,
        extra={**task.summary_fields(flag_lines), **validation, **dict(extra or {})},
        quiet=task.quiet,
        table=True,  # --quiet silences progress, not the result table
    )
    if task.training_state is not None:
        task.training_state.remove()
    print(f"{task.method} on {task.data.name}: run directory {task.output_dir.resolve()}")
    return summary
