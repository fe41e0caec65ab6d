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
