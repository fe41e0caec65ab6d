"""Out-of-distribution detection from per-example scores.

Convention (DESIGN.md): in-distribution is the POSITIVE class and a higher score means "more
in-distribution" (e.g. the max probability, or minus the entropy). ``scores_in`` are the scores
of in-distribution test examples, ``scores_out`` those of OOD examples; both 1-D, non-empty,
no NaN (infinities are allowed). Ties are handled as scikit-learn does: all examples with one
score are accepted or rejected together.

Two functions take OOD as the positive class, as Uncertainty Baselines does (its CIFAR baselines
label OOD examples 1 and score them ``1 - max probability``, ``baselines/cifar/ood_utils.py``):
``ood_aupr_out`` (average precision, not UB's interpolated AUPR; see its docstring) and
``tnr_at_95_tpr`` (UB's ``(1-fpr)@95tpr``). ``fpr_at_95_tpr`` is ours, in-distribution positive.
Two conventions, two names.
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
    """Average precision with OOD as the positive class (scikit-learn's, not UB's AUPR).

    The same step-wise average precision as ``ood_aupr_in`` with the roles swapped: the OOD
    examples are the positives, ranked by ``-score``, and the result is ``sum_n (R_n - R_{n-1})
    P_n`` over the distinct thresholds, i.e. ``sklearn.metrics.average_precision_score(is_ood,
    -score)``. Uncertainty Baselines' ``ood/<set>_auprc`` takes the same positive class but is a
    different number: ``tf.keras.metrics.AUC(curve='PR', num_thresholds=100000)``
    (``baselines/cifar/ood_utils.py``), whose default ``summation_method='interpolation'``
    integrates precision between 100000 evenly spaced thresholds in [0, 1] with the
    Davis & Goadrich (2006) interpolation (TP and TP + FP linear between thresholds). The two
    agree closely on large sets, not exactly; compare them as different metrics."""
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


def tnr_at_95_tpr(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """UB's ``(1-fpr)@95tpr``: true-negative rate at 95% TPR, OOD the POSITIVE class.

    Higher is better. Uncertainty Baselines (``baselines/cifar/ood_utils.py``, ``create_ood_metrics``) computes it
    with ``tf.keras.metrics.SpecificityAtSensitivity(0.95, num_thresholds=100000)`` on labels
    ``1 = OOD`` and OOD scores ``u = 1 - max probability``: an example is flagged OOD when
    ``u > t``; at every threshold ``t`` sensitivity is the fraction of OOD examples flagged and
    specificity the fraction of in-distribution examples not flagged, and the result is the
    LARGEST specificity among the thresholds whose sensitivity is ``>= 0.95`` (Keras'
    ``_find_max_under_constraint``: no interpolation, no nearest-threshold rule). Here ``u =
    -score`` and the thresholds are every distinct score (so tied examples are flagged
    together), which gives every operating point a threshold can give:

    ``max over c of mean(scores_in >= c)  subject to  mean(scores_out < c) >= 0.95``.

    Keras instead evaluates a fixed grid of thresholds ``0, 1/99999, ..., 1``; on the max
    probability the two differ only where distinct scores lie within 1e-5 of each other. With
    OOD positive this is not ``1 - fpr_at_95_tpr``: that one keeps 95% of the in-distribution
    examples, this one catches 95% of the OOD examples."""
    scores_in, scores_out = _scores(scores_in, scores_out)
    # OOD positive, ranked by -score; (tpr, fpr) at every distinct threshold, from (0, 0).
    tpr, fpr = _roc(-scores_out, -scores_in)
    # Flagging everything (the last point) always reaches tpr = 1, so the set is never empty.
    return float(np.max(1.0 - fpr[tpr >= 0.95]))
