"""Deterministic: one network trained with cross-entropy; softmax probabilities.

The reference point of Uncertainty Baselines' CIFAR table: a single network (WRN-28-10 under the
``ub`` protocol), maximum likelihood, the prediction is softmax(logits). ``--temperature_scaling``
divides the logits by a temperature fitted on the validation set (Guo et al. 2017).

    uqbench run image/deterministic --dataset=digits --holdout_classes=8,9
    uqbench run image/deterministic --dataset=PATH/cifar10-jpeg75.tar.gz --protocol=fast
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import image_task, predictors

FLAGS_USED = common.IMAGE_FLAGS


def run() -> dict:
    """Train one network, evaluate it on the test and OOD sets; returns the run summary."""
    task = image_task.prepare_task("image/deterministic")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    model = task.build_model()
    history, train_seconds = task.train(model)

    norm = (data.mean, data.std)
    return image_task.finish_run(
        task,
        predictors.single(model, norm, runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model]),
    )


if __name__ == "__main__":
    run_as_script(run)
