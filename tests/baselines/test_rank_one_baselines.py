"""image/batchensemble and image/rank1 on digits: trained members differ, the saved predictions
are the members' mixture, ``uqbench eval`` rebuilds the same predictor, bad input fails early."""

from __future__ import annotations

import json

import numpy as np
import pytest

from uqbench import baselines
from uqbench.training.reevaluate import reevaluate

FAST = ["--dataset=digits", "--device=cpu", "--holdout_classes=8,9", "--quiet", "--batch_size=128"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("image/batchensemble", ["--fast_weight_init=random_sign"]),
        ("image/rank1", ["--num_eval_samples=2", "--prior_stddev=1.0"]),
    ],
)
def test_members_differ_after_training_and_eval_rebuilds_them(name, extra, tmp_path):
    out = tmp_path / "run"
    summary = baselines.run(
        name, [*FAST, "--epochs=2", "--num_members=4", *extra, f"--output_dir={out}"]
    )
    saved = np.load(out / "predictions" / "test.npz")
    members = saved["member_probs"]
    # BatchEnsemble: 4 members; rank-1: 2 draws of each of 4 components
    assert members.shape[0] == (4 if name == "image/batchensemble" else 8)
    np.testing.assert_allclose(members.mean(0), saved["probs"], atol=1e-6)
    assert summary["metrics"]["test/diversity/disagreement"] > 0
    assert not np.allclose(members[0], members[1], atol=1e-3)
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    if name == "image/batchensemble":  # deterministic: exactly the same predictions
        np.testing.assert_allclose(
            np.load(tmp_path / "again" / "predictions" / "test.npz")["probs"],
            saved["probs"],
            atol=1e-5,
        )
    else:
        assert again["metrics"]["test/accuracy"] == pytest.approx(
            summary["metrics"]["test/accuracy"], abs=0.05
        )
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert ("train/extra_loss" in history[0]) == (name == "image/rank1")


@pytest.mark.parametrize("name", ["image/batchensemble", "image/rank1"])
def test_bad_input_fails_before_training(name, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="not divisible by the ensemble size 3"):
        baselines.run(name, [*FAST, "--num_members=3", f"--output_dir={out}"])
    with pytest.raises(ValueError, match="at least 1|>= 1"):
        baselines.run(name, [*FAST, "--num_members=0", f"--output_dir={out}"])
    assert not out.exists()
