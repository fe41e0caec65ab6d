"""benchmarks/text.py end to end on a tiny CLINC-layout set: cells run two at a time in their
own processes, each writes its raw record, and the page is built from those records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from text_fakes import write_json

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_jobs_fill_every_cell_and_the_page_reads_them(tmp_path):
    write_json(tmp_path / "data" / "clinc150" / "data_full.json")
    page = tmp_path / "text.md"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "text.py"),
        f"--data_dir={tmp_path / 'data'}",
        "--methods=deterministic,ensemble",
        "--seeds=0,1",
        "--jobs=2",
        f"--runs_dir={tmp_path / 'runs'}",
        f"--raw_dir={tmp_path / 'raw'}",
        f"--output={page}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 cell(s) in" in done.stdout and "2 job(s)" in done.stdout
    for name in ("deterministic", "ensemble"):
        for seed in (0, 1):
            record = json.loads((tmp_path / "raw" / f"{name}-seed{seed}.json").read_text())
            assert record["seed"] == seed and record["threads"] == 1
            assert f"--seed={seed}" in record["command"]
            assert (tmp_path / "runs" / name / f"seed{seed}" / "summary.json").is_file()
    text = page.read_text()
    assert "| deterministic (2 seed(s)) |" in text and "| ensemble (2 seed(s)) |" in text
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert again.returncode == 0 and "cell(s) in" not in again.stdout  # nothing left to run
