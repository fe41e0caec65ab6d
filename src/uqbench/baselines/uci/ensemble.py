"""Deep ensemble: M mean-variance MLPs trained with Gaussian NLL, a uniform Gaussian mixture.

Lakshminarayanan, Pritzel & Blundell (2017), "Simple and Scalable Predictive Uncertainty
Estimation using Deep Ensembles", UCI protocol: one hidden layer of 50 ReLU units (100 for
protein), 40 epochs, inputs and targets standardised with training statistics, metrics in the
original units, optional adversarial training. Every member of every split trains at once as one
batched network (see ``uqbench.training.regression.train_mean_variance_networks``).

    uqbench run uci/ensemble --dataset=boston --split=all --data_dir=DIR
    python -m uqbench.baselines.uci.ensemble --dataset=boston --data_dir=DIR --adversarial
"""

from __future__ import annotations

from absl import flags

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import regression

ADVERSARIAL = flags.DEFINE_bool(
    "adversarial", False, "Also train on fast-gradient-sign adversarial inputs (Deep Ensembles)."
)
ADVERSARIAL_EPSILON = flags.DEFINE_float(
    "adversarial_epsilon", 0.01, "Adversarial step, in training standard deviations of each input."
)
FLAGS_USED = (*common.REGRESSION_FLAGS, common.NUM_MEMBERS, ADVERSARIAL, ADVERSARIAL_EPSILON)
NUM_MEMBERS = 5  # per split, unless --num_members is given

# Protocol: 40 epochs. (batch size, learning rate) per data set, chosen by validation NLL on a 20%
# carve-out of the training part of splits 0-4 (never the test split); see benchmarks/tune_uci.py
# and docs/results/uci.md. Other data sets use DEFAULT_TUNING.
EPOCHS = 40
DEFAULT_TUNING = (32, 3e-3)
TUNED = {
    "boston": (100, 3e-2),
    "concrete": (16, 1e-2),
    "energy": (16, 3e-3),
    "kin8nm": (100, 1e-2),
    "naval": (32, 3e-3),
    "power": (32, 3e-3),
    "protein": (100, 3e-3),
    "wine": (16, 1e-2),
    "yacht": (16, 3e-3),
}


def run() -> dict:
    """Train and evaluate the ensemble on every requested split; returns the run summary."""
    task = regression.prepare_task("uci/ensemble")
    batch_size, learning_rate = TUNED.get(task.dataset, DEFAULT_TUNING)
    trained = regression.train_mean_variance_networks(
        task,
        members=common.value_or(common.NUM_MEMBERS, NUM_MEMBERS),
        epochs=common.value_or(common.EPOCHS, EPOCHS),
        batch_size=common.value_or(common.BATCH_SIZE, batch_size),
        learning_rate=common.value_or(common.LEARNING_RATE, learning_rate),
        adversarial_epsilon=ADVERSARIAL_EPSILON.value if ADVERSARIAL.value else 0.0,
    )
    return regression.finish_run(
        task,
        flag_lines=common.serialize(FLAGS_USED),
        trained=trained,
        model_metadata={
            "head": "gaussian_mean_variance",
            "members_per_split": common.value_or(common.NUM_MEMBERS, NUM_MEMBERS),
        },
    )


if __name__ == "__main__":
    run_as_script(run)
