"""Shared mechanics of the text baselines: flags -> token ids on the device, the network and
recipe of the model, training with a per-epoch state (``--resume``), and the run directory.

A text baseline reads as an image baseline does: ``task = prepare_text_task(...)``, build and
train its networks with ``task.build_model`` / ``task.train``, define ``predict(ids) ->
probabilities`` (``text_predictors``), then ``finish_text_run(task, predict, ...)``.

Recipes (:data:`RECIPES`, AdamW with a cosine decay to 0, batch 64; every flag overrides them).
TextCNN: 10 epochs at rate 3e-3, weight decay 0.01 (Kim 2014 with AdamW in place of Adadelta);
chosen on CLINC150's validation accuracy among (rate, weight decay, epochs) = (1e-3, 1e-4, 6):
0.836, (3e-3, 1e-4, 6): 0.884, (3e-3, 1e-4, 10): 0.893, (3e-3, 0.01, 10): 0.896 and
(3e-3, 0.01, 15): 0.896 (seed 0). The transformer (and a user's encoder): 10 epochs at 1e-3 with
one warm-up epoch, weight decay 0.01 (validation accuracy 0.861 in one try). An epoch of either
took 12-20 s on one thread of the shared 2-core machine (docs/results/text.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from absl import flags as absl_flags
from torch import nn

from uqbench import data, models
from uqbench.data.text import TextDataset
from uqbench.data.tokenize import trim_padding
from uqbench.training import flags as common
from uqbench.training import text_predictors
from uqbench.training.classifier import Recipe, Runtime, fit
from uqbench.training.environment import select_device
from uqbench.training.evaluation import PredictFn, collect, evaluate, ood_metrics
from uqbench.training.image_task import NOT_IN_CONFIG, fit_temperature_scaling
from uqbench.training.resume import TrainingState
from uqbench.training.rundir import check_output_dir

DEFAULT_MODEL = "textcnn"
VALIDATION_SEED = 0
_ADAMW = {"optimizer": "adamw", "schedule": "cosine", "crop_padding": 0, "flip": False}
RECIPES = {
    "textcnn": Recipe(epochs=10, batch_size=64, learning_rate=3e-3, weight_decay=0.01, **_ADAMW),
    "transformer": Recipe(
        epochs=10,
        batch_size=64,
        learning_rate=1e-3,
        weight_decay=0.01,
        warmup_epochs=1.0,
        **_ADAMW,
    ),
}


@dataclass
class TextTask:
    """The resolved data, network choice, recipe and runtime of one text run."""

    method: str
    data: TextDataset
    model_name: str
    recipe: Recipe
    runtime: Runtime
    seed: int
    output_dir: Path
    overwrite: bool
    quiet: bool
    training_state: TrainingState | None = None
    started: float = field(default_factory=time.perf_counter)

    def build_model(self, dropout_rate: float | None = None, seed_offset: int = 0) -> nn.Module:
        """A freshly initialised network of the task's model on its device (initialisation
        seeded by ``seed + seed_offset``); ``dropout_rate`` None keeps the model's default."""
        torch.manual_seed(self.seed + seed_offset)
        return models.get_text_model(
            self.model_name,
            vocab_size=self.data.vocab_size,
            num_classes=self.data.num_classes,
            max_length=self.data.max_length,
            pad_id=self.data.pad_id,
            dropout_rate=dropout_rate,
        ).to(self.runtime.device)

    def prepare(self, ids: torch.Tensor) -> torch.Tensor:
        """A training batch of padded ids trimmed to its longest sequence (on the device)."""
        return trim_padding(ids, self.data.pad_id)

    def train(
        self,
        model: nn.Module,
        recipe: Recipe | None = None,
        *,
        seed_offset: int = 0,
        label: str = "",
        **options: Any,
    ) -> tuple[list[dict], float]:
        """``classifier.fit`` of ``model`` on the training ids with ``recipe`` (default the
        task's), seed ``seed + seed_offset`` and a per-epoch checkpoint (``--resume``);
        ``options`` go to ``fit``. Returns the history and the training seconds."""
        start = time.perf_counter()
        state = self.training_state.next_fit() if self.training_state is not None else None
        history = fit(
            model,
            self.data.x_train,
            self.data.y_train,
            (),
            (),
            recipe or self.recipe,
            self.runtime,
            seed=self.seed + seed_offset,
            description=f"{self.method} {self.data.name}{label}",
            quiet=self.quiet,
            state=state,
            prepare=self.prepare,
            **options,
        )
        restored = state.restored_seconds if state is not None else 0.0
        return history, time.perf_counter() - start + restored

    def checkpoint(
        self, networks: Sequence[nn.Module], **settings: Any
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``checkpoint.safetensors`` of ``networks`` with the tokenizer, classes and the
        method's ``settings``."""
        return text_predictors.checkpoint_of(self.method, networks, self.data, **settings)

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, flush=True)


def recipe_key(model_name: str) -> str:
    """Which recipe a model trains with: its own, or the transformer's for a user's encoder."""
    key = model_name.strip().lower()
    return key if key in RECIPES else "transformer"


def prepare_text_task(method: str) -> TextTask:
    """Read the text flags, load and tokenise the data set onto the device and resolve the
    recipe; every problem is a clear ``ValueError`` before any training starts."""
    if not common.DATASET.value:
        raise ValueError(
            "--dataset is required: clinc150 (with --data_dir), or the path of a .json file in "
            "CLINC150's layout or a .csv file with text,label columns"
        )
    if common.OUTPUT_DIR.value:
        check_output_dir(common.OUTPUT_DIR.value, common.OVERWRITE.value)
    common.apply_threads()
    device = select_device(common.DEVICE.value or "auto")
    runtime = Runtime.for_device(device, precision=common.PRECISION.value)
    model_name = common.value_or(common.MODEL, DEFAULT_MODEL)
    models.check_text_model(model_name)
    if common.TOKENIZER.value and absl_flags.FLAGS["vocab_size"].present:
        raise ValueError("--vocab_size sizes a vocabulary built here; --tokenizer brings its own")
    validation_fraction = common.value_or(common.VALIDATION_FRACTION, 0.1)
    dataset = data.get_text(
        common.DATASET.value,
        data_dir=common.DATA_DIR.value,
        validation_fraction=validation_fraction,
        seed=VALIDATION_SEED,
        vocab_size=common.VOCAB_SIZE.value,
        max_length=common.MAX_LENGTH.value,
        tokenizer=common.TOKENIZER.value,
    )
    own_validation = dataset.validation_fraction == 0 and len(dataset.y_val) > 0
    if common.VALIDATION_FRACTION.value is not None and own_validation:
        raise ValueError(
            f"{dataset.name} has its own validation part (val): --validation_fraction applies "
            "only to sets without one; leave it out"
        )
    if common.TEMPERATURE_SCALING.value and len(dataset.y_val) == 0:
        raise ValueError(
            "--temperature_scaling fits the temperature on validation data: the set has no val "
            "part, so give --validation_fraction > 0"
        )
    recipe = common.recipe_with_flags(RECIPES[recipe_key(model_name)])
    output = Path(common.OUTPUT_DIR.value or common.default_output_dir(method, dataset.name))
    task = TextTask(
        method=method,
        data=dataset.to(device),
        model_name=model_name,
        recipe=recipe,
        runtime=runtime,
        seed=common.SEED.value,
        output_dir=output,
        overwrite=common.OVERWRITE.value,
        quiet=common.QUIET.value,
    )
    task.training_state = open_training_state(task)
    task.log(
        f"{method}: {dataset.name} ({len(dataset.y_train)} train, {len(dataset.y_val)} "
        f"validation, {len(dataset.y_test)} test, {dataset.num_classes} classes, vocabulary "
        f"{dataset.vocab_size}), {model_name}, {recipe.epochs} epochs, {device}; OOD: "
        f"{', '.join(s.name for s in (dataset.ood_val, dataset.ood_test) if s) or 'none'}"
    )
    return task


def open_training_state(task: TextTask) -> TrainingState:
    """The run's per-epoch training state, checked against what the run is: method, data,
    tokenizer, network, recipe, seed and every result-changing flag given."""
    if common.RESUME.value and not common.OUTPUT_DIR.value:
        raise ValueError("--resume continues the run in --output_dir: give that --output_dir")
    given = {
        name: absl_flags.FLAGS[name].serialize()
        for name in absl_flags.FLAGS
        if absl_flags.FLAGS[name].present and name not in NOT_IN_CONFIG
    }
    config = {
        "method": task.method,
        "data_hash": task.data.data_hash,
        "tokenizer": hashlib.sha256(task.data.tokenizer.to_str().encode()).hexdigest(),
        "classes": list(task.data.class_names),
        "model": task.model_name,
        "recipe": task.recipe.as_dict(),
        "seed": task.seed,
        "flags": given,
    }
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


def validation_record(
    task: TextTask, predict: PredictFn, scale: bool
) -> tuple[PredictFn, dict[str, Any]]:
    """Validation metrics (accuracy, NLL, ECE, and OOD detection of ``oos_val``, the set for
    choices), with a temperature fitted first when ``scale``; the test sets stay untouched."""
    if len(task.data.y_val) == 0:
        return predict, {"validation": {}}
    labels = task.data.y_val.cpu().numpy()
    label = f"{task.method} {task.data.name}: validation predictions"
    device = task.runtime.device
    predict, record = fit_temperature_scaling(
        predict, task.data.x_val, labels, device, label=label, quiet=task.quiet, scale=scale
    )
    if task.data.ood_val is not None:
        inside = collect(predict, task.data.x_val, device, label=label, quiet=task.quiet)
        outside = collect(predict, task.data.ood_val.inputs, device, label=label, quiet=True)
        scores = ood_metrics(inside.scores(), outside.scores(), task.data.ood_val.name)
        record["validation"].update({f"val/{k}": v for k, v in scores.items()})
    if "temperature" in record:
        task.log(f"{task.method}: temperature {record['temperature']:.3f} fitted on validation")
    return predict, record


def finish_text_run(
    task: TextTask,
    predict: PredictFn,
    *,
    flag_lines: Sequence[str],
    history: Sequence[Mapping[str, Any]],
    train_seconds: float,
    params: int,
    checkpoint: tuple[Mapping[str, torch.Tensor], Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Validation metrics (temperature-scaled if asked), then the test set and ``oos_test``
    evaluated once; writes the run directory."""
    predict, validation = validation_record(task, predict, bool(common.TEMPERATURE_SCALING.value))
    summary = evaluate(
        predict,
        task.data,
        ood=[task.data.ood_test] if task.data.ood_test is not None else [],
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
        extra={
            "model": task.model_name,
            "recipe": task.recipe.as_dict(),
            "runtime": {"precision": task.runtime.precision, "threads": torch.get_num_threads()},
            "validation_fraction": task.data.validation_fraction,
            "classes": list(task.data.class_names),
            "vocab_size": task.data.vocab_size,
            "max_length": task.data.max_length,
            "tokenizer": common.TOKENIZER.value or "built from the training texts",
            **validation,
            **dict(extra or {}),
        },
        quiet=task.quiet,
        table=True,
    )
    if task.training_state is not None:
        task.training_state.remove()
    print(f"{task.method} on {task.data.name}: run directory {task.output_dir.resolve()}")
    return summary
