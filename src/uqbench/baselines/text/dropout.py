"""MC dropout: one text classifier with dropout, averaged over Monte-Carlo dropout samples.

Gal & Ghahramani (2016), as Uncertainty Baselines' CLINC "Monte Carlo Dropout (Size=10)": the
network of ``text/deterministic`` (its dropout: 0.5 before the TextCNN's output layer, 0.1 in
the transformer) keeps dropout on at test time, and the prediction is the mean of
``--mc_samples`` softmax outputs; the samples count as members, so mutual information is an
OOD score.

    uqbench run text/dropout --dataset=clinc150 --data_dir=../shared/data --mc_samples=10
"""

from __future__ import annotations

import torch

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import text_predictors, text_task
from uqbench.training.method_flags import DROPOUT_RATE

FLAGS_USED = (*common.TEXT_FLAGS, DROPOUT_RATE, common.MC_SAMPLES)
MC_SAMPLES = 10  # UB's CLINC MC dropout


def run() -> dict:
    """Train a dropout network, evaluate its Monte-Carlo average; returns the run summary."""
    samples = common.value_or(common.MC_SAMPLES, MC_SAMPLES)
    if samples < 1:
        raise ValueError(f"--mc_samples must be at least 1, got {samples}")
    if DROPOUT_RATE.value is not None and not 0 < DROPOUT_RATE.value < 1:
        raise ValueError(f"--dropout_rate must be in (0, 1), got {DROPOUT_RATE.value}")
    task = text_task.prepare_text_task("text/dropout")
    model = task.build_model(dropout_rate=DROPOUT_RATE.value)
    history, train_seconds = task.train(model)
    torch.manual_seed(task.seed)  # the Monte-Carlo samples are reproducible
    return text_task.finish_run(
        task,
        text_predictors.monte_carlo_dropout(model, task.runtime, task.data.pad_id, samples),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=text_task.count_parameters(model),
        checkpoint=task.checkpoint([model], mc_samples=samples),
        extra={"dropout_rate": model.config["dropout_rate"], "mc_samples": samples},
    )


if __name__ == "__main__":
    run_as_script(run)
