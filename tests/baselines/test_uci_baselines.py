"""The UCI baselines end to end on built-in data: run directories, metrics, flags, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import norm

from uqbench import baselines
from uqbench.training.checkpoint import load_checkpoint
from uqbench.training.rundir import SCHEMA_VERSION

FAST = ["--dataset=gap1d", "--split=0,1", "--epochs=3", "--quiet"]


def _run(name, tmp_path, *extra):
    out = tmp_path / name.replace("/", "_")
    return baselines.run(name, [*FAST, f"--output_dir={out}", *extra]), out


@pytest.mark.parametrize("name", ["uci/deterministic", "uci/ensemble", "uci/dropout"])
def test_baseline_writes_the_run_directory_contract(name, tmp_path):
    _summary, out = (
        _run(name, tmp_path, "--mc_samples=50", "--grid_mc_samples=10")
        if name == "uci/dropout"
        else _run(name, tmp_path)
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoint.safetensors",
        "flags.txt",
        "history.jsonl",
        "predictions",
        "summary.json",
    ]
    on_disk = json.loads((out / "summary.json").read_text())
    assert (
        on_disk["schema"] == SCHEMA_VERSION
        and on_disk["kind"] == "baseline"
        and on_disk["method"] == name
    )
    assert on_disk["dataset"]["name"] == "gap1d" and on_disk["split"] == [0, 1]
    for key in (
        "test/rmse",
        "test/nll",
        "test/crps",
        "test/nll_se",
        "cost/train_seconds",
        "cost/params",
    ):
        assert np.isfinite(on_disk["metrics"][key]), key
    # Metrics recomputed from the saved predictions, with SciPy, match the summary.
    predictions = np.load(out / "predictions" / "test.npz")
    assert predictions["split"].tolist() == [0, 1]
    for i, split in enumerate(["0", "1"]):
        y, mean = predictions["y"][i].astype(np.float64), predictions["mean"][i].astype(np.float64)
        rmse = np.sqrt(np.mean((y - mean) ** 2))
        assert on_disk["splits"][split]["test/rmse"] == pytest.approx(rmse, rel=1e-4)
        if "member_means" in predictions:
            means = predictions["member_means"][i].astype(np.float64)
            sd = np.sqrt(predictions["member_variances"][i].astype(np.float64))
            log_mix = logsumexp(norm.logpdf(y, means, sd), axis=0) - np.log(len(means))
            assert on_disk["splits"][split]["test/nll"] == pytest.approx(-log_mix.mean(), rel=1e-3)
    # flags.txt re-runs the same configuration.
    flags_text = (out / "flags.txt").read_text()
    assert "--dataset=gap1d" in flags_text and "--epochs=3" in flags_text
    tensors, metadata = load_checkpoint(out / "checkpoint.safetensors")
    assert metadata["class"] == "uqbench.models.mlp.MLP" and tensors


def test_flagfile_reproduces_the_run(tmp_path):
    first, out = _run("uci/ensemble", tmp_path, "--num_members=2")
    again = tmp_path / "again"
    second = baselines.run(
        "uci/ensemble", [f"--flagfile={out / 'flags.txt'}", f"--output_dir={again}"]
    )
    assert second["metrics"]["test/nll"] == pytest.approx(first["metrics"]["test/nll"], rel=1e-5)


def test_ensemble_of_one_is_the_deterministic_baseline(tmp_path):
    det, _ = _run("uci/deterministic", tmp_path)
    ens, _ = _run("uci/ensemble", tmp_path, "--num_members=1")
    assert ens["metrics"]["test/nll"] == pytest.approx(det["metrics"]["test/nll"], rel=1e-5)


def test_flags_are_reset_between_runs(tmp_path):
    _run("uci/ensemble", tmp_path, "--num_members=2")
    summary, _ = _run("uci/deterministic", tmp_path / "b")
    assert summary["metrics"]["cost/params"] > 0
    _second, out = _run("uci/ensemble", tmp_path / "c")
    assert len(np.load(out / "predictions" / "test.npz")["member_means"][0]) == 5


def test_bad_input_is_refused_before_training(tmp_path):
    with pytest.raises(baselines.BaselineError, match="unknown baseline.*uci/ensemble"):
        baselines.run("uci/ensembl", [])
    with pytest.raises(baselines.BaselineError, match="does not take --num_members"):
        baselines.run("uci/dropout", [*FAST, "--num_members=3", f"--output_dir={tmp_path / 'x'}"])
    with pytest.raises(baselines.BaselineError, match="epoch"):
        baselines.run("uci/ensemble", ["--epoch=3"])
    with pytest.raises(ValueError, match="--dataset is required"):
        baselines.run("uci/ensemble", [f"--output_dir={tmp_path / 'y'}"])
    with pytest.raises(ValueError, match="split 25 does not exist"):
        baselines.run(
            "uci/ensemble", ["--dataset=gap1d", "--split=25", f"--output_dir={tmp_path / 'z'}"]
        )
    assert not any(tmp_path.iterdir())


def test_nan_loss_fails_cleanly_and_writes_nothing(tmp_path):
    with pytest.raises(FloatingPointError, match="learning_rate"):
        _run("uci/deterministic", tmp_path, "--learning_rate=1e30")
    assert not any(tmp_path.iterdir())


def test_module_runs_as_a_script(tmp_path):
    out = tmp_path / "script"
    result = subprocess.run(
        [sys.executable, "-m", "uqbench.baselines.uci.deterministic", *FAST, f"--output_dir={out}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "test rmse" in result.stdout and (out / "summary.json").exists()


def test_existing_output_dir_is_refused_before_training(tmp_path, monkeypatch):
    from uqbench.training import regression
    from uqbench.training.rundir import RunDirectoryError

    out = tmp_path / "taken"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    monkeypatch.setattr(regression, "train_models", lambda *a, **k: pytest.fail("trained anyway"))
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        baselines.run("uci/ensemble", [*FAST, f"--output_dir={out}"])
    assert (out / "summary.json").read_text() == "{}"
