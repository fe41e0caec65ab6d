"""The shared divergence rule: hand cases, diverging runs that fail and write nothing, and every
tuned default (UCI per-data-set settings, image protocols, the search's default space) that
trains on built-in data without tripping it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uqbench import baselines, data
from uqbench.baselines.uci import dropout as uci_dropout
from uqbench.baselines.uci import ensemble as uci_ensemble
from uqbench.models import get as get_model
from uqbench.search.runner import trial_recipe
from uqbench.search.space import Range, load_space
from uqbench.training.classifier import Runtime, fit
from uqbench.training.divergence import (
    DivergedError,
    DivergenceGuard,
    NonFiniteLossError,
    divergence_threshold,
)
from uqbench.training.protocols import PROTOCOLS

pytestmark = pytest.mark.usefixtures("one_thread")


# --- the rule, by hand ----------------------------------------------------------------------------


def test_threshold_is_ten_times_or_plus_ten():
    assert divergence_threshold(2.0) == 20.0  # 10 x 2 > 2 + 10
    assert divergence_threshold(0.5) == 10.5  # 0.5 + 10 > 10 x 0.5
    assert divergence_threshold(-3.0) == 7.0  # a Gaussian NLL below zero: -3 + 10


def test_guard_uses_the_lower_of_first_step_and_first_epoch():
    guard = DivergenceGuard(["a", "b"])
    guard.start([2.0, 1.0])
    guard.check(1, [1.0, 3.0])  # below max(20, 12) and max(10, 11)
    assert guard.reference == [1.0, 1.0]
    guard.check(2, [11.0, 10.9])  # a: 11 > max(10, 11)? no (equal is allowed); b fine
    with pytest.raises(DivergedError, match=r"loss of b rose to 11\.5 in epoch 3, above 11 "):
        guard.check(3, [0.5, 11.5])


def test_guard_catches_a_first_epoch_that_already_exploded():
    guard = DivergenceGuard()
    guard.start([1.7])
    with pytest.raises(DivergedError, match=r"the network rose to 3e\+27 in epoch 1"):
        guard.check(1, [3e27])


def test_guard_without_a_first_step_compares_with_the_first_epoch():
    guard = DivergenceGuard()
    guard.check(1, [-2.0])
    guard.check(2, [7.9])  # -2 + 10 = 8
    with pytest.raises(DivergedError, match="epoch 3"):
        guard.check(3, [8.1])


def test_non_finite_losses_name_the_model():
    guard = DivergenceGuard(None, advice="try again")
    with pytest.raises(NonFiniteLossError, match=r"model 1 became nan in epoch 4: .*try again"):
        guard.check(4, [1.0, float("nan")])
    with pytest.raises(NonFiniteLossError, match="became inf in epoch 1"):
        DivergenceGuard().start([float("inf")])


# --- diverging runs fail and write nothing --------------------------------------------------------


def test_uci_dropout_with_a_huge_learning_rate_fails_and_writes_nothing(tmp_path):
    # the first epoch's mean loss is already ~1e27, so only the loss before any update shows it
    out = tmp_path / "run"
    argv = [
        "--dataset=diabetes",
        "--split=0",
        "--learning_rate=1e6",
        "--epochs=3",
        "--dropout_rates=0.05",
        "--tau_values=1",
        "--quiet",
        f"--output_dir={out}",
    ]
    with pytest.raises(DivergedError, match="rose to .* in epoch 1.*--learning_rate"):
        baselines.run("uci/dropout", argv)
    assert not any(tmp_path.iterdir())


def test_image_fit_with_an_exploding_loss_fails():
    d = data.get_images("digits")
    model = get_model("mlp", num_classes=10, in_channels=1, image_size=8)
    recipe = PROTOCOLS["cpu"].recipe.with_overrides(
        epochs=3, learning_rate=50.0, warmup_epochs=0, schedule="step"
    )
    with pytest.raises(DivergedError, match="epoch"):
        fit(model, d.x_train, d.y_train, d.mean, d.std, recipe, Runtime(torch.device("cpu")))


# --- no tuned default trips it --------------------------------------------------------------------


def _distinct(tuned: dict, default: tuple) -> list[tuple[int, float]]:
    return sorted(set(tuned.values()) | {default})


@pytest.mark.parametrize(
    ("batch_size", "learning_rate"), _distinct(uci_ensemble.TUNED, uci_ensemble.DEFAULT_TUNING)
)
def test_uci_ensemble_tuned_settings_train_without_tripping_the_rule(
    batch_size, learning_rate, tmp_path
):
    baselines.run(
        "uci/ensemble",
        [
            "--dataset=diabetes",
            "--split=0",
            f"--batch_size={batch_size}",
            f"--learning_rate={learning_rate}",
            "--quiet",
            f"--output_dir={tmp_path / 'run'}",
        ],
    )


@pytest.mark.parametrize(
    ("batch_size", "learning_rate"), _distinct(uci_dropout.TUNED, uci_dropout.DEFAULT_TUNING)
)
def test_uci_dropout_tuned_settings_train_without_tripping_the_rule(
    batch_size, learning_rate, tmp_path
):
    baselines.run(
        "uci/dropout",
        [
            "--dataset=diabetes",
            "--split=0",
            f"--batch_size={batch_size}",
            f"--learning_rate={learning_rate}",
            "--mc_samples=20",
            "--grid_mc_samples=10",
            "--quiet",
            f"--output_dir={tmp_path / 'run'}",
        ],
    )


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_image_protocol_recipes_train_without_tripping_the_rule(protocol):
    """Each protocol's whole recipe (epochs, learning rate, batch, schedule, warm-up, decay,
    smoothing) on digits, with LeNet-5: the GPU protocols' own networks need 32x32 images."""
    d = data.get_images("digits", validation_fraction=0.1)
    recipe = PROTOCOLS[protocol].recipe
    torch.manual_seed(0)
    model = get_model("lenet", num_classes=10, in_channels=1, image_size=8)
    history = fit(model, d.x_train, d.y_train, d.mean, d.std, recipe, Runtime(torch.device("cpu")))
    assert len(history) == recipe.epochs


def test_search_default_space_extremes_train_without_tripping_the_rule():
    """The default space's largest learning rate and weight decay on a small network."""
    space = load_space(None)
    d = data.get_images("digits", validation_fraction=0.2)
    hparams = space.sample_hparams(np.random.default_rng(0))
    hparams.update({n: p.high for n, p in space.hyperparameters.items() if isinstance(p, Range)})
    recipe = trial_recipe(PROTOCOLS["cpu"].recipe, space, hparams)
    torch.manual_seed(0)
    model = get_model("lenet", num_classes=10, in_channels=1, image_size=8)
    fit(model, d.x_train, d.y_train, d.mean, d.std, recipe, Runtime(torch.device("cpu")))


SMALL_UCI = ("boston", "concrete", "energy", "wine", "yacht")


@pytest.mark.shared_data
@pytest.mark.parametrize("method", ["uci/ensemble", "uci/dropout"])
@pytest.mark.parametrize("dataset", SMALL_UCI)
def test_real_uci_tuned_defaults_train_without_tripping_the_rule(
    method, dataset, real_data_dir, tmp_path
):
    """Each small UCI set's own tuned defaults (split 0, the whole protocol) on the real files;
    kin8nm, naval and power pass too (85 s together here, too slow for every run);
    benchmarks/uci.py runs every set and split under the same rule."""
    summary = baselines.run(
        method,
        [
            f"--dataset={dataset}",
            f"--data_dir={real_data_dir}",
            "--split=0",
            "--quiet",
            f"--output_dir={tmp_path / 'run'}",
            *(["--mc_samples=100"] if method == "uci/dropout" else []),
        ],
    )
    assert np.isfinite(summary["metrics"]["test/nll"])
