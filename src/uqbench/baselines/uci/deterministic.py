"""Deterministic: one mean-variance MLP per split trained with Gaussian NLL.

The single-network baseline of Lakshminarayanan et al. (2017) (Nix & Weigend's heteroscedastic
network): one hidden layer of 50 ReLU units (100 for protein), 40 epochs, standardised inputs and
targets, metrics in the original units. All requested splits train at once as one batched network.

    uqbench run uci/deterministic --dataset=boston --split=all --data_dir=DIR
"""

from __future__ import annotations

from uqbench.baselines import run_as_script
from uqbench.training import flags as common
from uqbench.training import regression

FLAGS_USED = common.REGRESSION_FLAGS

# Protocol: 40 epochs. (batch size, learning rate) per data set, chosen by validation NLL on a 20%
# carve-out of the training part of splits 0-4 (never the test split); see benchmarks/tune_uci.py
# and docs/results/uci.md. Other data sets use DEFAULT_TUNING.
EPOCHS = 40
DEFAULT_TUNING = (32, 3e-3)
TUNED = {
    "boston": (100, 1e-3),
    "concrete": (32, 3e-3),
    "energy": (16, 3e-3),
    "kin8nm": (100, 1e-2),
    "naval": (32, 3e-3),
    "power": (100, 3e-3),
    "protein": (100, 3e-3),
    "wine": (32, 1e-3),
    "yacht": (16, 3e-3),
}


def run() -> dict:
    """Train and evaluate one network per requested split; returns the run summary."""
    task = regression.prepare_task("uci/deterministic")
    batch_size, learning_rate = TUNED.get(task.dataset, DEFAULT_TUNING)
    trained = regression.train_mean_variance_networks(
        task,
        members=1,
        epochs=common.value_or(common.EPOCHS, EPOCHS),
        batch_size=common.value_or(common.BATCH_SIZE, batch_size),
        learning_rate=common.value_or(common.LEARNING_RATE, learning_rate),
    )
    return regression.finish_run(
        task,
        flag_lines=common.serialize(FLAGS_USED),
        trained=trained,
        model_metadata={"head": "gaussian_mean_variance", "members_per_split": 1},
    )


if __name__ == "__main__":
    run_as_script(run)
