"""Every metric recomputed from a run's saved predictions with the recorded definition equals the
recorded value; calibration errors with the user's definition match a by-hand reference."""

from __future__ import annotations

import numpy as np
import pytest

from uqbench import baselines
from uqbench.analysis.recompute import Calibration, recorded_metrics
from uqbench.analysis.rundirs import read_run

pytestmark = pytest.mark.usefixtures("one_thread")


def test_classifier_runs_recompute_to_their_recorded_metrics(harness_runs):
    checked = 0
    for path in sorted(harness_runs.iterdir()):
        run = read_run(path)
        recorded = {k: v for k, v in run.metrics.items() if not k.startswith("cost/")}
        recomputed = recorded_metrics(run)
        assert set(recomputed) == set(recorded), path.name
        for key, value in recorded.items():
            # the same float32 predictions, the same float64 arithmetic: equal to rounding
            assert recomputed[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
        checked += len(recorded)
    # per run: 10 test metrics, 3 OOD scores x 5 metrics, 2 types x 2 severities x 3 metrics and
    # 3 x (2 severity means + 1 overall mean) = 46; an ensemble adds 3 diversity metrics and 2
    # member means (and has mutual information instead of Dempster-Shafer): 2 x 46 + 2 x 51
    assert checked == 194


def test_regression_runs_recompute_to_their_recorded_metrics(tmp_path):
    out = tmp_path / "uci"
    baselines.run(
        "uci/ensemble",
        ["--dataset=diabetes", "--split=0,1", "--epochs=2", "--quiet", f"--output_dir={out}"],
    )
    run = read_run(out)
    assert "protocol_id" in run.summary and run.summary["protocol_id"] is None  # not a UCI set
    recomputed = recorded_metrics(run)
    recorded = {k: v for k, v in run.metrics.items() if not k.startswith("cost/")}
    assert (
        set(recomputed)
        == set(recorded)
        == {
            "test/rmse",
            "test/nll",
            "test/crps",
            "test/coverage95",
            "test/calibration_error",
        }
    )
    for key, value in recorded.items():
        # predictions are stored in float32 (the contract), the metrics were computed in float64
        assert recomputed[key] == pytest.approx(value, rel=2e-6), key


def _reference(confidence, outcome, edges_of):
    """``sum_b n_b / N |mean outcome - mean confidence|`` with loops over given bin members."""
    total = 0.0
    for members in edges_of(confidence):
        if members:
            gap = np.mean([outcome[i] for i in members]) - np.mean([confidence[i] for i in members])
            total += len(members) / len(confidence) * abs(gap)
    return total


def _width_bins(bins):
    def split(confidence):
        out = [[] for _ in range(bins)]
        for i, c in enumerate(confidence):
            b = min(bins - 1, max(0, int(np.ceil(c * bins)) - 1))  # (b/B, (b+1)/B]
            out[b].append(i)
        return out

    return split


def _mass_bins(bins):
    def split(confidence):
        order = sorted(range(len(confidence)), key=lambda i: confidence[i])
        return [list(chunk) for chunk in np.array_split(order, bins)]

    return split


@pytest.mark.parametrize("binning", ["width", "mass"])
@pytest.mark.parametrize("classwise", [False, True])
def test_user_calibration_definitions_match_a_reference(binning, classwise):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(300, 4)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=300)
    definition = Calibration(num_bins=7, binning=binning, classwise=classwise)
    split = _width_bins(7) if binning == "width" else _mass_bins(7)
    if classwise:
        expected = np.mean(
            [_reference(probs[:, k], (labels == k).astype(float), split) for k in range(4)]
        )
    else:
        correct = (probs.argmax(axis=1) == labels).astype(float)
        expected = _reference(probs.max(axis=1), correct, split)
    assert definition(probs, labels) == pytest.approx(expected, rel=1e-12)
    name = "classwise_ece" if classwise else "ece"
    assert definition.key == f"recomputed/test/{name}_{binning}_7"


def test_a_bad_definition_is_a_clear_error():
    with pytest.raises(ValueError, match="binning must be"):
        Calibration(binning="quantile")
    with pytest.raises(ValueError, match="num_bins"):
        Calibration(num_bins=0)
