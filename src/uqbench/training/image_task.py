"""Shared mechanics of the image baselines: flags -> data on the device, OOD sets, the network
and recipe of the protocol, temperature scaling, and the run directory.

A baseline script reads as: ``task = prepare_task(...)``, build and train its networks with
``uqbench.training.classifier``, define ``predict(images) -> probabilities``, then
``finish_run(task, predict, ...)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import log_softmax
from torch import nn

from uqbench import data, metrics, models
from uqbench.data import augment
from uqbench.data import ood as ood_sets
from uqbench.data.corrupted import CorruptionSuite, resolve_corruptions, resolve_severities
from uqbench.data.images import channel_stats
from uqbench.layers.temperature import fit_temperature
from uqbench.protocol_ids import flag_values, image_protocol_id
from uqbench.training import flags as common
from uqbench.training import predictors
from uqbench.training.classifier import Runtime
from uqbench.training.evaluation import PredictFn, Predictions, collect, nll
from uqbench.training.protocols import Protocol, choose_protocol, for_images
from uqbench.training.task import (
    VALIDATION_SEED,
    Task,
    open_training_state,
    run_fields,
    start_run,
)
from uqbench.training.task import count_parameters as count_parameters  # for the scripts
from uqbench.training.task import finish_run as finish_run  # for the scripts

SUBSET_SEED = 0
INIT_IMAGES = 5000


@dataclass(kw_only=True)
class ImageTask(Task):
    """The resolved data, OOD sets, network choice, recipe and runtime of one image run."""

    ood: list[Any]
    ood_skipped: list[str]
    protocol: Protocol
    validation_fraction: float
    corrupted: CorruptionSuite | None = None

    def build_model(
        self, dropout_rate: float = 0.0, seed_offset: int = 0, stacked_inputs: int = 1
    ) -> nn.Module:
        """A freshly initialised network of the task's architecture on the task's device
        (initialisation seeded by ``seed + seed_offset``). Networks with a data-dependent
        initialisation (``init_from_images``, e.g. fast_cifar's patch whitening) get it from
        up to 5,000 normalised training images. ``stacked_inputs=M`` builds MIMO's trunk: M
        images stacked on the channel axis in, M sets of logits out."""
        torch.manual_seed(self.seed + seed_offset)
        channels, size = self.data.image_shape[0], self.data.image_shape[1]
        model = models.get(
            self.model_name,
            num_classes=self.data.num_classes * stacked_inputs,
            in_channels=channels * stacked_inputs,
            image_size=size,
            dropout_rate=dropout_rate,
        ).to(self.runtime.device)
        if hasattr(model, "init_from_images"):
            sample = self.data.x_train[:INIT_IMAGES]
            model.init_from_images(augment.normalize(sample, self.data.mean, self.data.std))
        return model

    def fit_inputs(self) -> dict[str, Any]:
        """Images are normalised by the training set's per-channel mean and std."""
        return {"mean": self.data.mean, "std": self.data.std}

    def resume_config(self) -> dict[str, Any]:
        """Method, data, network, protocol, recipe, seed and validation carve-out."""
        return {
            "method": self.method,
            "data_hash": self.data.data_hash,
            "classes": list(self.data.class_names),
            "model": self.model_name,
            "protocol": self.protocol.name,
            "recipe": self.recipe.as_dict(),
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
        }

    def calibrate(self, predict: PredictFn) -> tuple[PredictFn, dict[str, Any]]:
        """With ``--temperature_scaling``, fit T on the validation set and return the tempered
        predictor (:func:`fit_temperature_scaling`); else ``predict`` unchanged, with the
        validation metrics when there is a validation set."""
        if self.data.x_val.shape[0] == 0:
            return predict, {"validation": {}}
        predict, record = fit_temperature_scaling(
            predict,
            self.data.x_val,
            self.data.y_val.cpu().numpy(),
            self.runtime.device,
            label=f"{self.method} {self.data.name}: validation predictions",
            quiet=self.quiet,
            scale=bool(common.TEMPERATURE_SCALING.value),
        )
        if "temperature" in record:
            self.log(
                f"{self.method}: temperature {record['temperature']:.3f} fitted on the "
                "validation set"
            )
        return predict, record

    def evaluation_sets(self) -> tuple[list[Any], CorruptionSuite | None]:
        """The held-out classes and other OOD sets asked for, and the corrupted test sets."""
        return self.ood, self.corrupted

    def summary_fields(self, flag_lines: Sequence[str]) -> dict[str, Any]:
        """Network, protocol (and its id), recipe, runtime, data choices and classes."""
        return {
            "model": self.model_name,
            "protocol": self.protocol.name,
            "protocol_id": image_protocol_id(
                self.protocol.name, self.model_name, flag_values(flag_lines)
            ),
            "recipe": self.recipe.as_dict(),
            "runtime": {
                "precision": self.runtime.precision,
                "channels_last": self.runtime.channels_last,
                "compile": self.runtime.compile,
                "threads": torch.get_num_threads(),
            },
            "validation_fraction": self.validation_fraction,
            "train_subset": common.TRAIN_SUBSET.value,
            "classes": list(self.data.class_names),
            "ood_skipped": self.ood_skipped,
        }

    def checkpoint(
        self, networks: Sequence[nn.Module], **settings: Any
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``checkpoint.safetensors`` of ``networks`` with the task's normalisation, image shape,
        classes and test flips, and the method's ``settings`` in the metadata."""
        return predictors.checkpoint_of(
            self.method,
            networks,
            norm=(self.data.mean, self.data.std),
            image_shape=self.data.image_shape,
            class_names=self.data.class_names,
            flips=self.recipe.test_flips,
            **settings,
        )


def prepare_task(method: str) -> ImageTask:
    """Read the image flags, load the data set onto the device, resolve the OOD sets and the
    protocol; every problem is a clear ``ValueError`` before any training starts."""
    device = start_run(
        "--dataset is required: a name (e.g. digits, cifar10; `uqbench list datasets`) or a "
        "path to an image folder / archive"
    )
    runtime = Runtime.for_device(
        device, precision=common.PRECISION.value, compile=common.COMPILE.value
    )
    protocol = choose_protocol(common.PROTOCOL.value, common.MODEL.value, device.type)
    model_name = common.value_or(common.MODEL, protocol.model_for(method))
    models.check_name(model_name)
    validation_fraction = common.value_or(common.VALIDATION_FRACTION, protocol.validation_fraction)
    if common.TEMPERATURE_SCALING.value and not validation_fraction:
        given = common.VALIDATION_FRACTION.value is not None
        raise ValueError(
            "--temperature_scaling fits the temperature on validation data: set "
            "--validation_fraction > 0 (e.g. 0.1)"
            + (
                ""
                if given
                else f"; protocol {protocol.name}'s default is {protocol.validation_fraction:g} "
                "(Uncertainty Baselines trains on every training image)"
            )
        )
    # The validation carve-out does not depend on --seed (image/ensemble --members_from).
    dataset = data.get_images(
        common.DATASET.value,
        data_dir=common.DATA_DIR.value,
        validation_fraction=validation_fraction,
        seed=VALIDATION_SEED,
        download=common.DOWNLOAD.value,
    )
    sized = for_images(protocol, common.PROTOCOL.value, dataset.image_shape)
    if sized is not protocol:  # same validation carve-out: the data loaded above stays right
        protocol = sized
        model_name = common.value_or(common.MODEL, protocol.model_for(method))
    ood: list[Any] = []
    if common.HOLDOUT_CLASSES.value:
        dataset, held_out = ood_sets.hold_out_classes(dataset, common.HOLDOUT_CLASSES.value)
        ood.append(held_out)
    if common.TRAIN_SUBSET.value is not None:
        dataset = train_subset(dataset, common.TRAIN_SUBSET.value)
    extra_ood, skipped = ood_sets.resolve_ood(common.OOD.value, dataset, common.DATA_DIR.value)
    ood.extend(extra_ood)
    recipe = common.recipe_with_flags(protocol.recipe_for(method))
    task = ImageTask(
        **run_fields(method, dataset.name),
        data=dataset.to(device),
        ood=ood,
        ood_skipped=skipped,
        protocol=protocol,
        model_name=model_name,
        recipe=recipe,
        runtime=runtime,
        validation_fraction=validation_fraction,
    )
    task.corrupted = corruption_suite(task.data)
    task.training_state = open_training_state(task)
    task.log(
        f"{method}: {dataset.name} ({dataset.x_train.shape[0]} train, {dataset.x_val.shape[0]} "
        f"validation, {dataset.x_test.shape[0]} test, {dataset.num_classes} classes), "
        f"{model_name}, protocol {protocol.name}, {recipe.epochs} epochs, {device} "
        f"({runtime.precision}); OOD: {', '.join(s.name for s in ood) or 'none'}"
        + (f"; skipped: {'; '.join(skipped)}" if skipped else "")
        + (
            f"; corruptions: {len(task.corrupted)} sets of {len(task.corrupted.index)} images"
            if task.corrupted is not None
            else ""
        )
    )
    return task


def corruption_suite(dataset: data.ImageDataset) -> CorruptionSuite | None:
    """The corrupted test sets the ``--corruptions`` flags ask for (None for none), checked
    before anything trains: names, severities, subset size and a CIFAR-10-C folder's files."""
    names = resolve_corruptions(common.CORRUPTIONS.value)
    if not names:
        return None
    count = common.CORRUPTION_IMAGES.value
    if count < 0:
        raise ValueError(f"--corruption_images must be >= 0 (0: every test image), got {count}")
    suite = CorruptionSuite(
        dataset,
        tuple(names),
        tuple(resolve_severities(common.CORRUPTION_SEVERITIES.value)),
        count=count or None,
        cifar_c_dir=common.CIFAR10C_DIR.value,
    )
    suite.check()
    return suite


def train_subset(dataset: data.ImageDataset, size: int) -> data.ImageDataset:
    """``dataset`` trained on ``size`` of its training images: each class gives its share
    (largest remainders first, ties to the lower class), drawn with a fixed seed (the same
    images for every ``--seed``); mean/std are recomputed from the images kept."""
    labels = dataset.y_train.cpu().numpy()
    total, num_classes = len(labels), dataset.num_classes
    if not num_classes <= size <= total:
        raise ValueError(
            f"--train_subset={size}: {dataset.name} has {total} training images (after the "
            f"validation carve-out) in {num_classes} classes; give a number from {num_classes} "
            f"to {total}"
        )
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / total
    take = np.floor(exact).astype(np.int64)
    order = sorted(range(len(classes)), key=lambda i: (-(exact[i] - take[i]), i))
    take[order[: size - int(take.sum())]] += 1
    empty = [dataset.class_names[c] for c in range(num_classes) if c not in classes[take > 0]]
    if empty:
        raise ValueError(
            f"--train_subset={size} leaves class(es) {', '.join(empty)} of {dataset.name} "
            "without training images; give a larger number"
        )
    rng = np.random.default_rng([SUBSET_SEED, 1])
    chosen = [
        rng.permutation(np.flatnonzero(labels == c))[:t] for c, t in zip(classes, take, strict=True)
    ]
    keep = torch.from_numpy(np.sort(np.concatenate(chosen))).to(dataset.device)
    x_train = dataset.x_train[keep].contiguous()
    mean, std = channel_stats(x_train)
    return dataclasses.replace(
        dataset, x_train=x_train, y_train=dataset.y_train[keep], mean=mean, std=std
    )


def tempered(predict: PredictFn, temperature: float) -> PredictFn:
    """``predict`` with its mean prediction divided by ``temperature`` in log space:
    ``softmax(log p / T)`` (for one network this is ``softmax(logits / T)``), from the exact
    log-probabilities where the outputs give them; member probabilities are left as they are,
    logits are divided by T."""

    def predict_tempered(images: torch.Tensor) -> dict[str, torch.Tensor]:
        out = predict(images)
        out = dict(out) if isinstance(out, Mapping) else {"probs": out}
        if "log_probs" in out:
            log_probs = out["log_probs"]
        elif "logits" in out:
            log_probs = out["logits"].float().log_softmax(dim=-1)
        else:
            log_probs = out["probs"].clamp_min(torch.finfo(torch.float32).smallest_normal).log()
        scaled = (log_probs / temperature).log_softmax(dim=-1)
        out["probs"] = scaled.exp()
        if "logits" in out:
            out["logits"] = out["logits"] / temperature
        if "log_probs" in out or "logits" not in out:
            out["log_probs"] = scaled
        return out

    return predict_tempered


def validation_metrics(
    predictions: Predictions, labels: np.ndarray, prefix: str
) -> dict[str, float]:
    """Accuracy, NLL and ECE of validation ``predictions``."""
    probs = predictions.probs
    return {
        f"{prefix}/accuracy": metrics.accuracy(probs, labels),
        f"{prefix}/nll": nll(probs, labels, predictions.log_probabilities()),
        f"{prefix}/ece": metrics.ece(probs, labels),
    }


def fit_temperature_scaling(
    predict: PredictFn,
    images: torch.Tensor,
    labels: np.ndarray,
    device: torch.device,
    *,
    label: str,
    quiet: bool,
    scale: bool = True,
) -> tuple[PredictFn, dict[str, Any]]:
    """Fit a temperature T on validation ``images`` (the exact log of the mean predicted
    probabilities as logits) and return the tempered predictor with a record of T and the
    validation metrics before and after, all from one pass over the images (Monte-Carlo
    methods sample once; the scaled metrics divide those log-probabilities by T). With
    ``scale=False`` only the metrics before: ``predict`` is returned unchanged."""
    predictions = collect(predict, images, device, label=label, quiet=quiet)
    record: dict[str, Any] = {"validation": validation_metrics(predictions, labels, "val")}
    if not scale:
        return predict, record
    log_probs = predictions.log_probabilities()
    if log_probs is None:
        log_probs = np.log(
            np.maximum(predictions.probs.astype(np.float64), np.finfo(np.float32).tiny)
        )
    temperature = fit_temperature(log_probs, labels)
    record["temperature"] = temperature
    scaled_log_probs = log_softmax(np.asarray(log_probs, np.float64) / temperature, axis=1)
    scaled_predictions = Predictions(np.exp(scaled_log_probs), log_probs=scaled_log_probs)
    record["validation"].update(validation_metrics(scaled_predictions, labels, "val_scaled"))
    return tempered(predict, temperature), record
