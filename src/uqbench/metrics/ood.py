"""Out-of-distribution detection. Convention (DESIGN.md): in-distribution is the POSITIVE class
and a higher score means "more in-distribution" (e.g. the max probability)."""

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
    """Area under the ROC curve with in-distribution as positive: the probability that a random
    in-distribution example scores higher than a random OOD one (ties count one half)."""
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
    """Average precision (area under precision-recall) with in-distribution as positive."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    return _average_precision(scores_in, scores_out)


def ood_aupr_out(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Average precision with OOD as positive, scored by ``-score`` (what Uncertainty Baselines
    reports as AUPR)."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    return _average_precision(-scores_out, -scores_in)


def fpr_at_95_tpr(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Fraction of OOD examples accepted (score >= t) at the largest threshold t that accepts at
    least 95% of in-distribution examples. Lower is better."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    candidates = np.sort(np.unique(scores_in))[::-1]
    accepted_in = (scores_in[None, :] >= candidates[:, None]).mean(axis=1)
    threshold = candidates[np.argmax(accepted_in >= 0.95)]
    return float(np.mean(scores_out >= threshold))
