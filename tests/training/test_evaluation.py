"""The evaluation harness on a user's predict function: metrics against scikit-learn and hand
values, the run directory, and clear errors for malformed outputs."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.metrics import log_loss, roc_auc_score, roc_curve

from uqbench.training.divergence import DivergedError
from uqbench.training.evaluation import collect, evaluate, member_metrics
from uqbench.training.image_task import tempered
from uqbench.training.predictors import mixture

K = 3


@dataclass
class FakeImages:
    """The attributes of an image set that ``evaluate`` reads."""

    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str = "fake"
    source: str = "/somewhere/fake"
    data_hash: str = "abc123"

    @property
    def num_classes(self) -> int:
        return K


@dataclass
class FakeOOD:
    name: str
    images: torch.Tensor
    description: str = "test OOD set"


def _images(n: int, offset: int) -> torch.Tensor:
    """uint8 images whose first pixel encodes the example index (plus ``offset``)."""
    x = torch.zeros(n, 1, 4, 4, dtype=torch.uint8)
    x[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8) + offset
    return x


def _table(n: int, seed: int, sharp: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, K)) * sharp
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


IN_PROBS = _table(60, 0, 3.0)
OOD_PROBS = _table(40, 1, 0.5)
LABELS = np.random.default_rng(2).integers(0, K, 60)


def predict(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Looks each image up by the index in its first pixel: in-distribution 0..59, OOD 100+."""
    index = images[:, 0, 0, 0].long()
    table = np.where(index[:, None] >= 100, 0, 1)  # which table to read from
    rows = np.stack(
        [
            OOD_PROBS[i - 100] if t == 0 else IN_PROBS[i]
            for i, t in zip(index.tolist(), table[:, 0], strict=True)
        ]
    )
    probs = torch.tensor(rows, dtype=torch.float32)
    return {"probs": probs, "logits": probs.log(), "member_probs": probs.expand(2, -1, -1)}


def test_metrics_match_references_and_the_run_directory_is_complete(tmp_path):
    data = FakeImages(_images(60, 0), torch.tensor(LABELS))
    ood = FakeOOD("other", _images(40, 100))
    out = tmp_path / "run"
    summary = evaluate(
        predict,
        data,
        ood=[ood],
        output_dir=out,
        method="mine",
        batch_size=16,
        params=123,
        quiet=True,
    )
    m = summary["metrics"]
    probs = IN_PROBS.astype(np.float32).astype(np.float64)
    normalised = probs / probs.sum(1, keepdims=True)
    assert m["test/accuracy"] == pytest.approx(np.mean(probs.argmax(1) == LABELS))
    assert m["test/nll"] == pytest.approx(log_loss(LABELS, normalised, labels=range(K)), rel=1e-5)
    onehot = np.eye(K)[LABELS]
    assert m["test/brier"] == pytest.approx(np.mean(((probs - onehot) ** 2).sum(1)), rel=1e-5)
    # AUROC of the max probability, in-distribution positive, against scikit-learn
    scores = np.r_[IN_PROBS.max(1), OOD_PROBS.max(1)]
    truth = np.r_[np.ones(60), np.zeros(40)]
    assert m["ood/other/auroc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
    assert {"ood/other/entropy/auroc", "ood/other/dempster_shafer/fpr95"} <= set(m)
    assert m["ood/other/mutual_information/auroc"] == pytest.approx(0.5)  # identical members
    assert m["cost/params"] == 123 and m["cost/ms_per_example"] > 0
    assert sorted(p.name for p in out.iterdir()) == [
        "flags.txt",
        "history.jsonl",
        "predictions",
        "summary.json",
    ]
    saved = np.load(out / "predictions" / "test.npz")
    np.testing.assert_allclose(saved["probs"], IN_PROBS, rtol=1e-6)
    assert saved["labels"].tolist() == LABELS.tolist()
    assert saved["member_probs"].shape == (2, 60, K)
    ood_saved = np.load(out / "predictions" / "ood_other.npz")
    np.testing.assert_allclose(ood_saved["score_max_prob"], OOD_PROBS.max(1), rtol=1e-6)
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["method"] == "mine" and on_disk["dataset"]["root"] == "fake"
    assert on_disk["ood_sets"] == {"other": "test OOD set"}
    assert on_disk["schema"] == 2
    # UB's (1-fpr)@95tpr: OOD positive, ranked by 1 - max probability (as -max probability),
    # against scikit-learn
    fpr, tpr, _ = roc_curve(1 - truth, -scores.astype(np.float32))
    assert m["ood/other/tnr_at_95_tpr"] == pytest.approx(np.max(1 - fpr[tpr >= 0.95]))
    assert {"test/mce", "test/augrc", "ood/other/entropy/tnr_at_95_tpr"} <= set(m)
    assert m["test/mce"] >= m["test/ece"] and 0 <= m["test/augrc"] <= m["test/aurc"]
    # two identical members: no diversity
    assert m["test/diversity/disagreement"] == 0.0
    assert m["test/diversity/average_kl"] == pytest.approx(0.0, abs=1e-12)
    assert m["test/diversity/cosine_similarity"] == pytest.approx(1.0)


def test_diversity_is_written_for_two_or_more_members():
    # members (1, 0) and (.5, .5) on every example of class 0: they agree on the top label
    # (argmax of (.5, .5) is class 0), KL((1, 0) || (.5, .5)) = ln 2, cosine 1 / sqrt(2)
    members = torch.tensor([[[1.0, 0.0]], [[0.5, 0.5]]]).expand(2, 8, 2)
    data = FakeImages(_images(8, 0), torch.zeros(8, dtype=torch.long))
    summary = evaluate(
        lambda images: {
            "probs": members.mean(0)[: len(images)],
            "member_probs": members[:, : len(images)],
        },
        _TwoClasses(data.x_test, data.y_test),
        measure_latency=False,
        quiet=True,
    )
    m = summary["metrics"]
    assert m["test/diversity/disagreement"] == 0.0
    assert m["test/diversity/average_kl"] == pytest.approx(np.log(2))
    assert m["test/diversity/cosine_similarity"] == pytest.approx(1 / np.sqrt(2))
    # each member's own metrics, averaged: accuracy (1 + 1) / 2, NLL (0 + ln 2) / 2
    assert m["test/member_mean/accuracy"] == 1.0
    assert m["test/member_mean/nll"] == pytest.approx(np.log(2) / 2)
    # one member: nothing to compare, no diversity keys
    summary = evaluate(
        lambda images: {
            "probs": members[0, : len(images)],
            "member_probs": members[:1, : len(images)],
        },
        _TwoClasses(data.x_test, data.y_test),
        measure_latency=False,
        quiet=True,
    )
    assert not any("diversity" in key or "member_mean" in key for key in summary["metrics"])


def test_member_means_match_scikit_learn_member_by_member():
    rng = np.random.default_rng(0)
    members = rng.dirichlet(np.ones(K), size=(4, 50))
    labels = rng.integers(0, K, 50)
    m = member_metrics(members, labels)
    assert m["test/member_mean/nll"] == pytest.approx(
        np.mean([log_loss(labels, p, labels=range(K)) for p in members])
    )
    assert m["test/member_mean/accuracy"] == pytest.approx(
        np.mean([np.mean(p.argmax(1) == labels) for p in members])
    )


@dataclass
class _TwoClasses(FakeImages):
    @property
    def num_classes(self) -> int:
        return 2


def test_plain_probabilities_are_enough(tmp_path):
    data = FakeImages(_images(60, 0), torch.tensor(LABELS))
    summary = evaluate(
        lambda x: predict(x)["probs"], data, ood=[FakeOOD("o", _images(40, 100))], quiet=True
    )
    assert "ood/o/auroc" in summary["metrics"]
    assert "ood/o/dempster_shafer/auroc" not in summary["metrics"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda x: torch.ones(x.shape[0], K + 1) / (K + 1), "classes"),
        (lambda x: torch.ones(x.shape[0] - 1, K) / K, "shape"),
        (lambda x: {"scores": torch.ones(x.shape[0], K)}, "probs"),
        (lambda x: (torch.ones(x.shape[0], K) / K).bfloat16(), "bf16"),
    ],
)
def test_malformed_predictions_are_refused(bad, message, tmp_path):
    data = FakeImages(_images(60, 0), torch.tensor(LABELS))
    with pytest.raises(ValueError, match=message):
        evaluate(bad, data, output_dir=tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_an_existing_run_directory_is_not_overwritten(tmp_path):
    data = FakeImages(_images(60, 0), torch.tensor(LABELS))
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="--overwrite"):
        evaluate(predict, data, output_dir=out, quiet=True)
    assert (out / "keep.txt").read_text() == "mine"


def test_a_latency_measured_already_is_recorded_without_measuring_again():
    data = FakeImages(_images(60, 0), torch.from_numpy(LABELS))
    calls = []

    def counting(images):
        calls.append(len(images))
        return predict(images)

    record = {"ms_per_example": 0.125, "batch_size": 60, "warmup": 1, "repeats": 3}
    summary = evaluate(counting, data, latency=record, quiet=True, batch_size=500)
    assert calls == [60]  # the test set once, no timing runs
    assert summary["metrics"]["cost/ms_per_example"] == 0.125
    assert summary["latency"] == record


def test_nll_is_exact_from_logits_where_probabilities_underflow(tmp_path):
    # example i: the true class is behind by 10 * i nats; e^-590 underflows float32 to 0, so
    # only the logits give the exact NLL: mean_i (10 i + log(1 + e^-10i + e^-10i ...)) by hand
    n = 60
    gaps = 10.0 * np.arange(n)
    logits = np.zeros((n, K))
    logits[:, 1] = gaps  # class 1 leads; label 0 (logit 0), class 2 (logit 0)
    expected = np.mean(np.logaddexp(np.logaddexp(0.0, gaps), 0.0) - 0.0)

    def predict_logits(images):
        rows = torch.tensor(logits[images[:, 0, 0, 0].long()], dtype=torch.float32)
        return {"probs": rows.softmax(-1), "logits": rows}

    data = FakeImages(_images(n, 0), torch.zeros(n, dtype=torch.int64))
    summary = evaluate(predict_logits, data, output_dir=tmp_path / "run", quiet=True)
    assert summary["metrics"]["test/nll"] == pytest.approx(expected, rel=1e-6)
    saved = np.load(tmp_path / "run" / "predictions" / "test.npz")
    assert (saved["probs"][:, 0] == 0).sum() > 0  # the probabilities alone could not say it


def test_an_ensembles_log_probabilities_give_the_exact_mixture_nll(tmp_path):
    # two members, wrong by 200 and 300 nats on every example: log((e^-200 + e^-300) / 2)
    member_logits = torch.zeros(2, 60, K)
    member_logits[0, :, 1], member_logits[1, :, 1] = 200.0, 300.0
    expected = -np.logaddexp(-200.0 - np.log1p(2 * np.exp(-200.0)), -300.0) + np.log(2)

    def predict_members(images):
        return mixture(member_logits[:, images[:, 0, 0, 0].long()])

    data = FakeImages(_images(60, 0), torch.zeros(60, dtype=torch.int64))
    summary = evaluate(predict_members, data, output_dir=tmp_path / "run", quiet=True)
    assert summary["metrics"]["test/nll"] == pytest.approx(expected, rel=1e-6)
    saved = np.load(tmp_path / "run" / "predictions" / "test.npz")
    assert saved["log_probs"].shape == (60, K)
    assert saved["log_probs"][0, 0] == pytest.approx(-expected, rel=1e-6)


def test_mixture_matches_the_mean_of_member_softmaxes():
    member_logits = torch.randn(3, 20, K, generator=torch.Generator().manual_seed(0)) * 2
    out = mixture(member_logits)
    mean = member_logits.softmax(-1).mean(0)
    torch.testing.assert_close(out["probs"], mean)
    torch.testing.assert_close(out["log_probs"], mean.log(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["member_probs"], member_logits.softmax(-1))


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_predictions_are_a_divergence_and_nothing_is_written(bad_value, tmp_path):
    def broken(images):
        logits = torch.zeros(images.shape[0], K)
        logits[0, 0] = bad_value
        return {"probs": torch.full((images.shape[0], K), 1 / K), "logits": logits}

    data = FakeImages(_images(60, 0), torch.tensor(LABELS))
    with pytest.raises(DivergedError, match="non-finite logits"):
        evaluate(broken, data, output_dir=tmp_path / "run", quiet=True)
    assert not any(tmp_path.iterdir())


def test_temperature_scaling_works_in_log_space():
    member_logits = torch.zeros(2, 4, K)
    member_logits[:, :, 1] = torch.tensor([150.0, 250.0]).view(2, 1)
    scaled = tempered(lambda images: mixture(member_logits), 2.0)(torch.zeros(4))
    reference = mixture(member_logits)["log_probs"] / 2.0
    torch.testing.assert_close(scaled["log_probs"], reference.log_softmax(-1))
    assert torch.isfinite(scaled["log_probs"]).all() and scaled["log_probs"][0, 0] < -70


class FakeClock:
    """Stands in for ``time.perf_counter``: time passes only when a slow predictor says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _slow(clock: FakeClock, seconds: float):
    def slow_predict(images):
        clock.now += seconds
        return predict(images)

    return slow_predict


def test_a_fast_evaluation_prints_no_progress(capsys):
    data = FakeImages(_images(60, 0), torch.from_numpy(LABELS))
    evaluate(predict, data, ood=[FakeOOD("o", _images(40, 100))], batch_size=16)
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "accuracy" in captured.out


def test_a_slow_evaluation_reports_progress_with_an_eta_on_stderr(monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    data = FakeImages(_images(60, 0), torch.from_numpy(LABELS))
    ood = [FakeOOD("o", _images(40, 100))]
    evaluate(_slow(clock, 3.0), data, ood=ood, batch_size=10, method="slow")
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    # 6 test batches, 4 OOD batches, 2 + 5 latency calls on 10 images: 170 images, 3 s a call.
    # Silent for 10 s, then a line at most every 10 s (at 12, 24, 36 and 48 s) and the last.
    assert (
        lines[0]
        == "evaluating slow on fake: 40/170 images (24%) 12.0s elapsed, ETA 39.0s  test set"
    )
    assert [line.split(" ")[4] for line in lines] == [
        "40/170",
        "80/170",
        "120/170",
        "160/170",
        "170/170",
    ]
    assert [line.split("  ")[-1] for line in lines] == ["test set", "OOD set o", *["latency"] * 3]
    assert lines[-1].startswith(
        "evaluating slow on fake: 170/170 images (100%) 51.0s elapsed, ETA 0.0s"
    )
    assert "evaluating" not in captured.out and "accuracy" in captured.out


def test_a_quiet_evaluation_stays_silent_however_long(monkeypatch, capsys):
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    data = FakeImages(_images(60, 0), torch.from_numpy(LABELS))
    evaluate(_slow(clock, 30.0), data, batch_size=10, quiet=True)
    assert capsys.readouterr() == ("", "")


def test_collect_reports_only_when_slow_and_not_quiet(monkeypatch, capsys):
    images = _images(60, 0)
    collect(predict, images, torch.device("cpu"), 10, label="val")
    assert capsys.readouterr().err == ""
    clock = FakeClock()
    monkeypatch.setattr(time, "perf_counter", clock)
    collect(_slow(clock, 3.0), images, torch.device("cpu"), 10, label="val", quiet=True)
    assert capsys.readouterr().err == ""
    collect(_slow(clock, 3.0), images, torch.device("cpu"), 10, label="val")
    assert capsys.readouterr().err.splitlines() == [
        "val: 40/60 images (67%) 12.0s elapsed, ETA 6.0s",
        "val: 60/60 images (100%) 18.0s elapsed, ETA 0.0s",
    ]
