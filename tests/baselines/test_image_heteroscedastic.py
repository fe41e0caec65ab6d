"""image/heteroscedastic end to end on digits, and every image baseline on a user's network
(``--model=package.module:factory``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import log_loss

from uqbench import baselines
from uqbench.training.reevaluate import reevaluate

FAST = ["--dataset=digits", "--epochs=2", "--device=cpu", "--holdout_classes=8,9", "--quiet"]
USER_MODEL = "--model=user_models_for_tests:small_cnn"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def user_model_helpers(monkeypatch):
    """The test factories in tests/models are importable by dotted path."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "models"))


def _run(name: str, out, *extra: str) -> dict:
    return baselines.run(name, [*FAST, f"--output_dir={out}", *extra])


def test_heteroscedastic_writes_its_settings_and_eval_rebuilds_the_head(tmp_path):
    out = tmp_path / "run"
    flags = ["--num_factors=2", "--temperature=1.5", "--train_mc_samples=4"]
    summary = _run("image/heteroscedastic", out, *flags, "--test_mc_samples=50")
    assert summary["heteroscedastic_head"] == {
        "num_factors": 2,
        "temperature": 1.5,
        "train_mc_samples": 4,
        "test_mc_samples": 50,
    }
    saved = np.load(out / "predictions" / "test.npz")
    probs, labels = saved["probs"].astype(np.float64), saved["labels"]
    assert summary["metrics"]["test/nll"] == pytest.approx(
        log_loss(labels, probs / probs.sum(1, keepdims=True)), rel=1e-4
    )
    assert "--temperature=1.5" in (out / "flags.txt").read_text()
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    # The same weights and head; only the 50 Monte-Carlo draws differ.
    assert again["metrics"]["test/nll"] == pytest.approx(summary["metrics"]["test/nll"], rel=0.05)


def test_heteroscedastic_bad_settings_fail_before_training(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"--num_factors must be in \[0, 8\]"):
        _run("image/heteroscedastic", out, "--num_factors=9")
    with pytest.raises(ValueError, match="--temperature must be positive"):
        _run("image/heteroscedastic", out, "--temperature=0")
    with pytest.raises(ValueError, match="--test_mc_samples must be at least 1"):
        _run("image/heteroscedastic", out, "--test_mc_samples=0")
    with pytest.raises(ValueError, match="does not return its output layer"):
        _run("image/heteroscedastic", out, "--model=user_models_for_tests:scaled_logits")
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("image/deterministic", []),
        ("image/ensemble", ["--num_members=2"]),
        ("image/heteroscedastic", ["--train_mc_samples=2", "--test_mc_samples=500"]),
    ],
)
def test_every_image_baseline_trains_a_user_network_and_eval_rebuilds_it(name, extra, tmp_path):
    out = tmp_path / "run"
    summary = _run(name, out, USER_MODEL, *extra)
    assert summary["model"] == "user_models_for_tests:small_cnn"
    metadata = json.loads((out / "summary.json").read_text())
    assert metadata["metrics"]["test/accuracy"] > 0.5
    again = reevaluate(out, output_dir=tmp_path / "again", quiet=True)
    assert again["metrics"]["test/accuracy"] == pytest.approx(
        summary["metrics"]["test/accuracy"], abs=0.03
    )


def test_an_unsuitable_user_network_fails_before_training(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="cannot import 'no_such_module_xyz'"):
        _run("image/deterministic", out, "--model=no_such_module_xyz:net")
    with pytest.raises(ValueError, match=r"logits \(2, 8\), got \(2, 9\)"):
        _run("image/deterministic", out, "--model=user_models_for_tests:wrong_width")
    with pytest.raises(ValueError, match="takes no dropout_rate"):
        _run("image/dropout", out, "--model=user_models_for_tests:no_dropout")
    assert not out.exists()
