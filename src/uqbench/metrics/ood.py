"""Out-of-distribution detection from per-example scores.

Convention (DESIGN.md): in-distribution is the POSITIVE class and a higher score means "more
in-distribution" (e.g. the max probability, or minus the entropy). ``scores_in`` are the scores
of in-distribution test examples, ``scores_out`` those of OOD examples; both 1-D, non-empty,
no NaN (infinities are allowed). Ties are handled as scikit-learn does: all examples with one
score are accepted or rejected together.
"""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float


def _scores(scores_in: ArrayLike, scores_out: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    scores_in = as_float("scores_in", scores_in, ndim=1)
    scores_out = as_float("scores_out", scores_out, ndim=1)
    return scores_in, scores_out


def _roc(positive: np.ndarray, negative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True- and false-positive rates at every distinct threshold (score >= t), from (0, 0)."""
    scores = np.r_[positive, negative]
    is_positive = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    order = np.argsort(-scores, kind="stable")
    scores, is_positive = scores[order], is_positive[order]
    last = np.r_[scores[1:] != scores[:-1], True]
    tp = np.cumsum(is_positive)[last]
    fp = np.cumsum(1 - is_positive)[last]
    return np.r_[0.0, tp / len(positive)], np.r_[0.0, fp / len(negative)]


def ood_auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Area under the ROC curve for OOD detection, in-distribution as the positive class.

    Equals ``P(s_in > s_out) + P(s_in = s_out) / 2`` over all (in, OOD) pairs: 1 is perfect
    separation, 0.5 chance; computed as the trapezoidal area under (FPR, TPR) at every distinct
    threshold (as ``sklearn.metrics.roc_auc_score``)."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    tpr, fpr = _roc(scores_in, scores_out)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _average_precision(positive: np.ndarray, negative: np.ndarray) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds (scikit-learn's definition)."""
    tpr, fpr = _roc(positive, negative)
    tp, fp = tpr[1:] * len(positive), fpr[1:] * len(negative)
    precision = tp / (tp + fp)
    return float(np.sum(np.diff(tpr) * precision))


def ood_aupr_in(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Average precision (area under precision-recall) with in-distribution as the positive class.

    ``sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds ``score >= t`` taken from high to
    low, with recall R and precision P of the in-distribution examples (the step-wise definition
    of ``sklearn.metrics.average_precision_score``, no interpolation)."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    return _average_precision(scores_in, scores_out)


def ood_aupr_out(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Average precision with OOD as the positive class (what Uncertainty Baselines calls AUPR).

    The same step-wise average precision as ``ood_aupr_in``, with the roles swapped: the OOD
    examples are the positives and are ranked by ``-score``."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    return _average_precision(-scores_out, -scores_in)


def fpr_at_95_tpr(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """False-positive rate at 95% true-positive rate (FPR95): OOD examples accepted; lower is better.

    The threshold ``t`` is the largest value with ``mean(scores_in >= t) >= 0.95`` (it keeps at
    least 95% of the in-distribution examples; it is always one of ``scores_in``), and the result
    is ``mean(scores_out >= t)``, the fraction of OOD examples accepted at it."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    n = len(scores_in)
    # the smallest k with k / n >= 0.95, evaluated in floating point exactly as the definition
    keep = min(n, int(np.ceil(0.95 * n)))
    while keep > 1 and (keep - 1) / n >= 0.95:
        keep -= 1
    while keep < n and keep / n < 0.95:
        keep += 1
    threshold = np.sort(scores_in)[::-1][keep - 1]
    return float(np.mean(scores_out >= threshold))
