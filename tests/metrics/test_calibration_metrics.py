"""ECE, adaptive ECE and classwise ECE on small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

import uqbench.metrics as M

# Six binary examples, two populated confidence levels (0.9 and 0.65), every other bin empty.
#   confidence 0.9  (15 bins: bin 13 = (13/15, 14/15]): correct, correct, wrong -> acc 2/3
#   confidence 0.65 (bin 9 = (9/15, 10/15]):            correct, wrong, wrong   -> acc 1/3
# ECE = 3/6 * |2/3 - 0.9| + 3/6 * |1/3 - 0.65| = 0.5 * 0.23333 + 0.5 * 0.31667 = 0.275
SIX_PROBS = np.array(
    [
        [0.9, 0.1],
        [0.9, 0.1],
        [0.1, 0.9],
        [0.65, 0.35],
        [0.35, 0.65],
        [0.65, 0.35],
    ]
)
SIX_LABELS = np.array([0, 0, 0, 0, 0, 1])


def test_ece_hand_case_with_empty_bins():
    assert M.ece(SIX_PROBS, SIX_LABELS) == pytest.approx(0.275)
    # the same with 10 bins: 0.9 in (0.8, 0.9], 0.65 in (0.6, 0.7]: the same two groups
    assert M.ece(SIX_PROBS, SIX_LABELS, num_bins=10) == pytest.approx(0.275)


def test_ece_one_bin_is_the_global_gap():
    # one bin: |mean accuracy - mean confidence| = |3/6 - (3*0.9 + 3*0.65)/6| = |0.5 - 0.775|
    assert M.ece(SIX_PROBS, SIX_LABELS, num_bins=1) == pytest.approx(0.275)
    probs = np.array([[0.6, 0.4], [0.8, 0.2], [0.7, 0.3], [0.95, 0.05]])
    labels = np.array([1, 0, 0, 0])
    # acc 3/4, mean confidence (0.6 + 0.8 + 0.7 + 0.95) / 4 = 0.7625 -> 0.0125
    assert M.ece(probs, labels, num_bins=1) == pytest.approx(0.0125)


def test_ece_bin_edges_are_right_closed():
    # confidence 0.5 with 2 bins belongs to (0, 0.5]; 0.75 to (0.5, 1].
    probs = np.array([[0.5, 0.5], [0.75, 0.25]])
    labels = np.array([1, 0])  # row 0: argmax 0, wrong; row 1: right
    # bin (0, .5]: |0 - 0.5| = 0.5; bin (.5, 1]: |1 - 0.75| = 0.25 -> (0.5 + 0.25) / 2
    assert M.ece(probs, labels, num_bins=2) == pytest.approx(0.375)


def test_ece_perfect_and_worst():
    onehot = np.eye(3)
    assert M.ece(onehot, [0, 1, 2]) == 0.0
    assert M.ece(onehot, [1, 2, 0]) == pytest.approx(1.0)


def test_ece_single_class_in_labels():
    # all labels 0; confidence 0.8 everywhere, 3 of 5 argmax 0 -> |0.6 - 0.8| = 0.2
    probs = np.array([[0.8, 0.2]] * 3 + [[0.2, 0.8]] * 2)
    assert M.ece(probs, np.zeros(5, dtype=int)) == pytest.approx(0.2)


def test_adaptive_ece_hand_case_equal_mass_bins():
    # confidences 0.6, 0.7, 0.8, 0.95 with correct = 0, 1, 1, 1; two equal-mass bins:
    #   {0.6, 0.7}: acc 1/2, conf 0.65  -> 0.15
    #   {0.8, 0.95}: acc 1, conf 0.875  -> 0.125
    # aECE = 2/4 * 0.15 + 2/4 * 0.125 = 0.1375 (equal-width with 2 bins would be 0.0125)
    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([1, 0, 1, 1])
    assert M.adaptive_ece(probs, labels, num_bins=2) == pytest.approx(0.1375)
    assert M.ece(probs, labels, num_bins=2) == pytest.approx(0.0125)


def test_adaptive_ece_uneven_groups():
    # 5 examples, 2 bins: np.array_split gives sizes 3 and 2 over sorted confidences
    #   {0.55, 0.6, 0.7}: correct 1, 0, 1 -> |2/3 - 0.61667| = 0.05;  weight 3/5
    #   {0.8, 0.9}:       correct 0, 1    -> |1/2 - 0.85|   = 0.35;   weight 2/5
    # -> 0.6 * 0.05 + 0.4 * 0.35 = 0.03 + 0.14 = 0.17
    conf = np.array([0.9, 0.55, 0.8, 0.6, 0.7])
    probs = np.c_[conf, 1 - conf]
    labels = np.array([0, 0, 1, 1, 0])
    assert M.adaptive_ece(probs, labels, num_bins=2) == pytest.approx(0.17)


def test_adaptive_ece_more_bins_than_examples_and_one_bin():
    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([1, 0, 1, 1])
    # one example per bin: mean |correct - conf| over (conf .8 right, .7 right, .6 wrong,
    # .95 right) = (0.2 + 0.3 + 0.6 + 0.05) / 4 = 0.2875
    assert M.adaptive_ece(probs, labels, num_bins=15) == pytest.approx(0.2875)
    assert M.adaptive_ece(probs, labels, num_bins=1) == pytest.approx(M.ece(probs, labels, 1))


def test_adaptive_ece_ties_go_whole_to_one_bin():
    # confidences 0.6, 0.7, 0.7, 0.9 with correct 0, 1, 0, 1; 2 bins: runs of sorted positions
    # {1, 2} and {3, 4}, edge e_1 = c_(3) = 0.7, so both 0.7s go to the upper bin:
    #   {0.6}: |0 - 0.6| = 0.6, weight 1/4;  {0.7, 0.7, 0.9}: |2/3 - 0.76667| = 0.1, weight 3/4
    # -> 0.15 + 0.075 = 0.225, in every order of the examples
    conf = np.array([0.7, 0.9, 0.6, 0.7])
    correct = np.array([1, 1, 0, 0])
    probs = np.c_[conf, 1 - conf]
    labels = 1 - correct  # class 0 is the top label everywhere
    for order in ([0, 1, 2, 3], [3, 1, 2, 0], [2, 0, 3, 1]):
        assert M.adaptive_ece(probs[order], labels[order], num_bins=2) == pytest.approx(0.225)


def test_adaptive_ece_constant_calibrated_predictor_is_zero_in_every_order():
    # confidence 0.7 everywhere and 70 of 100 correct: perfectly calibrated. Splitting the tied
    # examples into equal-mass groups by their stored order gave 0.09 to 0.48.
    probs = np.tile([0.7, 0.3], (100, 1))
    labels = np.r_[np.zeros(70, dtype=int), np.ones(30, dtype=int)]
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert M.adaptive_ece(probs, rng.permutation(labels)) == pytest.approx(0.0, abs=1e-12)
    assert M.adaptive_ece(probs, np.sort(labels)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("decimals", [1, 2, 8])
def test_adaptive_ece_is_invariant_under_permutation(decimals):
    rng = np.random.default_rng(decimals)
    probs = rng.dirichlet(np.ones(3), size=203)
    probs[:, 0] = np.round(probs[:, 0], decimals)  # coarse values: many ties in the top label
    probs[:, 1] = 1 - probs[:, 0] - probs[:, 2]
    probs = np.clip(probs, 0, 1)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = rng.integers(0, 3, size=203)
    expected = M.adaptive_ece(probs, labels)
    for _ in range(5):
        order = rng.permutation(203)
        assert M.adaptive_ece(probs[order], labels[order]) == pytest.approx(expected, rel=1e-12)


def test_mce_hand_case():
    # confidences .8 (right), .7 (right), .6 (wrong), .95 (right)
    probs = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.05, 0.95]])
    labels = np.array([1, 0, 1, 1])
    # 15 bins: each example alone in its bin, gaps .2, .3, .6, .05 -> max .6 (ECE: the mean)
    assert M.mce(probs, labels) == pytest.approx(0.6)
    assert M.ece(probs, labels) == pytest.approx(0.2875)
    # 2 bins: all four in (.5, 1]: |3/4 - 0.7625| = 0.0125, the empty bin (0, .5] is skipped
    assert M.mce(probs, labels, num_bins=2) == pytest.approx(0.0125)


def test_mce_small_bin_counts_fully():
    # 9 examples at 0.95, all right (gap .05); one at 0.55, wrong (gap .55): ECE weights the
    # lone example by 1/10, MCE takes its gap
    probs = np.array([[0.95, 0.05]] * 9 + [[0.55, 0.45]])
    labels = np.r_[np.zeros(9, dtype=int), 1]
    assert M.mce(probs, labels) == pytest.approx(0.55)
    assert M.ece(probs, labels) == pytest.approx(0.9 * 0.05 + 0.1 * 0.55)


def test_classwise_ece_hand_case():
    # 2 bins (0, .5], (.5, 1]; per class, p_k against 1[y = k]:
    # class 0: p = .7 .2 .1 .4, y=k: 1 0 0 0
    #   (.5,1]: {.7} vs 1 -> .3, weight 1/4; (0,.5]: mean .23333 vs 0 -> .23333, weight 3/4 -> .25
    # class 1: p = .2 .6 .3 .4, y=k: 0 0 0 1
    #   (.5,1]: {.6} vs 0 -> .6 (w 1/4); (0,.5]: mean .3 vs 1/3 -> .03333 (w 3/4) -> .175
    # class 2: p = .1 .2 .6 .2, y=k: 0 1 1 0
    #   (.5,1]: {.6} vs 1 -> .4 (w 1/4); (0,.5]: mean .16667 vs 1/3 -> .16667 (w 3/4) -> .225
    # mean over classes: (.25 + .175 + .225) / 3 = .216667
    probs = np.array(
        [[0.7, 0.2, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2]],
    )
    labels = np.array([0, 2, 2, 1])
    assert M.classwise_ece(probs, labels, num_bins=2) == pytest.approx(0.65 / 3)


def test_classwise_ece_perfect_is_zero():
    assert M.classwise_ece(np.eye(3), [0, 1, 2]) == 0.0


@pytest.mark.parametrize("metric", [M.ece, M.adaptive_ece, M.classwise_ece])
def test_num_bins_must_be_positive(metric):
    with pytest.raises(ValueError, match="num_bins"):
        metric(SIX_PROBS, SIX_LABELS, num_bins=0)


def test_ece_confidence_on_a_bin_edge_belongs_to_the_bin_it_closes():
    # 25 bins: 0.28 = 7/25 closes bin (0.24, 0.28], so it shares a bin with 0.27.
    # one bin {0.28 right, 0.27 wrong}: |1/2 - 0.275| = 0.225
    # (a split into two bins would give (|1 - 0.28| + |0 - 0.27|) / 2 = 0.495)
    probs = np.array([[0.28, 0.24, 0.24, 0.24], [0.27, 0.25, 0.24, 0.24]])
    assert M.ece(probs, [0, 1], num_bins=25) == pytest.approx(0.225)


@pytest.mark.parametrize("num_bins", [1, 2, 7, 10, 15, 25, 29, 41, 100])
def test_every_edge_b_over_b_is_right_closed(num_bins):
    # for each edge b/B, the confidences b/B (outcome 1) and (b - 1/2)/B (outcome 0) must share
    # the bin (b-1)/B .. b/B, giving |1 - b/B - (b - 1/2)/B| / 2; two bins would give
    # (|1 - b/B| + (b - 1/2)/B) / 2
    from uqbench.metrics.calibration import binned_calibration_error

    for b in range(1, num_bins + 1):
        confidence = np.array([b / num_bins, (b - 0.5) / num_bins])
        expected = abs(1 - confidence.sum()) / 2
        got = binned_calibration_error(confidence, np.array([1.0, 0.0]), num_bins)
        assert got == pytest.approx(expected, abs=1e-15), (num_bins, b)


def test_confidence_zero_falls_in_the_first_bin():
    # classwise ECE, 2 bins, class 1 probabilities 0, 0.5 (both in the first bin (0, 0.5]),
    # indicators 0, 1 -> |1/2 - 1/4| = 0.25; class 0 probabilities 1, 0.5 in bins 2 and 1,
    # indicators 1, 0 -> (|1 - 1| + |0 - 0.5|) / 2 = 0.25; mean 0.25
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert M.classwise_ece(probs, [0, 1], num_bins=2) == pytest.approx(0.25)


def reference_binned_error(confidence, outcome, num_bins):
    """Independent reference: per-bin means from sklearn's calibration_curve (right-closed
    uniform bins, empty bins dropped) weighted by np.histogram counts (which differ from
    right-closed bins only for values exactly on an edge, absent in random data)."""
    from sklearn.calibration import calibration_curve

    prob_true, prob_pred = calibration_curve(
        outcome, confidence, n_bins=num_bins, strategy="uniform"
    )
    counts, _ = np.histogram(confidence, bins=np.linspace(0, 1, num_bins + 1))
    counts = counts[counts > 0]
    return float(np.sum(counts / len(confidence) * np.abs(prob_true - prob_pred)))


@pytest.mark.parametrize(("seed", "num_bins"), [(0, 15), (1, 15), (2, 10), (3, 4)])
def test_ece_and_classwise_ece_match_sklearn_calibration_curve(seed, num_bins):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4) * 0.5, size=400)
    labels = np.array([rng.choice(4, p=p) for p in probs])  # roughly calibrated
    labels[:40] = rng.integers(0, 4, size=40)  # and some noise
    confidence, correct = probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(int)
    expected = reference_binned_error(confidence, correct, num_bins)
    assert M.ece(probs, labels, num_bins=num_bins) == pytest.approx(expected, abs=1e-12)
    expected_classwise = np.mean(
        [reference_binned_error(probs[:, k], (labels == k).astype(int), num_bins) for k in range(4)]
    )
    assert M.classwise_ece(probs, labels, num_bins=num_bins) == pytest.approx(
        expected_classwise, abs=1e-12
    )


def test_adaptive_ece_bins_hold_equal_numbers_of_examples():
    # 6 examples, 3 bins of 2 over sorted confidences .55 .6 | .7 .75 | .9 .95
    # correct:                                          0  1 |  1  1  |  1  0
    # gaps: |.5 - .575| = .075, |1 - .725| = .275, |.5 - .925| = .425 -> mean .258333
    conf = np.array([0.95, 0.55, 0.7, 0.9, 0.6, 0.75])
    correct = np.array([0, 0, 1, 1, 1, 1])
    probs = np.c_[conf, 1 - conf]
    labels = np.where(correct == 1, 0, 1)
    assert M.adaptive_ece(probs, labels, num_bins=3) == pytest.approx((0.075 + 0.275 + 0.425) / 3)


@pytest.mark.parametrize("metric", [M.ece, M.adaptive_ece, M.classwise_ece])
@pytest.mark.parametrize("num_bins", [2.5, True, -3, "15"])
def test_num_bins_must_be_a_positive_integer(metric, num_bins):
    with pytest.raises(ValueError, match="num_bins must be an integer"):
        metric(SIX_PROBS, SIX_LABELS, num_bins=num_bins)


@pytest.mark.parametrize("metric", [M.ece, M.adaptive_ece, M.classwise_ece])
def test_calibration_errors_are_order_free_and_in_unit_interval(metric):
    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(3), size=50)
    labels = rng.integers(0, 3, size=50)
    value = metric(probs, labels)
    assert 0.0 <= value <= 1.0
    if metric is not M.adaptive_ece:  # equal-mass groups depend on how ties are cut
        perm = rng.permutation(50)
        assert metric(probs[perm], labels[perm]) == pytest.approx(value, abs=1e-14)
