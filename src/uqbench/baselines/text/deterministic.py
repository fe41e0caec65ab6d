"""Deterministic: one text classifier trained with cross-entropy; softmax probabilities.

The reference point of Uncertainty Baselines' CLINC table (there BERT-base, fine-tuned; here a
TextCNN or a small transformer trained from scratch, or your encoder by ``--model``). Dropout is
used in training only; ``--temperature_scaling`` divides the logits by a temperature fitted on
the validation set. OOD detection of the out-of-scope queries (``oos_test``) uses the max
probability, the entropy and the Dempster-Shafer score.

    uqbench run text/deterministic --dataset=clinc150 --data_dir=../shared/data
    uqbench run text/deterministic --dataset=my_intents.csv --model=transformer
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import text_predictors, text_task

FLAGS_USED = common.TEXT_FLAGS


def run() -> dict:
    """Train one network, evaluate it on the test and out-of-scope sets; returns the summary."""
    task = text_task.prepare_text_task("text/deterministic")
    model = task.build_model()
    history, train_seconds = task.train(model)

    return text_task.finish_run(
        task,
        text_predictors.single(model, task.runtime, task.data.pad_id),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=text_task.count_parameters(model),
        checkpoint=task.checkpoint([model]),
    )


if __name__ == "__main__":
    run_as_script(run)
