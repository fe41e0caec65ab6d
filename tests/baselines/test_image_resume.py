"""Killed image runs continue with --resume and end exactly as uninterrupted runs; --resume on a
finished run, another configuration or a corrupt checkpoint is refused with nothing changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from uqbench import baselines
from uqbench.training import resume
from uqbench.training.resume import FitCheckpoint, ResumeError, state_folder

FAST = ["--dataset=digits", "--device=cpu", "--holdout_classes=8,9", "--quiet", "--threads=1"]

pytestmark = pytest.mark.usefixtures("one_thread")


class Killed(BaseException):
    """Stands for SIGKILL in-process: raised right after an epoch's state was saved."""


def _kill_after(monkeypatch, epoch: int, fit_index: int = 0) -> None:
    original = FitCheckpoint.save

    def save_then_die(self, state):
        original(self, state)
        if self.path.name == f"fit-{fit_index}.pt" and state["epoch"] == epoch:
            raise Killed

    monkeypatch.setattr(FitCheckpoint, "save", save_then_die)


def _predictions(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "predictions" / "test.npz") as saved:
        return {key: saved[key] for key in saved.files}


@pytest.mark.parametrize(
    ("name", "extra", "fit_index"),
    [
        ("image/deterministic", ["--epochs=5"], 0),
        ("image/dropout", ["--epochs=4", "--mc_samples=3"], 0),
        # members trained one after another: killed in the second member's training
        ("image/ensemble", ["--epochs=3", "--num_members=2", "--vectorize=no"], 1),
        ("image/rank1", ["--epochs=3", "--num_members=2"], 0),
    ],
)
def test_a_killed_run_resumes_to_the_uninterrupted_result(
    name, extra, fit_index, tmp_path, monkeypatch
):
    whole = baselines.run(name, [*FAST, *extra, f"--output_dir={tmp_path / 'whole'}"])
    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _kill_after(patch, epoch=2, fit_index=fit_index)
        with pytest.raises(Killed):
            baselines.run(name, [*FAST, *extra, f"--output_dir={out}"])
    assert not out.exists()  # nothing half-written where analysis reads
    folder = state_folder(out)
    saved = torch.load(folder / f"fit-{fit_index}.pt", weights_only=True)
    assert saved["epoch"] == 2
    # without --resume the saved epochs are not silently thrown away
    with pytest.raises(ResumeError, match="--resume to continue"):
        baselines.run(name, [*FAST, *extra, f"--output_dir={out}"])
    resumed = baselines.run(name, [*FAST, *extra, f"--output_dir={out}", "--resume"])
    assert not folder.exists()
    for key, value in _predictions(tmp_path / "whole").items():
        np.testing.assert_array_equal(_predictions(out)[key], value, err_msg=key)
    for key in ("test/accuracy", "test/nll", "test/ece"):
        assert resumed["metrics"][key] == whole["metrics"][key]

    def losses(run: Path) -> list:
        lines = (run / "history.jsonl").read_text().splitlines()
        return [json.loads(line)["train/loss"] for line in lines]

    assert losses(out) == losses(tmp_path / "whole")


def test_resume_refuses_a_finished_run_another_configuration_and_a_corrupt_checkpoint(
    tmp_path, monkeypatch
):
    finished = tmp_path / "finished"
    baselines.run("image/deterministic", [*FAST, "--epochs=1", f"--output_dir={finished}"])
    before = (finished / "summary.json").read_bytes()
    with pytest.raises(ResumeError, match="has finished"):
        baselines.run(
            "image/deterministic",
            [*FAST, "--epochs=1", f"--output_dir={finished}", "--resume", "--overwrite"],
        )
    assert (finished / "summary.json").read_bytes() == before

    out = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _kill_after(patch, epoch=1)
        with pytest.raises(Killed):
            baselines.run("image/deterministic", [*FAST, "--epochs=3", f"--output_dir={out}"])
    folder = state_folder(out)
    state_before = (folder / "fit-0.pt").read_bytes()
    with pytest.raises(ResumeError, match=r"another configuration.*learning_rate"):
        baselines.run(
            "image/deterministic",
            [*FAST, "--epochs=3", "--learning_rate=0.01", f"--output_dir={out}", "--resume"],
        )
    with pytest.raises(ResumeError, match="another configuration.*seed"):
        baselines.run(
            "image/deterministic",
            [*FAST, "--epochs=3", "--seed=1", f"--output_dir={out}", "--resume"],
        )
    assert (folder / "fit-0.pt").read_bytes() == state_before
    (folder / "fit-0.pt").write_bytes(state_before[: len(state_before) // 2])
    with pytest.raises(ResumeError, match="corrupt"):
        baselines.run(
            "image/deterministic", [*FAST, "--epochs=3", f"--output_dir={out}", "--resume"]
        )
    assert not out.exists() and (folder / "fit-0.pt").is_file()
    # --overwrite discards the state and starts again
    baselines.run(
        "image/deterministic", [*FAST, "--epochs=3", f"--output_dir={out}", "--overwrite"]
    )
    assert (out / "summary.json").is_file() and not folder.exists()


def test_resume_needs_the_output_dir(tmp_path):
    with pytest.raises(ValueError, match="give that --output_dir"):
        baselines.run("image/deterministic", [*FAST, "--epochs=1", "--resume"])


def test_sigkill_mid_training_then_resume_gives_the_uninterrupted_predictions(tmp_path):
    """A real SIGKILL of the command line's process, at a moment chosen by the clock."""
    flags = [*FAST, "--epochs=12"]
    env = {**os.environ, "PYTHONPATH": str(Path(baselines.__file__).parents[2])}
    command = [sys.executable, "-m", "uqbench", "run", "image/deterministic", *flags]
    subprocess.run([*command, f"--output_dir={tmp_path / 'whole'}"], env=env, check=True)
    out = tmp_path / "killed"
    folder = state_folder(out)
    process = subprocess.Popen([*command, f"--output_dir={out}"], env=env)
    deadline = time.monotonic() + 120
    while not (folder / "fit-0.pt").is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    state = torch.load(folder / "fit-0.pt", weights_only=True)
    assert 1 <= state["epoch"] < 12, "the run finished before the kill; give it more epochs"
    assert not out.exists()
    subprocess.run([*command, f"--output_dir={out}", "--resume"], env=env, check=True)
    for key, value in _predictions(tmp_path / "whole").items():
        np.testing.assert_array_equal(_predictions(out)[key], value, err_msg=key)
    assert not folder.exists()


def test_an_interrupted_checkpoint_write_keeps_the_previous_epoch(tmp_path, monkeypatch):
    checkpoint = FitCheckpoint(tmp_path / "fit-0.pt")
    checkpoint.save({"epoch": 1, "model": {}, "history": [{"seconds": 2.0}]})

    def die(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(resume.torch, "save", die)
    with pytest.raises(Killed):
        checkpoint.save({"epoch": 2, "model": {}, "history": []})
    assert checkpoint.load()["epoch"] == 1 and checkpoint.restored_seconds == 2.0
    assert [p.name for p in tmp_path.iterdir()] == ["fit-0.pt"]
