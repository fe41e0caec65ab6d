"""Deterministic: one mean-variance MLP per split trained with Gaussian NLL.

The single-network baseline of Lakshminarayanan et al. (2017) (Nix & Weigend's heteroscedastic
network): one hidden layer of 50 ReLU units (100 for protein), 40 epochs, standardised inputs and
targets, metrics in the original units. All requested splits train at once as one batched network.

    uqbench run uci/deterministic --dataset=boston --split=all --data_dir=DIR
"""

from __future__ import annotations

from absl import app

from uqbench.training import flags as common
from uqbench.training import regression

FLAGS_USED = common.REGRESSION_FLAGS

# Protocol and tuned defaults (see docs/results/uci.md for how they were chosen).
EPOCHS = 40
BATCH_SIZE = 32
LEARNING_RATE = 3e-3


def run() -> dict:
    """Train and evaluate one network per requested split; returns the run summary."""
    task = regression.prepare_task("uci/deterministic")
    trained = regression.train_mean_variance_networks(
        task,
        members=1,
        epochs=common.EPOCHS.value or EPOCHS,
        batch_size=common.BATCH_SIZE.value or BATCH_SIZE,
        learning_rate=common.LEARNING_RATE.value or LEARNING_RATE,
    )
    return regression.finish_run(
        task,
        flag_lines=common.serialize(FLAGS_USED),
        trained=trained,
        model_metadata={"head": "gaussian_mean_variance", "members_per_split": 1},
    )


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    run()


if __name__ == "__main__":
    app.run(main)
