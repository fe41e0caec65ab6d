"""OOD detection (in-distribution positive, higher score = more in-distribution) vs scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

import uqbench.metrics as M


def sklearn_reference(scores_in, scores_out):
    scores = np.r_[scores_in, scores_out]
    is_in = np.r_[np.ones(len(scores_in)), np.zeros(len(scores_out))]
    fpr, tpr, _ = roc_curve(is_in, scores, drop_intermediate=False)
    # UB's (1-fpr)@95tpr: OOD positive, OOD score -score, best specificity with tpr >= 0.95
    fpr_out, tpr_out, _ = roc_curve(1 - is_in, -scores)
    return {
        "auroc": roc_auc_score(is_in, scores),
        "aupr_in": average_precision_score(is_in, scores),
        "aupr_out": average_precision_score(1 - is_in, -scores),
        "fpr95": fpr[np.argmax(tpr >= 0.95)],
        "tnr_at_95_tpr": np.max(1 - fpr_out[tpr_out >= 0.95]),
    }


def ours(scores_in, scores_out):
    return {
        "auroc": M.ood_auroc(scores_in, scores_out),
        "aupr_in": M.ood_aupr_in(scores_in, scores_out),
        "aupr_out": M.ood_aupr_out(scores_in, scores_out),
        "fpr95": M.fpr_at_95_tpr(scores_in, scores_out),
        "tnr_at_95_tpr": M.tnr_at_95_tpr(scores_in, scores_out),
    }


CASES = {
    "continuous": (
        np.random.default_rng(0).normal(1.0, 1.0, 300),
        np.random.default_rng(1).normal(0.0, 1.0, 200),
    ),
    # rounded scores: many ties inside and across the two groups
    "ties": (
        np.round(np.random.default_rng(2).normal(0.5, 1.0, 120), 1),
        np.round(np.random.default_rng(3).normal(0.0, 1.0, 80), 1),
    ),
    "coarse-ties": (
        np.random.default_rng(4).integers(0, 4, 40).astype(float),
        np.random.default_rng(5).integers(0, 3, 25).astype(float),
    ),
    "twenty-in": (np.arange(20.0), np.array([0.5, 3.0, 10.0, 18.5, -1.0])),
}


@pytest.mark.parametrize("case", CASES)
def test_ood_metrics_match_sklearn(case):
    scores_in, scores_out = CASES[case]
    expected = sklearn_reference(scores_in, scores_out)
    got = ours(scores_in, scores_out)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key


def test_auroc_ties_count_one_half():
    # in: 1, 2; out: 1, 0. Pairs (in > out): (1,0) (2,1) (2,0) = 3, tie (1,1) = 1/2 -> 3.5 / 4
    assert M.ood_auroc([1.0, 2.0], [1.0, 0.0]) == pytest.approx(0.875)
    # all scores equal: every pair is a tie
    assert M.ood_auroc([0.3] * 5, [0.3] * 7) == pytest.approx(0.5)


def test_perfect_and_reversed_separation():
    scores_in, scores_out = np.array([0.9, 0.8, 0.95]), np.array([0.1, 0.2])
    assert M.ood_auroc(scores_in, scores_out) == 1.0
    assert M.ood_aupr_in(scores_in, scores_out) == 1.0
    assert M.ood_aupr_out(scores_in, scores_out) == 1.0
    assert M.fpr_at_95_tpr(scores_in, scores_out) == 0.0
    assert M.ood_auroc(scores_out, scores_in) == 0.0
    assert M.fpr_at_95_tpr(scores_out, scores_in) == 1.0


def test_fpr95_hand_case():
    # 20 in-distribution scores 1..20: keeping 19/20 = 95% needs threshold 2;
    # OOD scores 1.5, 2, 30 are accepted at >= 2 -> 2 / 4 (the 0 is rejected)
    scores_in = np.arange(1.0, 21.0)
    assert M.fpr_at_95_tpr(scores_in, [1.5, 2.0, 30.0, 0.0]) == pytest.approx(0.5)


def test_tnr_at_95_tpr_hand_case_ood_positive():
    # OOD is positive and flagged when its score is below the cut c. 20 OOD scores: 18 x 0.1,
    # 0.65, 0.95. Catching 19/20 = 95% (>= 0.95 counts) needs c > 0.65; the best such c keeps
    # the in-distribution scores >= 0.7: 0.9, 0.8, 0.7 of 5 -> 3/5.
    scores_in = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    scores_out = np.r_[np.full(18, 0.1), 0.65, 0.95]
    assert M.tnr_at_95_tpr(scores_in, scores_out) == pytest.approx(0.6)
    # not 1 - FPR95 (in-distribution positive): keeping 5/5 in-distribution needs t = 0.5,
    # which accepts 0.65 and 0.95 -> fpr95 = 2/20, 1 - fpr95 = 0.9
    assert M.fpr_at_95_tpr(scores_in, scores_out) == pytest.approx(0.1)
    # an OOD score tied with an in-distribution one is flagged with it: OOD 18 x 0.1, 0.7,
    # 0.95 -> c > 0.7, which flags the in-distribution 0.7 too: 0.9, 0.8 kept -> 2/5
    scores_out = np.r_[np.full(18, 0.1), 0.7, 0.95]
    assert M.tnr_at_95_tpr(scores_in, scores_out) == pytest.approx(0.4)
    # 19 OOD examples: 18/19 = 94.7% is not enough, so all 19 must be caught (c > 0.95)
    assert M.tnr_at_95_tpr(scores_in, np.r_[np.full(18, 0.1), 0.95]) == 0.0
    # perfect separation: every OOD score below every in-distribution score
    assert M.tnr_at_95_tpr(scores_in, np.full(20, 0.1)) == 1.0


def test_in_distribution_is_the_positive_class():
    # swapping the roles turns AUROC into 1 - AUROC and swaps aupr_in with aupr_out
    scores_in, scores_out = CASES["continuous"]
    assert M.ood_auroc(scores_out, scores_in) == pytest.approx(
        1 - M.ood_auroc(scores_in, scores_out)
    )
    assert M.ood_aupr_in(-scores_out, -scores_in) == pytest.approx(
        M.ood_aupr_out(scores_in, scores_out)
    )


def test_torch_and_numpy_agree():
    scores_in, scores_out = CASES["ties"]
    expected = ours(scores_in, scores_out)
    got = ours(torch.from_numpy(scores_in), torch.from_numpy(scores_out))
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    "metric",
    [M.ood_auroc, M.ood_aupr_in, M.ood_aupr_out, M.fpr_at_95_tpr, M.tnr_at_95_tpr],
    ids=lambda f: f.__name__,
)
@pytest.mark.parametrize(
    ("scores_in", "scores_out", "words"),
    [
        ([0.1, np.nan], [0.2], ["scores_in", "NaN"]),
        ([0.1, 0.2], [[0.2]], ["scores_out", "1 dimension", "(1, 1)"]),
        ([], [0.2], ["scores_in", "empty"]),
        ([0.3], [], ["scores_out", "empty"]),
    ],
    ids=["nan", "2d", "no-in", "no-out"],
)
def test_bad_scores_raise(metric, scores_in, scores_out, words):
    with pytest.raises(ValueError) as info:
        metric(scores_in, scores_out)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    ("n_in", "n_out", "seed"),
    [
        (1, 1, 0),
        (1, 5, 1),
        (2, 3, 2),
        (19, 7, 3),
        (20, 20, 4),
        (21, 4, 5),
        (37, 50, 6),
        (100, 9, 7),
    ],
)
def test_ood_metrics_match_sklearn_for_awkward_sizes_and_ties(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    # few distinct values -> ties within and across the groups
    scores_in = rng.integers(0, 6, size=n_in).astype(float)
    scores_out = rng.integers(0, 4, size=n_out).astype(float)
    expected = sklearn_reference(scores_in, scores_out)
    got = ours(scores_in, scores_out)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-12), key


def test_fpr95_threshold_is_the_largest_keeping_95_percent():
    # 40 in-distribution scores 1..40: ceil(0.95 * 40) = 38 must be kept -> t = 3
    # (t = 4 keeps 37 / 40 = 92.5%); OOD scores 2.9, 3, 3.5, 50 -> 3 of 4 accepted
    scores_in = np.arange(1.0, 41.0)
    assert M.fpr_at_95_tpr(scores_in, [2.9, 3.0, 3.5, 50.0]) == pytest.approx(0.75)
    # ties: in = 1, 5 x 19 -> t = 5 keeps 19/20 = 95% exactly; OOD 4.99 rejected, 5 accepted
    scores_in = np.r_[1.0, np.full(19, 5.0)]
    assert M.fpr_at_95_tpr(scores_in, [4.99, 5.0]) == pytest.approx(0.5)
    # in = 1, 1, 5 x 18: t = 5 keeps only 90%, so t = 1 -> every OOD score >= 1 is accepted
    scores_in = np.r_[1.0, 1.0, np.full(18, 5.0)]
    assert M.fpr_at_95_tpr(scores_in, [0.5, 1.0, 4.99]) == pytest.approx(2 / 3)


def test_fpr95_scales_to_large_inputs():
    # O(N log N): 10^6 distinct in-distribution scores (an N x N comparison would need 10^12)
    rng = np.random.default_rng(8)
    scores_in, scores_out = rng.normal(1.0, 1.0, 1_000_000), rng.normal(0.0, 1.0, 100_000)
    # the threshold is close to the 5% quantile of N(1, 1): 1 - 1.645; accepted OOD ~ 1 - Phi(-0.645)
    assert M.fpr_at_95_tpr(scores_in, scores_out) == pytest.approx(0.7405, abs=0.01)


def test_infinite_scores_are_allowed():
    # pairs: (inf > -inf), (inf > 1), (1 > -inf), (1 = 1) half -> 3.5 / 4
    assert M.ood_auroc([np.inf, 1.0], [-np.inf, 1.0]) == pytest.approx(0.875)


def test_bf16_tensors_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="bfloat16"):
        M.ood_auroc(torch.ones(3, dtype=torch.bfloat16), torch.zeros(3))
