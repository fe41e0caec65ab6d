"""benchmarks/image.py's cell machinery: compute is counted as time of the machine's cores (a
one-thread cell uses half of two), control rows apart; a finished run of another length is
refused, not tabulated; two jobs fill the base cells and the ``+ TS`` rows follow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import image as bench  # noqa: E402


def record(method: str, train: float, evaluate: float, threads: int) -> dict:
    return {
        "method": method,
        "threads": threads,
        "timings": {"train_seconds": train, "eval_seconds": evaluate},
    }


def test_cell_compute_counts_threads_over_the_cores_and_ts_rows_as_evaluation_only():
    records = [
        record("deterministic", 100.0, 10.0, threads=2),
        record("ensemble", 300.0, 40.0, threads=1),
        record("deterministic + TS", 100.0, 6.0, threads=2),
    ]
    train, evaluate = bench.cell_compute(records)
    assert train == pytest.approx(100.0 + 300.0 / 2)
    assert evaluate == pytest.approx(10.0 + 40.0 / 2 + 6.0)


def test_compute_line_counts_the_control_row_apart():
    found = {
        "deterministic": [record("deterministic", 3600.0, 0.0, threads=2)],
        "deterministic (resnet8)": [record("deterministic (resnet8)", 600.0, 60.0, threads=2)],
    }
    line = bench.compute_line(found)
    assert line.startswith("Compute of these cells, as they ran: 1h00m of 2 cores")
    assert "11m00s more for the control row(s) (deterministic (resnet8))" in line


def test_expected_epochs_reads_the_flag_else_the_protocol():
    flags = ["--protocol=cpu32", "--device=cpu"]
    assert bench.expected_epochs("image/ensemble", flags) == 7
    assert bench.expected_epochs("image/deterministic", flags) == 20
    assert bench.expected_epochs("image/deterministic", [*flags, "--epochs=8"]) == 8


def test_a_finished_run_of_another_length_is_refused_and_left_alone(tmp_path):
    setting = bench.settings("unused.tar.gz")["cifar10-cpu"]
    out = tmp_path / setting.name / "ensemble" / "seed0"
    out.mkdir(parents=True)
    summary = {"method": "image/ensemble", "seed": 0, "protocol": "cpu32", "recipe": {"epochs": 10}}
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match="epochs"):
        bench.run_cell(setting, "ensemble", 0, tmp_path, [])
    assert json.loads((out / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_two_jobs_fill_the_base_cells_then_the_calibrated_rows(tmp_path):
    raw, page = tmp_path / "raw", tmp_path / "image.md"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "image.py"),
        "--settings=digits",
        "--methods=deterministic,deterministic + TS",
        "--seeds=0,1",
        "--jobs=2",
        "--extra_flags=--epochs=1",
        f"--runs_dir={tmp_path / 'runs'}",
        f"--raw_dir={raw}",
        f"--output={page}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "digits: 2 cell(s) in" in done.stdout and "2 jobs, 1 thread(s) each" in done.stdout
    for seed in (0, 1):
        base = json.loads((raw / "digits" / f"deterministic-seed{seed}.json").read_text())
        assert base["threads"] == 1 and "--threads=1" in base["command"]
        calibrated = json.loads((raw / "digits" / f"deterministic_TS-seed{seed}.json").read_text())
        assert calibrated["command"].startswith("uqbench eval ")
        assert calibrated["timings"]["train_seconds"] == base["timings"]["train_seconds"]
    assert "deterministic + TS" in page.read_text()
