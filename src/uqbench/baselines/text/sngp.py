"""SNGP: spectrally bounded hidden layers and a random-feature GP output layer.

Liu et al. (2020), as Uncertainty Baselines' ``baselines/clinc_intent/sngp.py`` (there on
BERT): every hidden ``nn.Linear`` / ``nn.Conv2d`` of the network (the TextCNN's convolutions;
the transformer's projections) has its largest singular value bounded by ``--spec_norm_bound``
(UB's 0.95), the output layer is a Gaussian process with ``--gp_hidden_dim`` random Fourier
features on layer-normalised inputs (UB's ``gp_input_normalization``, kernel scale 2), its
Laplace precision summed over the last epoch, and test logits are mean-field adjusted,
``logits / sqrt(1 + lambda var)``. Differences from UB: 1024 features instead of 2048, ridge 1
instead of 1e-3, the exact last-epoch precision instead of a moving average (the shared flags'
defaults), and ``lambda`` = 30 instead of UB's 0.1: the TextCNN's GP variances are small (0.066
on in-scope, 0.072 on out-of-scope validation queries, seed 0), and among lambda in (-1, 0.1,
0.3, pi/8, 1, 3, 10, 30, 100) the trained network's validation NLL was lowest at 30 (0.471;
0.557 at 0.1), which also gave the second-best oos_val AUROC (0.943; 0.925 at 0.1, 0.948 at 100).

    uqbench run text/sngp --dataset=clinc150 --data_dir=../shared/data
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.layers.random_feature_gp import reset_each_epoch
from uqbench.training import flags as common
from uqbench.training import text_predictors, text_task
from uqbench.training.method_flags import SNGP_FLAGS, sngp_settings

FLAGS_USED = (*common.TEXT_FLAGS, *SNGP_FLAGS)
DEFAULTS = {  # UB's SNGP-BERT on CLINC, but for the mean-field factor
    "spec_norm_bound": 0.95,
    "gp_scale": 2.0,
    "gp_input_normalization": True,
    "gp_mean_field_factor": 30.0,  # chosen on validation, see the docstring
}


def run() -> dict:
    """Train an SNGP network, evaluate its mean-field predictions; returns the run summary."""
    settings = sngp_settings(DEFAULTS)
    task = text_task.prepare_text_task("text/sngp")
    model = text_predictors.sngp_network(task.build_model(), settings)
    history, train_seconds = task.train(
        model,
        on_epoch_end=reset_each_epoch(model.fc, task.recipe.epochs)
        if settings["use_gp_layer"]
        else None,
    )

    return text_task.finish_run(
        task,
        text_predictors.single(model, task.runtime, task.data.pad_id),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=text_task.count_parameters(model),
        checkpoint=task.checkpoint([model], sngp=settings),
        extra={"sngp": settings},
    )


if __name__ == "__main__":
    run_as_script(run)
