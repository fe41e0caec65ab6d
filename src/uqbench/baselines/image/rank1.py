"""Rank-1 BNN: BatchEnsemble with Gaussian (or Cauchy) posteriors on the rank-1 factors.

Dusenberry et al. (2020); Uncertainty Baselines' ``baselines/cifar/rank1_bnn.py``. Every
convolution and dense layer becomes a rank-1 layer (``uqbench.layers.rank1``): the shared weight
is a point estimate, the factors ``r``, ``s`` of each of the ``E`` mixture components are drawn
from their posterior for every example. The loss is the NLL plus the KL divergence to the prior
divided by the number of training images, its weight annealed linearly from 0 to 1 over
``--kl_annealing_epochs`` (UB). Batches are tiled as in ``image/batchensemble``; at test
``--num_eval_samples`` draws of each component are averaged.

    uqbench run image/rank1 --dataset=digits --holdout_classes=8,9 --num_members=4
"""

from __future__ import annotations

import torch
from absl import flags

from uqbench.baselines import run_as_script
from uqbench.layers.batch_ensemble import FAST_WEIGHT_INITS, parameter_groups
from uqbench.layers.rank1 import POSTERIORS, kl_divergence, rank1_model
from uqbench.training import flags as common
from uqbench.training import image_task, predictors

POSTERIOR = flags.DEFINE_enum(
    "posterior", None, list(POSTERIORS), "Posterior and prior family; default: normal."
)
PRIOR_STDDEV = flags.DEFINE_float(
    "prior_stddev", None, "Prior scale of the rank-1 factors (prior mean 1); default: 0.1 (UB)."
)
INIT_STDDEV = flags.DEFINE_float(
    "init_stddev",
    None,
    "Initial posterior scale; default: sqrt(0.001 / 0.999), UB's dropout_rate=1e-3.",
)
KL_ANNEALING_EPOCHS = flags.DEFINE_float(
    "kl_annealing_epochs", None, "Epochs over which the KL weight grows to 1; default: 80% of them."
)
NUM_EVAL_SAMPLES = flags.DEFINE_integer(
    "num_eval_samples", None, "Draws per mixture component at test time; default: the protocol's."
)
RANK1_INIT = flags.DEFINE_enum(
    "rank1_init", None, list(FAST_WEIGHT_INITS), "Initial posterior means; default: random_sign."
)
FLAGS_USED = (
    *common.IMAGE_FLAGS,
    common.NUM_MEMBERS,
    POSTERIOR,
    PRIOR_STDDEV,
    INIT_STDDEV,
    KL_ANNEALING_EPOCHS,
    NUM_EVAL_SAMPLES,
    RANK1_INIT,
)
# UB's values, for protocols without their own.
DEFAULTS = {
    "fast_weight_init": "random_sign",
    "fast_weight_lr_multiplier": 1.0,
    "posterior": "normal",
    "prior_mean": 1.0,
    "prior_stddev": 0.1,
    "init_stddev": (1e-3 / (1 - 1e-3)) ** 0.5,
    "kl_annealing_fraction": 0.8,
    "num_eval_samples": 1,
}


def run() -> dict:
    """Train a rank-1 BNN, evaluate its mixture; returns the run summary."""
    task = image_task.prepare_task("image/rank1")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    s = {**DEFAULTS, **task.protocol.settings_for(task.method)}
    size = common.value_or(common.NUM_MEMBERS, task.protocol.num_members)
    options = {
        "fast_weight_init": common.value_or(RANK1_INIT, s["fast_weight_init"]),
        "posterior": common.value_or(POSTERIOR, s["posterior"]),
        "prior_mean": s["prior_mean"],
        "prior_stddev": common.value_or(PRIOR_STDDEV, s["prior_stddev"]),
        "init_stddev": common.value_or(INIT_STDDEV, s["init_stddev"]),
    }
    anneal = common.value_or(KL_ANNEALING_EPOCHS, s["kl_annealing_fraction"] * recipe.epochs)
    samples = common.value_or(NUM_EVAL_SAMPLES, s["num_eval_samples"])
    if size < 1 or samples < 1:
        raise ValueError(
            f"--num_members and --num_eval_samples must be >= 1, got {size}, {samples}"
        )
    if not anneal > 0:
        raise ValueError(f"--kl_annealing_epochs must be positive, got {anneal}")
    per_step = recipe.batch_size // size
    if recipe.batch_size % size:
        raise ValueError(
            f"--batch_size={recipe.batch_size} is not divisible by the ensemble size {size}: "
            "the network sees batch_size / E images tiled E times"
        )
    model = rank1_model(task.build_model(), size, **options)
    train_size = data.y_train.shape[0]
    steps_per_epoch = max(1, train_size // min(per_step, train_size))

    def kl_loss(step: int) -> torch.Tensor:
        """UB: min(1, (step + 1) / (steps_per_epoch * annealing epochs)) * KL / N."""
        weight = min(1.0, (step + 1) / (steps_per_epoch * anneal))
        return weight * kl_divergence(model) / train_size

    history, train_seconds = task.train(
        model,
        recipe.with_overrides(batch_size=per_step),
        param_groups=parameter_groups(model, s["fast_weight_lr_multiplier"]),
        extra_loss=kl_loss,
    )
    torch.manual_seed(task.seed)  # the test-time draws are reproducible

    norm = (data.mean, data.std)
    rank_one = {"kind": "rank1", "ensemble_size": size, **options}
    return image_task.finish_run(
        task,
        predictors.rank_one_ensemble(model, norm, runtime, recipe.test_flips, samples),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model.network], rank_one=rank_one, num_eval_samples=samples),
        extra={**rank_one, "num_eval_samples": samples, "kl_annealing_epochs": anneal},
    )


if __name__ == "__main__":
    run_as_script(run)
