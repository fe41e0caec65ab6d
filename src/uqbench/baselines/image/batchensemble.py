"""BatchEnsemble: E members sharing each layer's weight, each with its own rank-1 fast weights.

Wen, Tran & Ba (2020); Uncertainty Baselines' ``baselines/cifar/batchensemble.py``. Every
convolution and dense layer of the network becomes a BatchEnsemble layer
(``uqbench.layers.batch_ensemble``); batch norm is shared. In training every member sees the
whole minibatch: ``--batch_size`` counts the rows the network sees, ``batch_size / E`` images
tiled ``E`` times, as UB's ``per_core_batch_size``. Weight decay reaches the shared weights,
batch norm and biases only, never the fast weights, which (with the members' biases) learn at
``--fast_weight_lr_multiplier`` times the rate. At test the members' softmax outputs are averaged.

    uqbench run image/batchensemble --dataset=digits --holdout_classes=8,9 --num_members=4
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.layers.batch_ensemble import batch_ensemble_model, parameter_groups
from uqbench.training import flags as common
from uqbench.training import image_task, predictors
from uqbench.training.method_flags import FAST_WEIGHT_INIT, FAST_WEIGHT_LR_MULTIPLIER

FLAGS_USED = (*common.IMAGE_FLAGS, common.NUM_MEMBERS, FAST_WEIGHT_INIT, FAST_WEIGHT_LR_MULTIPLIER)
# UB's values, for protocols without their own.
DEFAULTS = {"fast_weight_init": "normal", "fast_weight_lr_multiplier": 0.5}


def images_per_step(batch_size: int, ensemble_size: int) -> int:
    """The images per step when the network sees ``batch_size`` rows (``E`` copies of each)."""
    if batch_size % ensemble_size:
        raise ValueError(
            f"--batch_size={batch_size} is not divisible by the ensemble size {ensemble_size}: "
            "the network sees batch_size / E images tiled E times"
        )
    return batch_size // ensemble_size


def run() -> dict:
    """Train a BatchEnsemble, evaluate the mean of its members; returns the run summary."""
    task = image_task.prepare_task("image/batchensemble")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    settings = {**DEFAULTS, **task.protocol.settings_for(task.method)}
    size = common.value_or(common.NUM_MEMBERS, task.protocol.num_members)
    init = common.value_or(FAST_WEIGHT_INIT, settings["fast_weight_init"])
    multiplier = common.value_or(FAST_WEIGHT_LR_MULTIPLIER, settings["fast_weight_lr_multiplier"])
    if size < 1:
        raise ValueError(f"--num_members must be at least 1, got {size}")
    if not multiplier > 0:
        raise ValueError(f"--fast_weight_lr_multiplier must be positive, got {multiplier}")
    per_step = images_per_step(recipe.batch_size, size)
    model = batch_ensemble_model(task.build_model(), size, init)
    history, train_seconds = task.train(
        model,
        recipe.with_overrides(batch_size=per_step),
        param_groups=parameter_groups(model, multiplier),
    )

    norm = (data.mean, data.std)
    rank_one = {"kind": "batchensemble", "ensemble_size": size, "fast_weight_init": init}
    return image_task.finish_run(
        task,
        predictors.rank_one_ensemble(model, norm, runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model.network], rank_one=rank_one),
        extra={**rank_one, "fast_weight_lr_multiplier": multiplier},
    )


if __name__ == "__main__":
    run_as_script(run)
