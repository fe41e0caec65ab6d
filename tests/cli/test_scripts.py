"""Documented command lines as written: flagfile re-runs, the script form of a baseline (same
errors and exit codes as `uqbench run`), --threads and --quiet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import uqbench
from uqbench import baselines
from uqbench.cli import main

SRC = Path(uqbench.__file__).resolve().parents[1]
UCI_FAST = ["--dataset=diabetes", "--split=0", "--epochs=2"]


def _python(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python args...`` in ``cwd``, importing this checkout's uqbench."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def _metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())["metrics"]


def test_flagfile_reruns_into_a_new_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = ["run", "uci/deterministic"]
    assert main([*run, *UCI_FAST, "--output_dir=first", "--quiet"]) == 0
    flags_text = Path("first/flags.txt").read_text()
    lines = flags_text.splitlines()
    assert "--dataset=diabetes" in lines
    assert "# --output_dir=first  (not replayed by --flagfile)" in lines
    assert not any(
        line.startswith(("--output_dir", "--overwrite", "--nooverwrite")) for line in lines
    )
    capsys.readouterr()

    # README: `uqbench run <baseline> --flagfile=RUN/flags.txt` re-runs the configuration.
    assert main([*run, "--flagfile=first/flags.txt"]) == 0
    (rerun,) = (tmp_path / "runs" / "uci" / "deterministic").iterdir()
    assert f"run directory {rerun}" in capsys.readouterr().out
    assert _metrics(rerun)["test/nll"] == pytest.approx(_metrics(tmp_path / "first")["test/nll"])

    # A flagfile that names an existing directory: refused, saying how to re-run.
    Path("mine.txt").write_text("\n".join([*UCI_FAST, "--output_dir=first"]) + "\n")
    assert main([*run, "--flagfile=mine.txt"]) == 2
    assert "give a new --output_dir after --flagfile" in capsys.readouterr().err
    # Later flags win over the file's.
    assert main([*run, "--flagfile=mine.txt", "--output_dir=second", "--quiet"]) == 0
    assert (tmp_path / "second" / "summary.json").is_file()


def test_script_form_gives_the_same_one_line_errors_and_exit_codes(tmp_path):
    unknown = ["--dataset=nonexistent_set", f"--output_dir={tmp_path / 'x'}"]
    as_run = _python("-m", "uqbench", "run", "uci/ensemble", *unknown, cwd=tmp_path)
    as_script = _python("-m", "uqbench.baselines.uci.ensemble", *unknown, cwd=tmp_path)
    assert as_script.returncode == as_run.returncode == 2
    assert as_script.stderr == as_run.stderr
    assert as_script.stderr.startswith("uqbench: error: ") and "nonexistent_set" in as_script.stderr
    assert len(as_script.stderr.splitlines()) == 1

    missing = _python("-m", "uqbench.baselines.uci.ensemble", "--split=0", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        "uqbench: error: --dataset is required (e.g. --dataset=boston; `uqbench list` shows all)"
    ]

    nan = _python(
        "-m", "uqbench.baselines.uci.deterministic", *UCI_FAST, "--learning_rate=1e30", cwd=tmp_path
    )
    assert nan.returncode == 1
    assert nan.stderr.splitlines()[-1].startswith("uqbench: training failed: ")
    assert "Traceback" not in nan.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_script_form_threads_quiet_and_flagfile(tmp_path):
    first = tmp_path / "first"
    image = ["-m", "uqbench.baselines.image.deterministic"]
    args = ["--dataset=digits", "--epochs=1", "--device=cpu", "--ood=uniform_noise", "--quiet"]
    # OMP_NUM_THREADS=3 is what torch would pick; --threads must win over it.
    result = _python(*image, *args, "--threads=1", f"--output_dir={first}", cwd=tmp_path,
                     OMP_NUM_THREADS="3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((first / "summary.json").read_text())
    assert summary["runtime"]["threads"] == 1
    assert "--threads=1" in (first / "flags.txt").read_text().splitlines()
    # --quiet: no progress, but the result table and the run directory.
    assert result.stderr == ""
    assert "accuracy" in result.stdout
    assert result.stdout.rstrip().endswith(f"run directory {first.resolve()}")
    assert "image/deterministic: digits (" not in result.stdout  # what trains on what

    # The script form re-runs a flags.txt too; a later --threads overrides the file's.
    second = tmp_path / "second"
    again = _python(*image, f"--flagfile={first / 'flags.txt'}", "--threads=2",
                    f"--output_dir={second}", cwd=tmp_path, OMP_NUM_THREADS="3")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads((second / "summary.json").read_text())["runtime"]["threads"] == 2
    assert _metrics(second)["test/accuracy"] == pytest.approx(summary["metrics"]["test/accuracy"])


@pytest.mark.parametrize("name", ["image/deterministic", "uci/deterministic"])
def test_quiet_prints_the_result_table_and_run_directory_only(name, tmp_path, capsys, monkeypatch):
    # evaluation progress reports at once (not after 10 s), so --quiet must be what silences it
    monkeypatch.setattr("uqbench.training.evaluation.EVALUATION_DELAY", 0.0)
    args = ["--dataset=digits", "--epochs=1", "--ood=uniform_noise"]
    if name.startswith("uci/"):
        args = ["--dataset=diabetes", "--split=0", "--epochs=1"]
    baselines.run(name, [*args, f"--output_dir={tmp_path / 'loud'}"])
    loud = capsys.readouterr()
    baselines.run(name, [*args, f"--output_dir={tmp_path / 'quiet'}", "--quiet"])
    quiet = capsys.readouterr()
    assert f"{name}: " in loud.out and f"{name}: " not in quiet.out  # the progress line
    assert loud.err and not quiet.err  # per-epoch progress
    if name.startswith("image/"):
        assert "evaluating image/deterministic on digits" in loud.err
    assert "test nll" in quiet.out or "nll " in quiet.out
    assert quiet.out.rstrip().endswith(f"run directory {(tmp_path / 'quiet').resolve()}")


def test_help_texts_are_true_for_each_family():
    image_help = baselines.flag_help("image/deterministic").splitlines()
    uci_help = baselines.flag_help("uci/deterministic").splitlines()
    (image_lr,) = [line for line in image_help if line.startswith("  --learning_rate:")]
    (uci_lr,) = [line for line in uci_help if line.startswith("  --learning_rate:")]
    assert "SGD" in image_lr and "Adam" in uci_lr
    assert any(line.startswith("  --train_subset:") for line in image_help)
    assert all(any(line.startswith("  --threads:") for line in h) for h in (image_help, uci_help))
