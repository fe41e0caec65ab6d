"""Heteroscedastic: a softmax head with correlated, input-dependent Gaussian logit noise.

Collier et al. (2021, "Correlated Input-Dependent Label Noise in Large-Scale Image
Classification"), as Uncertainty Baselines' ``cifar/heteroscedastic.py``: the network's output
layer becomes ``uqbench.layers.HeteroscedasticSoftmaxHead`` (location, ``--num_factors`` low-rank
factors and a softplus diagonal of the logit covariance); training minimises the NLL of the
Monte-Carlo mean of ``softmax(logits / --temperature)`` over ``--train_mc_samples`` draws, and the
prediction is that mean over ``--test_mc_samples`` draws. Under ``--protocol=ub`` the settings
and recipe are UB's (6 factors, temperature 1.3, 10,000 samples; deterministic.py's recipe).

    uqbench run image/heteroscedastic --dataset=digits --holdout_classes=8,9
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from absl import flags

from uqbench.baselines import run_as_script
from uqbench.layers.heteroscedastic_classification import attach_heteroscedastic_head
from uqbench.training import flags as common
from uqbench.training import image_task, predictors

NUM_FACTORS = flags.DEFINE_integer(
    "num_factors",
    None,
    "Rank of the low-rank part of the logit-noise covariance (0: diagonal only, at most the "
    "number of classes); default: the protocol's.",
)
TEMPERATURE = flags.DEFINE_float(
    "temperature",
    None,
    "Softmax temperature of the heteroscedastic head, fixed during training (not "
    "--temperature_scaling, which is fitted afterwards); default: the protocol's.",
)
TRAIN_MC_SAMPLES = flags.DEFINE_integer(
    "train_mc_samples", None, "Monte-Carlo logit samples per training step; default: protocol's."
)
TEST_MC_SAMPLES = flags.DEFINE_integer(
    "test_mc_samples", None, "Monte-Carlo logit samples per prediction; default: protocol's."
)
FLAGS_USED = (
    *common.IMAGE_FLAGS,
    NUM_FACTORS,
    TEMPERATURE,
    TRAIN_MC_SAMPLES,
    TEST_MC_SAMPLES,
)


def head_settings(defaults: Mapping[str, Any], num_classes: int) -> dict:
    """The head's settings from the flags and the protocol's ``defaults`` (UB's CIFAR flags under
    ``ub``, tuned on digits under ``cpu``: training/protocols.py); a ``ValueError`` for any that
    cannot work, before anything trains."""
    settings = {
        "num_factors": common.value_or(NUM_FACTORS, min(defaults["num_factors"], num_classes)),
        "temperature": common.value_or(TEMPERATURE, defaults["temperature"]),
        "train_mc_samples": common.value_or(TRAIN_MC_SAMPLES, defaults["train_mc_samples"]),
        "test_mc_samples": common.value_or(TEST_MC_SAMPLES, defaults["test_mc_samples"]),
    }
    problems = []
    if not 0 <= settings["num_factors"] <= num_classes:
        problems.append(
            f"--num_factors must be in [0, {num_classes}] (the number of classes), got "
            f"{settings['num_factors']}"
        )
    if not settings["temperature"] > 0:
        problems.append(f"--temperature must be positive, got {settings['temperature']}")
    for name in ("train_mc_samples", "test_mc_samples"):
        if settings[name] < 1:
            problems.append(f"--{name} must be at least 1, got {settings[name]}")
    if problems:
        raise ValueError("; ".join(problems))
    return settings


def run() -> dict:
    """Train a network with a heteroscedastic head, evaluate its Monte-Carlo prediction."""
    task = image_task.prepare_task("image/heteroscedastic")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    settings = head_settings(task.protocol.settings_for(task.method), data.num_classes)
    model = task.build_model()
    probe = torch.zeros(2, *data.image_shape, device=runtime.device)
    attach_heteroscedastic_head(model, data.num_classes, probe=probe, **settings)
    history, train_seconds = task.train(model)
    torch.manual_seed(task.seed)  # the Monte-Carlo samples are reproducible
    norm = (data.mean, data.std)
    return image_task.finish_run(
        task,
        predictors.single(model, norm, runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model], heteroscedastic_head=settings),
        extra={"heteroscedastic_head": settings},
    )


if __name__ == "__main__":
    run_as_script(run)
