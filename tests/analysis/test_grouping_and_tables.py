"""Discovery, grouping, aggregation, paired differences and the table formats, on run
directories written by hand so every number can be checked on paper."""

from __future__ import annotations

import csv
import io
import math

import pytest
from analysis_fakes import write_run

from uqbench.analysis.aggregate import aggregate, estimate, paired
from uqbench.analysis.discover import discover
from uqbench.analysis.grouping import group_runs
from uqbench.analysis.report import build_report
from uqbench.analysis.tables import direction
from uqbench.analysis.text_formats import aligned, csv_text, markdown


def test_flags_except_seed_split_and_output_dir_define_a_group(tmp_path):
    for seed in (0, 1, 2):
        write_run(
            tmp_path / f"e4-{seed}",
            method="image/ensemble",
            seed=seed,
            flags={"num_members": 4, "threads": seed + 1},
        )
    for seed in (0, 1):
        write_run(
            tmp_path / f"e8-{seed}", method="image/ensemble", seed=seed, flags={"num_members": 8}
        )
    write_run(
        tmp_path / "e4-ub", method="image/ensemble", flags={"num_members": 4, "protocol": "ub"}
    )
    groups = group_runs(discover([tmp_path]).runs)
    sizes = {g.name: len(g.runs) for g in groups}
    assert sizes == {
        "image/ensemble (num_members=4, protocol=-)": 3,
        "image/ensemble (num_members=8, protocol=-)": 2,
        "image/ensemble (num_members=4, protocol=ub)": 1,
    }


def test_mixed_data_hashes_and_schemas_are_flagged_not_merged_silently(tmp_path):
    write_run(tmp_path / "a", seed=0, data_hash="x")
    write_run(tmp_path / "b", seed=1, data_hash="y", schema=1)
    (group,) = group_runs(discover([tmp_path]).runs)
    assert group.warnings == ["mixed data hashes (split test)", "mixed schema versions (1, 2)"]
    # single-split regression runs read different files per split: that is not a mix
    write_run(tmp_path / "u0", method="uci/ensemble", split=0, data_hash="s0")
    write_run(tmp_path / "u1", method="uci/ensemble", split=1, data_hash="s1")
    uci = [g for g in group_runs(discover([tmp_path]).runs) if g.method == "uci/ensemble"]
    assert uci[0].warnings == []


def test_mean_and_standard_error_by_hand(tmp_path):
    for seed, nll in enumerate((0.1, 0.2, 0.6)):
        write_run(tmp_path / f"r{seed}", seed=seed, metrics={"test/nll": nll, "test/nll_se": 9.0})
    (group,) = group_runs(discover([tmp_path]).runs)
    cells = aggregate(group.units())
    assert set(cells) == {"test/nll"}  # recorded _se twins are not averaged
    assert cells["test/nll"].mean == pytest.approx(0.3)
    # std(ddof=1) = sqrt((0.04 + 0.01 + 0.09) / 2) = sqrt(0.07); / sqrt(3)
    assert cells["test/nll"].se == pytest.approx(math.sqrt(0.07) / math.sqrt(3))
    assert estimate([5.0]).se is None


def test_every_split_of_a_regression_run_is_one_unit(tmp_path):
    splits = {"0": {"test/rmse": 1.0}, "1": {"test/rmse": 2.0}, "2": {"test/rmse": 6.0}}
    write_run(
        tmp_path / "u",
        method="uci/ensemble",
        split="all",
        splits=splits,
        metrics={"test/rmse": 3.0, "cost/params": 10.0},
    )
    (group,) = group_runs(discover([tmp_path]).runs)
    cells = aggregate(group.units())
    assert cells["test/rmse"].n == 3 and cells["test/rmse"].mean == pytest.approx(3.0)
    assert cells["test/rmse"].se == pytest.approx(math.sqrt(7.0) / math.sqrt(3))


def test_paired_differences_use_the_shared_seeds_only(tmp_path):
    for seed, (a, b) in enumerate(((1.0, 1.5), (2.0, 2.1), (3.0, 3.5))):
        write_run(tmp_path / f"a{seed}", method="a", seed=seed, metrics={"test/nll": a})
        write_run(tmp_path / f"b{seed}", method="b", seed=seed, metrics={"test/nll": b})
    write_run(tmp_path / "a9", method="a", seed=9, metrics={"test/nll": 100.0})  # unpaired
    first, second = group_runs(discover([tmp_path]).runs)
    diff = paired(first, second, "test/nll")
    # differences -0.5, -0.1, -0.5: mean -11/30, std(ddof=1) = sqrt(0.16/3), se = that / sqrt(3)
    assert diff.n == 3
    assert diff.mean == pytest.approx(-11 / 30)
    assert diff.se == pytest.approx(math.sqrt(0.16 / 3) / math.sqrt(3))


def test_best_per_column_follows_each_metrics_direction(tmp_path):
    write_run(
        tmp_path / "a",
        method="a",
        metrics={"test/nll": 0.5, "test/accuracy": 0.9, "test/diversity/disagreement": 0.1},
    )
    write_run(
        tmp_path / "b",
        method="b",
        metrics={"test/nll": 0.4, "test/accuracy": 0.8, "test/diversity/disagreement": 0.2},
    )
    report = build_report([tmp_path], figures=False)
    (test,) = [t for t in report.tables if t.section == "test"]
    names = [r.name for r in test.rows]
    assert {c: {names[i] for i in rows} for c, rows in test.best.items()} == {
        "test/accuracy": {"a"},
        "test/nll": {"b"},
    }
    assert direction("ood/x/fpr95") == "lower" and direction("ood/x/tnr_at_95_tpr") == "higher"
    md = markdown([test])
    assert "| a [1 run] | **0.9000** | 0.1000 | 0.5000 |" in md
    text = aligned([test])
    assert "0.9000*" in text and "0.4000*" in text and "0.5000*" not in text
    lines = list(csv.DictReader(io.StringIO(csv_text([test]))))
    nll_b = next(line for line in lines if line["row"] == "b" and line["metric"] == "test/nll")
    assert nll_b["mean"] == "0.4" and nll_b["best"] == "1" and nll_b["n"] == "1"


def test_unknown_kinds_are_skipped_and_an_empty_path_is_an_error(tmp_path):
    write_run(tmp_path / "sweep", kind="sweep")
    write_run(tmp_path / "sweep" / "cell0", metrics={"test/nll": 0.3})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    found = discover([tmp_path])
    assert [r.label for r in found.runs] == ["cell0"]
    reasons = {p.name: why for p, why in found.skipped}
    assert reasons["sweep"].startswith("unknown kind 'sweep'")
    assert "not readable JSON" in reasons["broken"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no run or search directories"):
        build_report([tmp_path / "empty"], figures=False)
    with pytest.raises(FileNotFoundError):
        build_report([tmp_path / "missing"], figures=False)
