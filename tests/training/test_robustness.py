"""Robustness under corruption: the stratified subset, the content-hash cache, UB's aggregation
(by hand), and the corrupted metrics and predictions a run directory gets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uqbench import baselines, data
from uqbench.cli import main
from uqbench.data import DataError, shift
from uqbench.data.corrupted import (
    CorruptionSuite,
    resolve_corruptions,
    resolve_severities,
    stratified_order,
    subset_indices,
)
from uqbench.training.robustness import aggregate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("UQBENCH_IMAGE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_stratified_order_keeps_every_prefix_in_proportion():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    order = stratified_order(labels, seed=3)
    assert sorted(order.tolist()) == list(range(100))
    for prefix in (10, 20, 50):
        counts = np.bincount(labels[order[:prefix]], minlength=3)
        np.testing.assert_allclose(counts, np.array([0.5, 0.3, 0.2]) * prefix, atol=1)
    assert not np.array_equal(order, stratified_order(labels, seed=4))
    np.testing.assert_array_equal(order, stratified_order(labels, seed=3))


def test_subset_indices_are_sorted_and_whole_when_asked():
    labels = np.arange(40) % 4
    chosen = subset_indices(labels, 8)
    assert chosen.tolist() == sorted(chosen.tolist()) and len(chosen) == 8
    assert np.bincount(labels[chosen]).tolist() == [2, 2, 2, 2]
    assert subset_indices(labels, None).tolist() == list(range(40))
    assert subset_indices(labels, 100).tolist() == list(range(40))


def test_aggregation_is_ubs_mean_over_types_then_severities():
    per_set = {
        ("fog", 1): {"accuracy": 0.9, "nll": 0.3, "ece": 0.01},
        ("snow", 1): {"accuracy": 0.7, "nll": 0.9, "ece": 0.05},
        ("fog", 2): {"accuracy": 0.6, "nll": 1.2, "ece": 0.10},
        ("snow", 2): {"accuracy": 0.2, "nll": 2.4, "ece": 0.30},
    }
    out = aggregate(per_set)
    assert out["corrupted/fog/2/nll"] == 1.2
    assert out["corrupted/mean/1/accuracy"] == pytest.approx(0.8)  # (0.9 + 0.7) / 2
    assert out["corrupted/mean/2/accuracy"] == pytest.approx(0.4)  # (0.6 + 0.2) / 2
    assert out["corrupted/mean/accuracy"] == pytest.approx(0.6)  # (0.8 + 0.4) / 2
    assert out["corrupted/mean/ece"] == pytest.approx((0.03 + 0.2) / 2)


def test_bad_corruption_requests_are_clear_errors():
    assert resolve_corruptions("all") == list(shift.CORRUPTIONS)
    assert resolve_corruptions("fog, fog,snow") == ["fog", "snow"]
    assert resolve_corruptions("") == []
    with pytest.raises(DataError, match=r"unknown corruption 'fgo'\. Did you mean fog"):
        resolve_corruptions("fgo")
    with pytest.raises(DataError, match="from 1 to 5, got '6'"):
        resolve_severities("1,6")
    with pytest.raises(DataError, match="from 1 to 5, got '0'"):
        resolve_severities(["0"])


def test_the_suite_corrupts_once_and_reads_the_cache_after(isolated_cache, monkeypatch):
    digits = data.get_images("digits")
    suite = CorruptionSuite(digits, ("gaussian_noise", "contrast"), (1, 5), count=50)
    first = [(s.name, s.images.clone()) for s in suite]
    assert [n for n, _ in first] == [
        "gaussian_noise_1",
        "gaussian_noise_5",
        "contrast_1",
        "contrast_5",
    ]
    assert len(list((isolated_cache / "corrupted").glob("*.npy"))) == 4
    monkeypatch.setattr(shift, "corrupt", lambda *a, **k: pytest.fail("not read from the cache"))
    again = [(s.name, s.images) for s in suite]
    for (_, a), (_, b) in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert suite.num_images == 4 * 50 and len(suite) == 4


def test_a_run_reports_corrupted_metrics_and_saves_their_predictions(tmp_path):
    out = tmp_path / "run"
    summary = baselines.run(
        "image/deterministic",
        [
            "--dataset=digits",
            "--epochs=2",
            "--quiet",
            "--corruptions=gaussian_noise,pixelate",
            "--corruption_severities=1,5",
            "--corruption_images=60",
            f"--output_dir={out}",
        ],
    )
    m = summary["metrics"]
    keys = [
        f"corrupted/{t}/{s}/{k}"
        for t in ("gaussian_noise", "pixelate")
        for s in (1, 5)
        for k in ("accuracy", "nll", "ece")
    ]
    assert set(keys) <= set(m)
    for k in ("accuracy", "nll", "ece"):
        per_severity = [
            np.mean([m[f"corrupted/{t}/{s}/{k}"] for t in ("gaussian_noise", "pixelate")])
            for s in (1, 5)
        ]
        assert m[f"corrupted/mean/{k}"] == pytest.approx(np.mean(per_severity))
    saved = np.load(out / "predictions" / "corrupted_pixelate_5.npz")
    assert saved["probs"].shape == (60, 10) and saved["labels"].shape == (60,)
    recomputed = np.mean(saved["probs"].argmax(1) == saved["labels"])
    assert m["corrupted/pixelate/5/accuracy"] == pytest.approx(recomputed)
    recorded = json.loads((out / "summary.json").read_text())["corruptions"]
    assert recorded["images"] == 60 and recorded["severities"] == [1, 5]


def test_eval_adds_corrupted_metrics_to_a_saved_run(tmp_path, capsys):
    out = tmp_path / "run"
    baselines.run(
        "image/deterministic", ["--dataset=digits", "--epochs=1", "--quiet", f"--output_dir={out}"]
    )
    again = tmp_path / "again"
    assert (
        main(
            [
                "eval",
                str(out),
                "--corruptions=contrast",
                "--corruption_images=30",
                f"--output_dir={again}",
                "--device=cpu",
            ]
        )
        == 0
    )
    m = json.loads((again / "summary.json").read_text())["metrics"]
    assert "corrupted/contrast/3/accuracy" in m and "corrupted/mean/nll" in m


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--corruptions=fgo"], "unknown corruption 'fgo'"),
        (["--corruptions=fog", "--corruption_severities=0"], "from 1 to 5"),
        (["--corruptions=fog", "--cifar10c_dir=/nowhere"], "nowhere"),
    ],
)
def test_bad_corruption_flags_fail_before_training(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "image/deterministic", "--dataset=digits", "--epochs=50", *flags]
    assert main([*argv, f"--output_dir={out}"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
