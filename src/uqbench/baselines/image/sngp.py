"""SNGP: a residual network with spectrally bounded layers and a random-feature GP output layer.

Liu et al. (2020), as Uncertainty Baselines' ``baselines/cifar/sngp.py``: every convolution's
operator norm is bounded by ``--spec_norm_bound`` (power iteration through the convolution,
``--spec_norm_iteration`` steps per training step), the dense output layer is a Gaussian process
approximated with ``--gp_hidden_dim`` random Fourier features, its Laplace precision is summed
over the last epoch (reset at every epoch), and test logits are mean-field adjusted by the GP's
predictive variance (``--gp_mean_field_factor``). Needs a residual network: resnet8 under the
``cpu`` protocol, wrn28_10 under ``ub``. Deviations from UB: docs/fidelity/sngp.md.

    uqbench run image/sngp --dataset=digits --holdout_classes=8,9
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.layers.random_feature_gp import reset_each_epoch
from uqbench.training import flags as common
from uqbench.training import image_task, predictors
from uqbench.training.method_flags import SNGP_FLAGS, sngp_settings

FLAGS_USED = (*common.IMAGE_FLAGS, *SNGP_FLAGS)
# UB's CIFAR-10 values under every protocol; the spectral bound and mean-field factor are the
# protocol's (training/protocols.py).
DEFAULTS = {"gp_scale": 1.0, "gp_input_normalization": False}


def run() -> dict:
    """Train an SNGP network, evaluate its mean-field predictions; returns the run summary."""
    task = image_task.prepare_task("image/sngp")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    settings = sngp_settings({**DEFAULTS, **task.protocol.settings_for(task.method)})
    model = predictors.sngp_network(task.build_model(), data.image_shape, settings)
    history, train_seconds = task.train(
        model,
        on_epoch_end=reset_each_epoch(model.fc, recipe.epochs)
        if settings["use_gp_layer"]
        else None,
    )

    norm = (data.mean, data.std)
    return image_task.finish_run(
        task,
        predictors.single(model, norm, runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model], sngp=settings),
        extra={"sngp": settings},
    )


if __name__ == "__main__":
    run_as_script(run)
