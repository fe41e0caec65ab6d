"""``uqbench report`` and ``uqbench compare`` end to end on harness runs, a real search and
hand-written runs with a protocol id; published numbers, protocol ids."""

from __future__ import annotations

import re

import pytest
from analysis_fakes import write_run

from uqbench.analysis import references
from uqbench.analysis.report import build_report
from uqbench.cli import main
from uqbench.protocol_ids import flag_values, image_protocol_id, protocol_id, uci_protocol_id

pytestmark = pytest.mark.usefixtures("one_thread")


def test_report_writes_html_markdown_csv_and_figures(harness_runs, search_dir, tmp_path, capsys):
    out = tmp_path / "report"
    paths = [str(harness_runs), str(search_dir)]
    code = main(["report", *paths, f"--out={out}", "--num_bins=10", "--binning=mass"])
    assert code == 0
    printed = capsys.readouterr().out
    assert re.search(r"report: 6 runs, 1 searches, \d+ tables, \d+ figures", printed)
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and len(page.encode()) < 5e6
    # self-contained: every src and href is embedded data or a link within the page
    assert not re.findall(r'(?:src|href)="(?!data:|#)', page)
    md = (out / "report.md").read_text()
    assert page.count("<table") == md.count("\n### ") == int(re.search(r"(\d+) tables", printed)[1])
    names = {p.stem for p in (out / "figures").glob("*.png")}
    assert page.count('<figure class="fig"') == len(names)
    assert len(names) == int(re.search(r"(\d+) figures", printed)[1])
    for expected in (
        "digits-reliability-0",
        "digits-risk-coverage",
        "digits-ood-uniform_noise-0",
        "digits-corrupted-mean",
        "digits-corrupted-types-0",
        "digits-ensemble-size",
        "digits-search-progress",
        "search-digits-tree",
        "search-digits-pareto",
    ):
        assert expected in names
        assert (out / "figures" / f"{expected}.png").read_bytes()[:4] == b"\x89PNG"
    assert "recomputed/test/ece_mass_10" in md and "### digits: searches" in md
    assert "linear-ensemble [2 runs]" in md and "search/adaptive (final ensemble) [1 run]" in md
    assert "recomputed/test/ece_mass_10" in (out / "digits.csv").read_text()


def test_compare_prints_the_tables_aligned(harness_runs, capsys):
    assert main(["compare", str(harness_runs)]) == 0
    text = capsys.readouterr().out
    assert "digits: test" in text and "digits: ood: uniform_noise" in text
    assert "corrupted by type" not in text
    header = next(line for line in text.splitlines() if "test/accuracy" in line)
    rows = [line for line in text.splitlines() if line.startswith("linear")]
    assert len(rows) >= 2 and all(len(r) <= len(header) + 1 for r in rows[:2])
    assert "*" in text


def test_a_bad_format_is_a_clear_error(harness_runs, tmp_path, capsys):
    assert main(["report", str(harness_runs), "--format=pdf", f"--out={tmp_path}"]) == 2
    assert "--format takes html, md, csv" in capsys.readouterr().err


def test_published_numbers_sit_beside_runs_of_the_same_protocol(tmp_path):
    for seed, (rmse, nll) in enumerate(((3.0, 2.5), (3.2, 2.3))):
        write_run(
            tmp_path / f"de-{seed}",
            method="uci/ensemble",
            dataset="boston",
            seed=seed,
            split="all",
            metrics={"test/rmse": rmse, "test/nll": nll},
            protocol_id="uci-standard",
        )
    report = build_report([tmp_path], figures=False)
    (table,) = [t for t in report.tables if t.section == "test"]
    ours = table.rows[0]
    assert ours.cells["test/nll"].mean == pytest.approx(2.4)  # published rows not averaged in
    published = {r.name: r for r in table.rows if r.published}
    assert set(published) == {
        "PBP [uci-standard]",
        "MC dropout [uci-standard]",
        "Deep Ensembles (5) [uci-standard]",
    }
    assert published["Deep Ensembles (5) [uci-standard]"].texts["test/rmse"] == "3.28 ± 1.00"
    # 2.41 (published) would win test/nll; only our rows are marked
    assert table.best == {"test/nll": {0}, "test/rmse": {0}} or not table.best
    assert any("Lakshminarayanan" in n for n in report.notes)


def test_the_reference_table_holds_what_the_benchmarks_hard_coded():
    ensemble = references.one("uci-standard", "boston", "uci/ensemble")
    assert ensemble.pair("test/rmse") == (3.28, 1.00) and ensemble.pair("test/nll") == (2.41, 0.25)
    rerun = references.one("uci-dropout-long", "kin8nm", "uci/dropout")
    assert rerun.pair("test/nll") == (-1.14, 0.01)
    sngp = references.one("ub-wrn28-10", "cifar10", "image/sngp")
    assert sngp.text("corrupted/mean/accuracy") == "0.785"
    assert all(r.source in references.sources() for r in references.all_references())
    assert {r.protocol_id for r in references.all_references()} <= set(references.protocols())


def test_protocol_ids_from_flags():
    defaults = flag_values(["--dataset=boston", "--split=all", "--seed=3", "--noadversarial"])
    assert uci_protocol_id("uci/ensemble", "boston", defaults) == "uci-standard"
    assert uci_protocol_id("uci/ensemble", "boston", {**defaults, "epochs": "5"}) is None
    assert uci_protocol_id("uci/ensemble", "boston", {**defaults, "split": "3"}) is None
    assert uci_protocol_id("uci/ensemble", "diabetes", defaults) is None
    long = {**defaults, "epochs": "200", "batch_size": "128", "learning_rate": "0.001"}
    assert uci_protocol_id("uci/dropout", "protein", {**long, "mc_samples": "10000"}) == (
        "uci-dropout-long"
    )
    assert image_protocol_id("ub", "wrn28_10", {"ood": "uniform_noise"}) == "ub-wrn28-10"
    assert image_protocol_id("ub", "wrn28_10", {"epochs": "3"}) is None
    assert image_protocol_id("cpu", "lenet", {}) == "image-cpu"
    old_run = {"method": "uci/ensemble", "dataset": {"name": "wine"}, "split": "all"}
    assert protocol_id(old_run, {}) == "uci-standard"
    assert protocol_id({**old_run, "protocol_id": "x"}, {}) == "x"


def test_the_drawn_roc_curve_has_the_recorded_auroc():
    import numpy as np

    from uqbench.analysis.run_figures import roc_points
    from uqbench.metrics import ood_auroc

    rng = np.random.default_rng(1)
    inside, outside = rng.normal(1, 1, 200).round(1), rng.normal(0, 1, 150).round(1)  # ties
    fpr, tpr = roc_points(inside, outside)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(ood_auroc(inside, outside), rel=1e-12)
