"""accuracy, nll, brier and the shared input checks, against scikit-learn and hand arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

import uqbench.metrics as M


def random_probs(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(k), size=n)
    labels = rng.integers(0, k, size=n)
    return probs, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accuracy_matches_sklearn(seed):
    probs, labels = random_probs(200, 4, seed)
    assert M.accuracy(probs, labels) == pytest.approx(accuracy_score(labels, probs.argmax(1)))


def test_accuracy_ties_go_to_lowest_class():
    probs = np.array([[0.5, 0.5], [0.25, 0.25 + 0.5]])
    # row 0: tie -> class 0 (correct for label 0); row 1: class 1 (wrong for label 0)
    assert M.accuracy(probs, [0, 0]) == 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nll_matches_sklearn_log_loss(seed):
    # Dirichlet(1) probabilities are far above both floors, so no clipping is in play.
    probs, labels = random_probs(300, 5, seed)
    assert probs.min() > 1e-6
    expected = log_loss(labels, probs, labels=list(range(5)))
    assert M.nll(probs, labels) == pytest.approx(expected, rel=1e-12)


def test_nll_single_class_in_labels_matches_sklearn():
    probs, _ = random_probs(50, 3, 7)
    labels = np.zeros(50, dtype=int)
    expected = log_loss(labels, probs, labels=[0, 1, 2])
    assert M.nll(probs, labels) == pytest.approx(expected, rel=1e-12)


def test_nll_floors_only_an_exact_zero_at_the_smallest_float32():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert M.nll(probs, [0, 1]) == 0.0  # perfect predictions: -log 1 = 0
    # confidently wrong: an exact zero is floored at 2**-149, -log(2**-149) = 149 log 2 nats
    assert M.nll(probs, [1, 0]) == pytest.approx(149 * math.log(2))
    assert M.nll(probs, [0, 0]) == pytest.approx(149 * math.log(2) / 2)


def test_nll_does_not_cap_small_probabilities():
    # a true-class probability of 1e-20 costs 46.05 nats, not a capped 27.63 (-log 1e-12)
    probs = np.array([[1.0 - 1e-20, 1e-20]])
    assert M.nll(probs, [1]) == pytest.approx(20 * math.log(10), rel=1e-12)
    tiny = np.array([[1.0, 2.0**-140]], dtype=np.float32)  # a float32 subnormal, not zero
    assert M.nll(tiny, [1]) == pytest.approx(140 * math.log(2), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nll_from_logits_matches_sklearn_on_softmax(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(200, 6)) * 3
    labels = rng.integers(0, 6, size=200)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = log_loss(labels, probs, labels=list(range(6)))
    assert M.nll_from_logits(logits, labels) == pytest.approx(expected, rel=1e-10)
    assert M.nll_from_logits(torch.tensor(logits, dtype=torch.float32), labels) == pytest.approx(
        expected, rel=1e-5
    )


def test_nll_from_logits_is_exact_for_confident_mistakes():
    # log_softmax([0, 200])_0 = -200 - log(1 + e^-200) = -200 to double precision; the softmax
    # probability e^-200 underflows float32 to 0, so only the logits give the exact 200 nats
    logits = np.array([[0.0, 200.0], [3.0, 0.0]])
    expected = (200.0 + math.log1p(math.exp(-3.0))) / 2
    assert M.nll_from_logits(logits, [0, 0]) == pytest.approx(expected, rel=1e-12)
    probs = torch.tensor(logits, dtype=torch.float32).softmax(-1).numpy()
    assert M.nll(probs, [0, 0]) < expected - 45  # floored at 2**-149: 103.3 nats, not 200


def test_nll_from_member_logits_is_the_mixture_nll():
    rng = np.random.default_rng(4)
    member_logits = rng.normal(size=(3, 50, 4)) * 2
    labels = rng.integers(0, 4, size=50)
    member_probs = np.exp(member_logits) / np.exp(member_logits).sum(-1, keepdims=True)
    mixture = member_probs.mean(axis=0)
    expected = -np.mean(np.log(mixture[np.arange(50), labels]))
    assert M.nll_from_logits(member_logits, labels) == pytest.approx(expected, rel=1e-12)
    # members confidently wrong by 300 and 400 nats: log((e^-300 + e^-400) / 2), exactly
    extreme = np.array([[[0.0, 300.0]], [[0.0, 400.0]]])
    assert M.nll_from_logits(extreme, [0]) == pytest.approx(
        300 + math.log(2) - math.log1p(math.exp(-100)), rel=1e-12
    )


def test_nll_from_logits_rejects_bad_input():
    with pytest.raises(ValueError, match="infinity"):
        M.nll_from_logits(np.array([[0.0, np.inf]]), [0])
    with pytest.raises(ValueError, match=r"\(N, K\) or \(M, N, K\)"):
        M.nll_from_logits(np.zeros(3), [0])
    with pytest.raises(ValueError, match="same number of examples"):
        M.nll_from_logits(np.zeros((2, 3)), [0])


def test_brier_matches_sklearn_multiclass():
    probs, labels = random_probs(100, 3, 3)
    expected = brier_score_loss(labels, probs, labels=[0, 1, 2], scale_by_half=False)
    assert M.brier(probs, labels) == pytest.approx(expected, rel=1e-12)


def test_brier_hand_case_and_extremes():
    # row 0: (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.09 + 0.04 + 0.01 = 0.14
    # row 1: 0.5^2 + (0.5-1)^2 + 0 = 0.5          -> mean 0.32
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    assert M.brier(probs, [0, 1]) == pytest.approx(0.32)
    onehot = np.eye(3)
    assert M.brier(onehot, [0, 1, 2]) == 0.0  # perfect
    assert M.brier(onehot, [1, 2, 0]) == pytest.approx(2.0)  # worst


def test_perfect_and_worst_accuracy():
    onehot = np.eye(4)
    assert M.accuracy(onehot, [0, 1, 2, 3]) == 1.0
    assert M.accuracy(onehot, [1, 2, 3, 0]) == 0.0


PROB_METRICS = [M.accuracy, M.nll, M.brier, M.ece, M.adaptive_ece, M.classwise_ece, M.aurc]


@pytest.mark.parametrize("metric", PROB_METRICS, ids=lambda f: f.__name__)
def test_torch_and_numpy_give_the_same_result(metric):
    probs, labels = random_probs(64, 3, 11)
    from_numpy = metric(probs, labels)
    from_torch = metric(torch.from_numpy(probs), torch.from_numpy(labels))
    from_torch32 = metric(torch.from_numpy(probs).float(), torch.from_numpy(labels))
    assert from_torch == pytest.approx(from_numpy, rel=1e-12, abs=1e-15)
    assert from_torch32 == pytest.approx(from_numpy, rel=1e-5, abs=1e-6)
    # requires_grad tensors are accepted too
    assert metric(torch.from_numpy(probs).requires_grad_(), labels) == pytest.approx(from_numpy)


@pytest.mark.parametrize("metric", PROB_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("probs", "labels", "words"),
    [
        (np.full((3, 2), 0.5), [0, 1], ["shape (3, 2)", "shape (2,)"]),
        (np.array([0.5, 0.5]), [0], ["2 dimension", "(2,)"]),
        (np.array([[0.5, np.nan], [0.5, 0.5]]), [0, 1], ["NaN"]),
        (np.array([[0.7, 0.7], [0.5, 0.5]]), [0, 1], ["sum to 1"]),
        (np.array([[1.2, -0.2], [0.5, 0.5]]), [0, 1], ["[0, 1]"]),
        (np.full((2, 3), 1 / 3), [0, 3], ["[0, 3)", "3"]),
        (np.full((2, 3), 1 / 3), [-1, 0], ["[0, 3)", "-1"]),
        (np.full((2, 3), 1 / 3), [0.5, 1], ["integer"]),
        (np.full((2, 3), 1 / 3), [[0, 1]], ["1-D", "(1, 2)"]),
        (np.zeros((0, 3)), [], ["empty"]),
    ],
    ids=[
        "labels-length",
        "probs-1d",
        "nan",
        "row-sum",
        "out-of-unit",
        "label-too-big",
        "label-negative",
        "label-fraction",
        "labels-2d",
        "empty",
    ],
)
def test_bad_inputs_raise_value_error_naming_the_problem(metric, probs, labels, words):
    with pytest.raises(ValueError) as info:
        metric(probs, labels)
    for word in words:
        assert word in str(info.value)


def test_describe_lists_every_public_metric_with_a_line():
    described = dict(M.describe())
    assert sorted(described) == sorted(M.__all__)
    assert M.names() == sorted(M.__all__)
    for name, line in described.items():
        assert line.strip(), name
        assert callable(getattr(M, name))


def test_every_public_metric_has_a_one_line_summary_and_a_formula():
    import inspect

    for name in M.names():
        doc = inspect.getdoc(getattr(M, name))
        summary, *rest = doc.split("\n\n")
        assert "\n" not in summary, f"{name}: the first paragraph must be one line"
        assert summary.endswith("."), name
        assert len(summary) <= 100, name
        assert rest, f"{name}: the docstring should give the formula after the summary"
    assert dict(M.describe())["nll"] == inspect.getdoc(M.nll).splitlines()[0]


def test_every_public_metric_is_fully_annotated():
    import inspect

    for name in M.names():
        signature = inspect.signature(getattr(M, name))
        assert signature.return_annotation is not inspect.Signature.empty, name
        for parameter in signature.parameters.values():
            assert parameter.annotation is not inspect.Parameter.empty, (name, parameter.name)


def test_scalar_metrics_return_python_floats():
    probs, labels = random_probs(20, 3, 4)
    for metric in (M.accuracy, M.nll, M.brier, M.ece, M.aurc, M.accuracy_at_coverage):
        assert type(metric(torch.from_numpy(probs), labels)) is float, metric.__name__


def test_labels_in_other_forms():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    expected = M.nll(probs, np.array([0, 1, 1]))
    assert M.nll(probs, [0.0, 1.0, 1.0]) == expected  # integral floats
    assert M.nll(probs, torch.tensor([0, 1, 1])) == expected
    assert M.nll(probs, np.array([False, True, True])) == expected
    with pytest.raises(ValueError, match="labels contains NaN"):
        M.nll(probs, [0.0, np.nan, 1.0])
    with pytest.raises(ValueError, match="integer class indices"):
        M.nll(probs, ["a", "b", "c"])


def test_rows_may_be_off_by_less_than_1e_3():
    # float32 softmax rows sum to 1 within ~1e-7; the tolerance is 1e-3, reported when exceeded
    probs = np.array([[0.5004, 0.5], [0.3, 0.7]])
    assert M.accuracy(probs, [0, 1]) == 1.0
    with pytest.raises(ValueError, match=r"off by 0.002"):
        M.accuracy(np.array([[0.502, 0.5], [0.3, 0.7]]), [0, 1])


def test_bf16_probabilities_are_refused():
    probs = torch.full((2, 2), 0.5, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="bfloat16"):
        M.nll(probs, [0, 1])
