"""benchmarks/search_vs_baselines.py's page: it is built from the per-cell files alone, says
PENDING for every missing cell and makes no claim (no target count, no paired difference)
until every cell a claim needs is there."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import search_vs_baselines as bench

# The smoke configuration's names keep every file under tmp_path (the protocol's digits
# ensemble files are benchmarks/image.py's, in docs/).
CONFIG = dataclasses.replace(bench.SMOKE, uci_datasets=("yacht", "boston"), digits_seeds=(0, 1, 2))


def write(raw: Path, cell: bench.Cell, nll: float, **metrics: float) -> None:
    record = {
        "seed": cell.seed,
        "wall_seconds": 1.0,
        "metrics": {"test/nll": nll, "test/rmse": 1.0, "cost/params": 100.0, **metrics},
    }
    if cell.method == "search":
        record["counts"] = {"done": 3, "failed": 0, "infeasible": 0}
        record["best"] = {"trial": 1, "architecture": ["fc_32"], "validation": {}}
        record["final_ensemble"] = None
    bench.write_json(bench.raw_path(raw, cell, smoke=True), record)


def page(tmp_path: Path) -> str:
    return bench.build_page(CONFIG, tmp_path / "raw", tmp_path / "page.md", "")


def test_without_any_cell_every_result_is_pending_and_nothing_is_claimed(tmp_path):
    text = page(tmp_path)
    results = text.split("## 1. UCI")[1]
    assert "PENDING" in results and "Target PENDING" in results
    assert "Comparison PENDING" in results
    assert "**Target**:" not in results and "Paired differences" not in results
    assert "yes" not in results and "NO (" not in results and "favours" not in results
    assert (tmp_path / "page.md").read_text() == text
    assert "Status: 0 of 16 cells have run" in text


def test_the_uci_count_waits_for_every_set_and_every_baseline_seed(tmp_path):
    raw = tmp_path / "raw"
    for dataset in CONFIG.uci_datasets:
        write(raw, bench.Cell("uci", dataset, "search", 0), 2.0)
        write(raw, bench.Cell("uci", dataset, "deterministic", 0), 2.5)
    # boston's second deterministic seed is missing: no verdict for it, no count
    write(raw, bench.Cell("uci", "yacht", "deterministic", 1), 2.5)
    text = page(tmp_path)
    assert "Target PENDING**: 1 of 2" in text and "**Target**:" not in text
    assert "(1 of 2 seeds; PENDING)" in text
    write(raw, bench.Cell("uci", "boston", "deterministic", 1), 1.0)
    text = page(tmp_path)
    assert "Target PENDING" in text  # the ensembles are still missing
    for dataset in CONFIG.uci_datasets:
        for seed in CONFIG.uci_baseline_seeds:
            write(raw, bench.Cell("uci", dataset, "ensemble", seed), 1.5)
    text = page(tmp_path)
    assert "at most uci/deterministic's mean on 1 of 2 data sets" in text
    assert "yes (-0.500)" in text and "NO (+0.250)" in text


@pytest.mark.parametrize("done", [1, 2])
def test_digits_paired_differences_need_every_seed_of_both_models(tmp_path, done):
    raw = tmp_path / "raw"
    metrics = {"test/accuracy": 0.9, "test/ece": 0.05, "ood/holdout/auroc": 0.9}
    metrics |= {"test/brier": 0.1, "cost/train_seconds": 1.0}
    for seed in range(3):
        write(raw, bench.Cell("digits", "digits", "ensemble", seed), 0.2, **metrics)
    for seed in range(done):
        write(raw, bench.Cell("digits", "digits", "search", seed), 0.1 + seed / 100, **metrics)
    text = page(tmp_path)
    assert f"Comparison PENDING**: {done} of 3 seeds" in text
    assert "Paired differences" not in text and "favours" not in text
    assert f"{done} of 3 (PENDING)" in text


def test_digits_paired_differences_once_complete(tmp_path):
    raw = tmp_path / "raw"
    metrics = {"test/accuracy": 0.9, "test/ece": 0.05, "ood/holdout/auroc": 0.9}
    metrics |= {"test/brier": 0.1, "cost/train_seconds": 1.0}
    for seed in range(3):
        write(raw, bench.Cell("digits", "digits", "ensemble", seed), 0.2, **metrics)
        write(raw, bench.Cell("digits", "digits", "search", seed), 0.1 + seed / 100, **metrics)
    text = page(tmp_path)
    assert "Comparison PENDING" not in text
    nll = next(line for line in text.splitlines() if line.startswith("| NLL |"))
    assert "-0.0900 ± 0.0058" in nll and "favours the searched model (beyond 2 SE)" in nll
    ece = next(line for line in text.splitlines() if line.startswith("| ECE |"))
    assert "no difference" in ece
    assert json.loads(
        bench.raw_path(raw, bench.Cell("digits", "digits", "search", 0), True).read_text()
    )["metrics"]["test/nll"] == pytest.approx(0.1)
