"""MIMO: M subnetworks in one network, M images in and M predictions out, heads averaged at test.

Havasi et al. (2021), "Training independent subnetworks for robust prediction"; Uncertainty
Baselines' ``cifar/mimo.py``. The network's first layer reads ``--num_members`` images stacked
on the channel axis and its last layer gives one set of logits per member
(``uqbench.layers.mimo``). In training each member sees its own shuffle of the batch (a
fraction ``--input_repetition`` of the rows is the same image for all members) and each new
example is repeated ``--batch_repetition`` times per step; at test every member sees the same
image and their softmax outputs are averaged, for the cost of about one network.

    uqbench run image/mimo --dataset=digits --holdout_classes=8,9
    uqbench run image/mimo --dataset=digits --num_members=3 --batch_repetition=4
"""

from __future__ import annotations

from absl import flags

from uqbench.baselines import run_as_script
from uqbench.layers.mimo import MIMO, MIMOBatches
from uqbench.training import flags as common
from uqbench.training import image_task, predictors

INPUT_REPETITION = flags.DEFINE_float(
    "input_repetition",
    None,
    "Fraction of each training batch's rows in which every member sees the same image "
    "(UB's input_repetition_probability); default: the protocol's.",
)
BATCH_REPETITION = flags.DEFINE_integer(
    "batch_repetition",
    None,
    "Times each new example appears in a training batch: a step takes batch_size // this many "
    "new examples (UB's batch_repetitions); default: the protocol's.",
)
FLAGS_USED = (*common.IMAGE_FLAGS, common.NUM_MEMBERS, INPUT_REPETITION, BATCH_REPETITION)


def run() -> dict:
    """Train one MIMO network, evaluate the average of its heads; returns the run summary."""
    task = image_task.prepare_task("image/mimo")
    data, runtime, recipe = task.data, task.runtime, task.recipe
    # The protocol's: UB's cifar/mimo.py values, or chosen on digits (training/protocols.py).
    defaults = task.protocol.settings_for(task.method)
    batching = MIMOBatches(
        num_members=common.value_or(common.NUM_MEMBERS, defaults["num_members"]),
        input_repetition=common.value_or(INPUT_REPETITION, defaults["input_repetition"]),
        batch_repetitions=common.value_or(BATCH_REPETITION, defaults["batch_repetition"]),
    )
    batching.new_examples(data.x_train.shape[0], recipe.batch_size)  # a bad batch size fails now
    model = MIMO(task.build_model(stacked_inputs=batching.num_members), batching.num_members)
    history, train_seconds = task.train(model, batching=batching)

    norm = (data.mean, data.std)
    settings = {
        "num_members": batching.num_members,
        "input_repetition": batching.input_repetition,
        "batch_repetition": batching.batch_repetitions,
    }
    return image_task.finish_run(
        task,
        predictors.mimo(model, norm, runtime, recipe.test_flips),
        flag_lines=common.serialize(FLAGS_USED),
        history=history,
        train_seconds=train_seconds,
        params=image_task.count_parameters(model),
        checkpoint=task.checkpoint([model.network], **settings),
        extra=settings,
    )


if __name__ == "__main__":
    run_as_script(run)
