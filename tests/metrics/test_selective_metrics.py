"""Risk-coverage curve, AURC and accuracy at coverage on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

import uqbench.metrics as M


def binary(conf, correct):
    """Two-class probabilities with top-label confidence ``conf`` and labels making the top label
    right where ``correct`` is 1."""
    conf = np.asarray(conf, dtype=float)
    probs = np.c_[conf, 1 - conf]
    labels = np.where(np.asarray(correct) == 1, 0, 1)
    return probs, labels


def test_aurc_four_examples_without_ties():
    # confidences 0.9, 0.8, 0.7, 0.6 with correct 1, 0, 1, 0:
    # risk of the k most confident: 0/1, 1/2, 1/3, 2/4
    # AURC = (0 + 0.5 + 0.33333 + 0.5) / 4 = 0.33333
    probs, labels = binary([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0])
    coverage, risk = M.risk_coverage_curve(probs, labels)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 0.5, 1 / 3, 0.5])
    assert M.aurc(probs, labels) == pytest.approx(1 / 3)


def test_risk_coverage_with_ties_accepts_tied_examples_together():
    # confidences 0.9, 0.7, 0.7, 0.6 with correct 1, 0, 1, 1:
    # points: accept {0.9} -> (0.25, 0); accept both 0.7 -> (0.75, 1/3); all -> (1.0, 1/4)
    # AURC = 0.25 * 0 + 0.5 * 1/3 + 0.25 * 1/4 = 0.229167
    probs, labels = binary([0.9, 0.7, 0.7, 0.6], [1, 0, 1, 1])
    coverage, risk = M.risk_coverage_curve(probs, labels)
    np.testing.assert_allclose(coverage, [0.25, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 1 / 3, 0.25])
    assert M.aurc(probs, labels) == pytest.approx(0.5 / 3 + 0.0625)
    # the order of tied examples does not matter
    swapped, swapped_labels = binary([0.9, 0.7, 0.7, 0.6], [1, 1, 0, 1])
    assert M.aurc(swapped, swapped_labels) == pytest.approx(M.aurc(probs, labels))


def test_aurc_all_tied_is_the_error_rate():
    probs, labels = binary([0.8] * 5, [1, 0, 1, 1, 0])
    coverage, risk = M.risk_coverage_curve(probs, labels)
    np.testing.assert_allclose(coverage, [1.0])
    np.testing.assert_allclose(risk, [0.4])
    assert M.aurc(probs, labels) == pytest.approx(0.4)


def test_aurc_perfect_and_worst():
    probs, labels = binary([0.9, 0.8, 0.7], [1, 1, 1])
    assert M.aurc(probs, labels) == 0.0
    probs, labels = binary([0.9, 0.8, 0.7], [0, 0, 0])
    assert M.aurc(probs, labels) == 1.0


def test_custom_confidence_orders_the_examples():
    # max probability says 0.9 first, but the given confidence reverses the order:
    # accept wrong (0.6) first, then right ones: risks 1, 1/2, 1/3 -> AURC (1 + .5 + .3333) / 3
    probs, labels = binary([0.9, 0.8, 0.6], [1, 1, 0])
    assert M.aurc(probs, labels, confidence=[0.1, 0.2, 0.3]) == pytest.approx(11 / 18)
    assert M.aurc(probs, labels) == pytest.approx((0 + 0 + 1 / 3) / 3)


def test_accuracy_at_coverage_hand_case():
    # sorted by confidence: correct 1, 0, 1, 0 (as in the AURC case)
    probs, labels = binary([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0])
    assert M.accuracy_at_coverage(probs, labels, coverage=0.5) == pytest.approx(0.5)
    # ceil(0.6 * 4) = 3 examples: 2 of 3 right
    assert M.accuracy_at_coverage(probs, labels, coverage=0.6) == pytest.approx(2 / 3)
    assert M.accuracy_at_coverage(probs, labels, coverage=0.25) == 1.0


def test_accuracy_at_coverage_keeps_exactly_coverage_times_n():
    # 100 examples, the 7 most confident right and the rest wrong: 7% coverage -> accuracy 1
    conf = np.linspace(0.99, 0.51, 100)
    probs, labels = binary(conf, [1] * 7 + [0] * 93)
    assert M.accuracy_at_coverage(probs, labels, coverage=0.07) == 1.0


@pytest.mark.parametrize("coverage", [0.0, 1.0, -0.5, 1.5])
def test_coverage_outside_unit_interval_raises(coverage):
    probs, labels = binary([0.9, 0.8], [1, 0])
    with pytest.raises(ValueError, match="coverage"):
        M.accuracy_at_coverage(probs, labels, coverage=coverage)


def test_confidence_of_the_wrong_length_raises():
    probs, labels = binary([0.9, 0.8, 0.7], [1, 0, 1])
    with pytest.raises(ValueError, match=r"confidence has shape \(2,\).*probs has shape \(3, 2\)"):
        M.aurc(probs, labels, confidence=[0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        M.risk_coverage_curve(probs, labels, confidence=[0.1, np.nan, 0.2])


def test_aurc_matches_its_definition_without_ties():
    # the definition written as a loop: mean over k of the error rate of the k most confident
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=60)
    labels = rng.integers(0, 3, size=60)
    wrong = probs.argmax(axis=1) != labels
    by_confidence = wrong[np.argsort(-probs.max(axis=1))]
    expected = np.mean([by_confidence[:k].mean() for k in range(1, 61)])
    assert M.aurc(probs, labels) == pytest.approx(expected, rel=1e-12)


def test_full_coverage_risk_is_the_sklearn_error_rate():
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(1)
    probs = np.round(rng.dirichlet(np.ones(4), size=80), 1)  # rounding creates many ties
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, size=80)
    coverage, risk = M.risk_coverage_curve(probs, labels)
    assert coverage[-1] == 1.0
    assert risk[-1] == pytest.approx(1 - accuracy_score(labels, probs.argmax(axis=1)))
    assert np.all(np.diff(coverage) > 0)
    assert len(coverage) == len(np.unique(probs.max(axis=1)))
    # no dependence on the order of the examples, ties included
    perm = rng.permutation(80)
    np.testing.assert_allclose(M.risk_coverage_curve(probs[perm], labels[perm])[1], risk)
    assert M.aurc(probs[perm], labels[perm]) == pytest.approx(M.aurc(probs, labels))
    assert M.accuracy_at_coverage(probs[perm], labels[perm], 0.3) == pytest.approx(
        M.accuracy_at_coverage(probs, labels, 0.3)
    )
    assert M.accuracy_at_coverage(probs, labels, coverage=0.999) == pytest.approx(
        accuracy_score(labels, probs.argmax(axis=1))
    )


def test_accuracy_at_coverage_fills_from_a_tied_group_at_its_mean_accuracy():
    # all four tied at 0.8, one right: keeping 1 of them gives the expected accuracy 1/4,
    # whichever example is stored first
    probs, labels = binary([0.8] * 4, [1, 0, 0, 0])
    assert M.accuracy_at_coverage(probs, labels, coverage=0.25) == pytest.approx(0.25)
    probs, labels = binary([0.8] * 4, [0, 0, 0, 1])
    assert M.accuracy_at_coverage(probs, labels, coverage=0.25) == pytest.approx(0.25)
    # conf .9 .8 .8 .8 .5, correct 0 1 1 0 1, coverage 0.6 -> keep 3: the wrong 0.9, then 2
    # places from the tied 0.8 group (accuracy 2/3) -> (0 + 2 * 2/3) / 3 = 4/9
    probs, labels = binary([0.9, 0.8, 0.8, 0.8, 0.5], [0, 1, 1, 0, 1])
    assert M.accuracy_at_coverage(probs, labels, coverage=0.6) == pytest.approx(4 / 9)


def test_selective_metrics_accept_torch_and_a_torch_confidence():
    import torch

    probs, labels = binary([0.7, 0.9, 0.6, 0.8, 0.8], [1, 1, 0, 0, 1])
    conf = np.array([0.3, 0.1, 0.5, 0.2, 0.2])
    t = torch.from_numpy
    for metric in (M.aurc, M.accuracy_at_coverage):
        assert metric(t(probs), t(labels), confidence=t(conf)) == metric(
            probs, labels, confidence=conf
        )
    for a, b in zip(
        M.risk_coverage_curve(t(probs).float(), t(labels)),
        M.risk_coverage_curve(probs, labels),
        strict=True,
    ):
        assert a.dtype == np.float64
        np.testing.assert_allclose(a, b)


def test_bad_selective_inputs_raise_with_shapes():
    probs, labels = binary([0.9, 0.8, 0.7], [1, 0, 1])
    with pytest.raises(ValueError, match=r"shape \(3, 2\).*shape \(2,\)"):
        M.risk_coverage_curve(probs, labels[:2])
    with pytest.raises(ValueError, match=r"confidence must have 1 dimension"):
        M.aurc(probs, labels, confidence=[[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="coverage must be a number"):
        M.accuracy_at_coverage(probs, labels, coverage=float("nan"))


def test_augrc_four_examples_without_ties():
    # confidences 0.9, 0.8, 0.7, 0.6 with correct 1, 0, 1, 0: errors among the k most
    # confident 0, 1, 1, 2, each over all N = 4 -> AUGRC = (0 + 1 + 1 + 2) / 4 / 4 = 0.25
    # (AURC divides by k instead: 1/3)
    probs, labels = binary([0.7, 0.9, 0.6, 0.8], [1, 1, 0, 0])
    assert M.augrc(probs, labels) == pytest.approx(0.25)
    assert M.aurc(probs, labels) == pytest.approx(1 / 3)


def test_augrc_ties_follow_aurc_convention():
    # confidences 0.9, 0.7, 0.7, 0.6 with correct 1, 0, 1, 1: accepting {0.9} -> (1/4, 0 / 4),
    # both 0.7 -> (3/4, 1 / 4), all -> (1, 1 / 4):
    # AUGRC = 1/4 * 0 + 2/4 * 1/4 + 1/4 * 1/4 = 3/16, in either order of the tied pair
    # (breaking the tie by storage order would give 3/16 or 2/16)
    probs, labels = binary([0.9, 0.7, 0.7, 0.6], [1, 0, 1, 1])
    assert M.augrc(probs, labels) == pytest.approx(3 / 16)
    swapped, swapped_labels = binary([0.9, 0.7, 0.7, 0.6], [1, 1, 0, 1])
    assert M.augrc(swapped, swapped_labels) == pytest.approx(3 / 16)
    # all tied: one step to full coverage at the error rate
    probs, labels = binary([0.8] * 5, [1, 0, 1, 1, 0])
    assert M.augrc(probs, labels) == pytest.approx(0.4)


def test_augrc_matches_its_definition_without_ties():
    rng = np.random.default_rng(11)
    probs = rng.dirichlet(np.ones(4), size=57)
    labels = rng.integers(0, 4, size=57)
    errors = (probs.argmax(axis=1) != labels)[np.argsort(-probs.max(axis=1))]
    expected = np.mean(np.cumsum(errors) / 57)
    assert M.augrc(probs, labels) == pytest.approx(expected, rel=1e-12)
    # a perfect ranking (every error below every correct example) still pays for its errors
    probs, labels = binary([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0])
    assert M.augrc(probs, labels) == pytest.approx((0 + 0 + 1 + 2) / 16)
