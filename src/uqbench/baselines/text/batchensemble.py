"""BatchEnsemble: E members sharing each layer's weight, each with its own rank-1 fast weights.

Wen, Tran & Ba (2020), with the layers of ``image/batchensemble`` (``uqbench.layers``): every
convolution and dense layer of the text network becomes a BatchEnsemble layer, embeddings are
shared. In training every member sees the whole minibatch of ``--batch_size`` queries (the
network sees ``E`` times as many rows); weight decay never reaches the fast weights, which
(with the members' biases) learn at ``--fast_weight_lr_multiplier`` times the rate. At test the
members' softmax outputs are averaged and their mutual information is an OOD score.

    uqbench run text/batchensemble --dataset=clinc150 --data_dir=../shared/data --num_members=4
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.layers.batch_ensemble import batch_ensemble_model, parameter_groups
from uqbench.training import flags as common
from uqbench.training import text_predictors, text_task
from uqbench.training.method_flags import FAST_WEIGHT_INIT, FAST_WEIGHT_LR_MULTIPLIER

FLAGS_USED = (*common.TEXT_FLAGS, common.NUM_MEMBERS, FAST_WEIGHT_INIT, FAST_WEIGHT_LR_MULTIPLIER)
DEFAULTS = {"num_members": 4, "fast_weight_init": "normal", "fast_weight_lr_multiplier": 0.5}


def run() -> dict:
    """Train a BatchEnsemble, evaluate the mean of its members; returns the run summary."""
    size = common.value_or(common.NUM_MEMBERS, DEFAULTS["num_members"])
    init = common.value_or(FAST_WEIGHT_INIT, DEFAULTS["fast_weight_init"])
    multiplier = common.value_or(FAST_WEIGHT_LR_MULTIPLIER, DEFAULTS["fast_weight_lr_multiplier"])
    if size < 1:
        raise ValueError(f"--num_members must be at least 1, got {size}")
    if not multiplier > 0:
        raise ValueError(f"--fast_weight_lr_multiplier must be positive, got {multiplier}")
    task = text_task.prepare_text_task("text/batchensemble")
    model = batch_ensemble_model(task.build_model(), size, init)
    history, train_seconds = task.train(model, param_groups=parameter_groups(model, multiplier))

    rank_one = {"kind": "batchensemble", "ensemble_size": size, "fast_weight_init": init}
    return text_task.finish_run(
        task,
        text_predictors.rank_one_ensemble(model, task.runtime, task.data.pad_id),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=text_task.count_parameters(model),
        checkpoint=task.checkpoint([model.network], rank_one=rank_one),
        extra={**rank_one, "fast_weight_lr_multiplier": multiplier},
    )


if __name__ == "__main__":
    run_as_script(run)
