"""The ``ub`` protocol does what Uncertainty Baselines' CIFAR scripts do (docs/fidelity/ub.md):
every training image, crops shifted by at most 2 pixels, the dropout baseline's own learning
rate and L2 (the WRN's dropout placement is tested in tests/models)."""

from __future__ import annotations

import json

import pytest
import torch

from uqbench import baselines
from uqbench.training.classifier import Runtime, prepare_batch
from uqbench.training.protocols import PROTOCOLS, choose_protocol

UB = PROTOCOLS["ub"]
# A WRN small enough for digits on a CPU; 'auto' picks ub for it as for wrn28_10.
TINY = ["--dataset=digits", "--model=wrn10_1", "--device=cpu", "--ood=", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_ub_crops_shift_an_image_by_at_most_two_pixels_each_way():
    # UB pads 32x32 to 36x36 centrally (resize_with_crop_or_pad) and crops 32x32 back: the
    # content moves by -2..2 rows and columns. A 9x9 image marked at its centre keeps the mark
    # at the centre column under a flip, so each output shows the shift directly.
    n, side, centre = 4000, 9, 4
    images = torch.zeros(n, 1, side, side, dtype=torch.uint8)
    images[:, :, centre, centre] = 255
    generator = torch.Generator().manual_seed(0)
    runtime = Runtime(torch.device("cpu"))
    out = prepare_batch(images, (0.0,), (1.0,), runtime, UB.recipe, generator)
    marks = (out[:, 0] > 0.5).nonzero()
    assert marks.shape[0] == n and torch.equal(marks[:, 0], torch.arange(n))  # one mark each
    shifts = {(int(r) - centre, int(c) - centre) for r, c in marks[:, 1:]}
    assert shifts == {(dr, dc) for dr in range(-2, 3) for dc in range(-2, 3)}


def test_ub_recipe_values_are_those_of_the_ub_scripts():
    recipe = UB.recipe
    assert (recipe.epochs, recipe.batch_size, recipe.learning_rate) == (200, 512, 0.1 * 512 / 128)
    assert recipe.milestones == (60 / 200, 120 / 200, 160 / 200) and recipe.decay_factor == 0.2
    assert (recipe.momentum, recipe.nesterov, recipe.warmup_epochs) == (0.9, True, 1)
    assert recipe.weight_decay == pytest.approx(2 * 2e-4)  # Keras l2(2e-4) adds 2e-4 * sum(w^2)
    assert (recipe.crop_padding, recipe.flip, recipe.label_smoothing) == (2, True, 0.0)
    assert UB.validation_fraction == 0.0
    dropout = UB.recipe_for("image/dropout")
    assert dropout.learning_rate == pytest.approx(0.05 * 512 / 128)
    assert dropout.weight_decay == pytest.approx(2 * 3e-4)
    assert dropout.crop_padding == 2 and UB.dropout_rate == 0.1
    assert UB.recipe_for("image/deterministic") == recipe
    assert choose_protocol("auto", "wrn10_1", "cpu") is UB


def test_ub_trains_on_every_training_image_and_records_the_fraction(tmp_path, capsys):
    out = tmp_path / "det"
    summary = baselines.run(
        "image/deterministic", [*TINY[:-1], "--epochs=1", f"--output_dir={out}"]
    )
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "protocol ub" in first_line and " 0 validation" in first_line
    assert summary["validation_fraction"] == 0.0 and summary["validation"] == {}
    assert json.loads((out / "summary.json").read_text())["validation_fraction"] == 0.0
    recipe = summary["recipe"]
    assert (recipe["crop_padding"], recipe["weight_decay"]) == (2, pytest.approx(4e-4))
    # Given explicitly, the flag wins and is recorded.
    again = baselines.run(
        "image/deterministic",
        [*TINY, "--epochs=1", "--validation_fraction=0.2", f"--output_dir={tmp_path / 'v'}"],
    )
    assert again["validation_fraction"] == 0.2 and "val/nll" in again["validation"]


def test_temperature_scaling_under_ub_asks_for_a_validation_fraction(tmp_path):
    with pytest.raises(ValueError, match=r"protocol ub's default is 0 \(Uncertainty Baselines"):
        baselines.run(
            "image/deterministic",
            [*TINY, "--temperature_scaling", f"--output_dir={tmp_path / 'a'}"],
        )
    with pytest.raises(ValueError, match="--validation_fraction > 0") as error:
        baselines.run(
            "image/deterministic",
            [*TINY, "--temperature_scaling", "--validation_fraction=0", "--protocol=ub"],
        )
    assert "default" not in str(error.value)  # the user set 0: nothing about defaults
    assert not (tmp_path / "a").exists()


def test_dropout_baseline_under_ub_takes_ubs_dropout_defaults(tmp_path):
    summary = baselines.run(
        "image/dropout",
        [*TINY, "--epochs=1", "--mc_samples=2", f"--output_dir={tmp_path / 'mc'}"],
    )
    assert summary["protocol"] == "ub" and summary["dropout_rate"] == 0.1
    assert summary["recipe"]["learning_rate"] == pytest.approx(0.2)
    assert summary["recipe"]["weight_decay"] == pytest.approx(6e-4)
    # Flags still override the method's defaults.
    given = baselines.run(
        "image/dropout",
        [
            *TINY,
            "--epochs=1",
            "--mc_samples=2",
            "--learning_rate=0.3",
            "--weight_decay=1e-4",
            f"--output_dir={tmp_path / 'given'}",
        ],
    )
    assert given["recipe"]["learning_rate"] == 0.3 and given["recipe"]["weight_decay"] == 1e-4
