"""MC dropout: one network with dropout, averaged over Monte-Carlo dropout samples at test time.

Gal & Ghahramani (2016): dropout stays on at test time and the prediction is the mean of
``--mc_samples`` softmax outputs (Uncertainty Baselines' "MC Dropout (30)"); the samples count as
members, so mutual information is an OOD score. Where each network puts its dropout layers is
documented in ``uqbench.models`` (WRN: after each block's first convolution, as Uncertainty
Baselines). Under ``--protocol=ub`` the learning rate and weight decay are those of UB's
``dropout.py`` (base rate 0.05 per 128 examples, L2 3e-4), not of its deterministic baseline.

    uqbench run image/dropout --dataset=digits --mc_samples=30
"""

from __future__ import annotations

import torch

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import image_task, predictors
from uqbench.training.method_flags import DROPOUT_RATE

FLAGS_USED = (*common.IMAGE_FLAGS, DROPOUT_RATE, common.MC_SAMPLES)


def run() -> dict:
    """Train a dropout network, evaluate its Monte-Carlo average; returns the run summary."""
    task = image_task.prepare_task("image/dropout")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    rate = common.value_or(DROPOUT_RATE, task.protocol.dropout_rate)
    samples = common.value_or(common.MC_SAMPLES, task.protocol.mc_samples)
    if not 0 < rate < 1:
        raise ValueError(f"--dropout_rate must be in (0, 1), got {rate}")
    if samples < 1:
        raise ValueError(f"--mc_samples must be at least 1, got {samples}")
    model = task.build_model(dropout_rate=rate)
    history, train_seconds = task.train(model)
    torch.manual_seed(task.seed)  # the Monte-Carlo samples are reproducible
    norm = (data.mean, data.std)
    return image_task.finish_run(
        task,
        predictors.monte_carlo_dropout(model, norm, runtime, recipe.test_flips, samples),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model], dropout_rate=rate, mc_samples=samples),
        extra={"dropout_rate": rate, "mc_samples": samples},
    )


if __name__ == "__main__":
    run_as_script(run)
