"""Run directories are written atomically; checkpoints round-trip and fail clearly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uqbench.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from uqbench.training.rundir import RunDirectory, RunDirectoryError, build_summary, mean_and_stderr


def test_commit_publishes_every_file(tmp_path):
    target = tmp_path / "run"
    with RunDirectory(target) as run:
        run.write_flags(["--dataset=boston", "--seed=0"])
        run.append_history({"epoch": 1, "train/loss": 1.5})
        run.append_history({"epoch": 2, "train/loss": float("nan")})
        run.save_predictions("test", mean=np.arange(3.0), labels=np.arange(3))
        run.save_checkpoint({"w": torch.ones(2, 2)}, {"class": "X", "kwargs": {"a": 1}})
        run.write_summary({"schema": 1, "metrics": {"test/nll": 0.5}})
        assert not target.exists()
        run.commit()
    assert (target / "flags.txt").read_text() == "--dataset=boston\n--seed=0\n"
    history = [json.loads(line) for line in (target / "history.jsonl").read_text().splitlines()]
    assert history == [{"epoch": 1, "train/loss": 1.5}, {"epoch": 2, "train/loss": None}]
    predictions = np.load(target / "predictions" / "test.npz")
    assert predictions["mean"].dtype == np.float32 and predictions["labels"].dtype == np.int64
    assert json.loads((target / "summary.json").read_text())["metrics"]["test/nll"] == 0.5
    tensors, metadata = load_checkpoint(target / "checkpoint.safetensors")
    assert torch.equal(tensors["w"], torch.ones(2, 2)) and metadata["kwargs"] == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_failure_leaves_nothing_behind(tmp_path):
    target = tmp_path / "run"
    with pytest.raises(RuntimeError), RunDirectory(target) as run:
        run.write_flags(["--seed=0"])
        raise RuntimeError("training diverged")
    assert list(tmp_path.iterdir()) == []


def test_existing_directory_needs_overwrite(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("keep me")
    with pytest.raises(RunDirectoryError, match="--overwrite"):
        RunDirectory(target)
    assert (target / "old.txt").exists()
    with RunDirectory(target, overwrite=True) as run:
        run.write_summary({"schema": 1})
        run.commit()
    assert sorted(p.name for p in target.iterdir()) == ["summary.json"]


def test_corrupt_or_foreign_checkpoints_are_clear_errors(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"w": torch.zeros(3)}, {"kwargs": {}})
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, tmp_path / "plain.safetensors")
    with pytest.raises(CheckpointError, match="not written by uqbench"):
        load_checkpoint(tmp_path / "plain.safetensors")


def test_mean_and_stderr_matches_numpy():
    runs = [
        {"test/nll": 1.0, "test/rmse": 2.0},
        {"test/nll": 2.0, "test/rmse": 2.0},
        {"test/nll": 4.0, "test/rmse": 2.0},
    ]
    out = mean_and_stderr(runs)
    assert out["test/nll"] == pytest.approx(7 / 3)
    # sd (ddof=1) of 1, 2, 4 is sqrt(7/3); se = sd / sqrt(3)
    assert out["test/nll_se"] == pytest.approx(np.sqrt(7 / 3) / np.sqrt(3))
    assert out["test/rmse_se"] == 0.0
    assert "test/nll_se" not in mean_and_stderr(runs[:1])


def test_summary_has_the_contract_fields():
    summary = build_summary(
        kind="baseline",
        method="uci/ensemble",
        dataset={"name": "boston"},
        data_hash="abc",
        seed=0,
        split="all",
        device="cpu",
        metrics={"test/nll": 1.0},
        timings={"train_seconds": 1.0},
        params=10,
        peak_memory_mb=1.0,
    )
    for key in (
        "schema",
        "kind",
        "method",
        "dataset",
        "data_hash",
        "seed",
        "split",
        "git_commit",
        "versions",
        "device",
        "timings",
        "params",
        "peak_memory_mb",
        "metrics",
    ):
        assert key in summary
    assert set(summary["versions"]) >= {"python", "torch", "uqbench"}


def test_a_checkpoint_may_hold_the_same_tensor_twice(tmp_path):
    """An ensemble that picked one network twice passes the same weights under two names."""
    from uqbench.training.checkpoint import load_checkpoint, save_checkpoint

    weight = torch.arange(6.0).reshape(2, 3)
    view = weight[0]
    save_checkpoint(
        tmp_path / "c.safetensors", {"a": weight, "b": weight, "c": view}, {"method": "x"}
    )
    tensors, metadata = load_checkpoint(tmp_path / "c.safetensors")
    assert torch.equal(tensors["a"], weight) and torch.equal(tensors["b"], weight)
    assert torch.equal(tensors["c"], weight[0]) and metadata == {"method": "x"}
