"""image/mimo end to end: the run directory, the heads as members, eval from the checkpoint,
UB's recipe under ``ub``, and bad input refused before training."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uqbench import baselines
from uqbench.training.protocols import PROTOCOLS
from uqbench.training.reevaluate import reevaluate

FAST = ["--dataset=digits", "--epochs=2", "--device=cpu", "--holdout_classes=8,9", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_mimo_run_saves_its_heads_and_eval_rebuilds_them(tmp_path):
    out = tmp_path / "run"
    summary = baselines.run(
        "image/mimo",
        [*FAST, f"--output_dir={out}", "--num_members=2", "--batch_repetition=2"],
    )
    assert (summary["num_members"], summary["batch_repetition"]) == (2, 2)
    saved = np.load(out / "predictions" / "test.npz")
    assert saved["member_probs"].shape == (2, 289, 8)
    np.testing.assert_allclose(saved["probs"], saved["member_probs"].mean(0), atol=1e-6)
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert len(history) == 2 and len(history[0]["train/loss"]) == 2
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    assert again["metrics"]["test/nll"] == pytest.approx(summary["metrics"]["test/nll"], rel=1e-5)


def test_ub_recipe_is_mimo_py():
    recipe = PROTOCOLS["ub"].recipe_for("image/mimo")
    assert (recipe.epochs, recipe.learning_rate, recipe.weight_decay) == (250, 0.1, 6e-4)
    assert [round(m * 250) for m in recipe.milestones] == [100, 200, 225]


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--num_members=0", "--num_members must be at least 1"),
        ("--batch_repetition=0", "--batch_repetition must be at least 1"),
        ("--input_repetition=1.5", "--input_repetition must be in"),
        ("--batch_repetition=128", "must be at least --batch_repetition"),
    ],
)
def test_bad_input_is_refused_before_training(flag, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        baselines.run("image/mimo", [*FAST, f"--output_dir={out}", flag])
    assert not out.exists()
