"""Shared mechanics of the text baselines: flags -> token ids on the device, the network and
recipe of the model, training with a per-epoch state (``--resume``), and the run directory.

A text baseline reads as an image baseline does: ``task = prepare_text_task(...)``, build and
train its networks with ``task.build_model`` / ``task.train``, define ``predict(ids) ->
probabilities`` (``text_predictors``), then ``finish_run(task, predict, ...)``.

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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from absl import flags as absl_flags
from torch import nn

from uqbench import data, models
from uqbench.data.text import TextDataset
from uqbench.data.tokenize import trim_padding
from uqbench.training import flags as common
from uqbench.training import text_predictors
from uqbench.training.classifier import Recipe, Runtime
from uqbench.training.evaluation import PredictFn, collect, ood_metrics
from uqbench.training.image_task import fit_temperature_scaling
from uqbench.training.task import (
    VALIDATION_SEED,
    Task,
    open_training_state,
    run_fields,
    start_run,
)
from uqbench.training.task import count_parameters as count_parameters  # for the scripts
from uqbench.training.task import finish_run as finish_run  # for the scripts

DEFAULT_MODEL = "textcnn"
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


@dataclass(kw_only=True)
class TextTask(Task):
    """The resolved data, network choice, recipe and runtime of one text run."""

    data: TextDataset

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

    def fit_inputs(self) -> dict[str, Any]:
        """Token ids are not normalised; each batch is trimmed to its longest sequence."""
        return {"mean": (), "std": (), "prepare": self.prepare}

    def resume_config(self) -> dict[str, Any]:
        """Method, data, tokenizer, network, recipe and seed."""
        return {
            "method": self.method,
            "data_hash": self.data.data_hash,
            "tokenizer": hashlib.sha256(self.data.tokenizer.to_str().encode()).hexdigest(),
            "classes": list(self.data.class_names),
            "model": self.model_name,
            "recipe": self.recipe.as_dict(),
            "seed": self.seed,
        }

    def calibrate(self, predict: PredictFn) -> tuple[PredictFn, dict[str, Any]]:
        """Validation metrics (accuracy, NLL, ECE, and OOD detection of ``oos_val``, the set for
        choices), with a temperature fitted first with ``--temperature_scaling``; the test sets
        stay untouched."""
        if len(self.data.y_val) == 0:
            return predict, {"validation": {}}
        labels = self.data.y_val.cpu().numpy()
        label = f"{self.method} {self.data.name}: validation predictions"
        device = self.runtime.device
        scale = bool(common.TEMPERATURE_SCALING.value)
        predict, record = fit_temperature_scaling(
            predict, self.data.x_val, labels, device, label=label, quiet=self.quiet, scale=scale
        )
        if self.data.ood_val is not None:
            inside = collect(predict, self.data.x_val, device, label=label, quiet=self.quiet)
            outside = collect(predict, self.data.ood_val.inputs, device, label=label, quiet=True)
            scores = ood_metrics(inside.scores(), outside.scores(), self.data.ood_val.name)
            record["validation"].update({f"val/{k}": v for k, v in scores.items()})
        if "temperature" in record:
            self.log(f"{self.method}: temperature {record['temperature']:.3f} fitted on validation")
        return predict, record

    def evaluation_sets(self) -> tuple[list[Any], None]:
        """``oos_test`` (where the set has one); text has no corrupted sets."""
        return [self.data.ood_test] if self.data.ood_test is not None else [], None

    def summary_fields(self, flag_lines: Sequence[str]) -> dict[str, Any]:
        """Network, recipe, runtime, validation carve-out, classes and tokenizer."""
        return {
            "model": self.model_name,
            "recipe": self.recipe.as_dict(),
            "runtime": {"precision": self.runtime.precision, "threads": torch.get_num_threads()},
            "validation_fraction": self.data.validation_fraction,
            "classes": list(self.data.class_names),
            "vocab_size": self.data.vocab_size,
            "max_length": self.data.max_length,
            "tokenizer": common.TOKENIZER.value or "built from the training texts",
        }

    def checkpoint(
        self, networks: Sequence[nn.Module], **settings: Any
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``checkpoint.safetensors`` of ``networks`` with the tokenizer, classes and the
        method's ``settings``."""
        return text_predictors.checkpoint_of(self.method, networks, self.data, **settings)


def recipe_key(model_name: str) -> str:
    """Which recipe a model trains with: its own, or the transformer's for a user's encoder."""
    key = model_name.strip().lower()
    return key if key in RECIPES else "transformer"


def prepare_text_task(method: str) -> TextTask:
    """Read the text flags, load and tokenise the data set onto the device and resolve the
    recipe; every problem is a clear ``ValueError`` before any training starts."""
    device = start_run(
        "--dataset is required: clinc150 (with --data_dir), or the path of a .json file in "
        "CLINC150's layout or a .csv file with text,label columns"
    )
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
    task = TextTask(
        **run_fields(method, dataset.name),
        data=dataset.to(device),
        model_name=model_name,
        recipe=recipe,
        runtime=runtime,
    )
    task.training_state = open_training_state(task)
    task.log(
        f"{method}: {dataset.name} ({len(dataset.y_train)} train, {len(dataset.y_val)} "
        f"validation, {len(dataset.y_test)} test, {dataset.num_classes} classes, vocabulary "
        f"{dataset.vocab_size}), {model_name}, {recipe.epochs} epochs, {device}; OOD: "
        f"{', '.join(s.name for s in (dataset.ood_val, dataset.ood_test) if s) or 'none'}"
    )
    return task
