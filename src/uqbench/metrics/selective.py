"""Selective prediction: the error of a classifier that may abstain on its least confident examples.

Examples are accepted in order of decreasing confidence (by default the top-label probability
``max_k p_ik``; pass ``confidence`` of shape ``(N,)`` to use another score, higher = more
confident). An example counts as an error when ``argmax_k p_ik != y_i``. Examples with tied
confidence are never separated by the order they happen to be stored in.
"""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float, probabilities_and_labels, unit_interval


def _confidence(probs: np.ndarray, confidence: ArrayLike | None) -> np.ndarray:
    if confidence is None:
        return probs.max(axis=1)
    confidence = as_float("confidence", confidence, ndim=1)
    if confidence.shape[0] != probs.shape[0]:
        raise ValueError(
            f"confidence has shape {confidence.shape} but probs has shape {probs.shape}: "
            "they must have the same number of examples"
        )
    return confidence


def _sorted(
    probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    """Confidences in decreasing order and the matching 0/1 errors."""
    probs, labels = probabilities_and_labels(probs, labels)
    conf = _confidence(probs, confidence)
    errors = (probs.argmax(axis=1) != labels).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    return conf[order], errors[order]


def risk_coverage_curve(
    probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Risk-coverage curve: error rate of the accepted examples against the fraction accepted.

    Accepting the examples with confidence ``>= t`` for each distinct confidence ``t`` (highest
    first) gives one point per distinct value: ``coverage = n_accepted / N`` and ``risk =
    errors among the accepted / n_accepted``. Tied examples are accepted together, so the curve
    does not depend on their order. Returns ``(coverage, risk)``, float64 arrays of equal length,
    coverage increasing to 1."""
    conf, errors = _sorted(probs, labels, confidence)
    last_of_group = np.r_[conf[1:] != conf[:-1], True]
    accepted = np.arange(1, len(conf) + 1)[last_of_group]
    risk = np.cumsum(errors)[last_of_group] / accepted
    return accepted / len(conf), risk


def aurc(probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None = None) -> float:
    """Area under the risk-coverage curve (AURC, Geifman & El-Yaniv 2018); lower is better.

    The curve as a right-continuous step function: ``sum_j (c_j - c_{j-1}) r_j`` over the points
    ``(c_j, r_j)`` of ``risk_coverage_curve`` with ``c_0 = 0``. Without ties this is
    ``(1/N) sum_{k=1..N} (errors among the k most confident) / k``; a group of tied examples
    contributes its width times the risk once the whole group is accepted."""
    coverage, risk = risk_coverage_curve(probs, labels, confidence)
    steps = np.diff(np.r_[0.0, coverage])
    return float(np.sum(steps * risk))


def augrc(probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None = None) -> float:
    """Area under the generalized risk-coverage curve (AUGRC); lower is better.

    Traub et al. 2024, "Overcoming Common Flaws in the Evaluation of Selective Classification
    Systems": the generalized risk at a coverage counts the errors among the accepted examples
    over ALL N examples (the probability of an undetected failure), not over the accepted ones
    as AURC's selective risk does. With the tie convention of ``aurc`` (tied examples are
    accepted together; the curve is a right-continuous step function), over the points
    ``(c_j, E_j)`` of the distinct confidences, highest first, where ``E_j`` counts the errors
    among the examples with confidence ``>= t_j`` and ``c_0 = 0``:

    ``AUGRC = sum_j (c_j - c_{j-1}) E_j / N``.

    Without ties this is ``(1/N) sum_{k=1..N} (errors among the k most confident) / N``. (A
    trapezoidal rule through ``(0, 0)`` would give ``error_rate / (2N)`` less without ties.)"""
    coverage, risk = risk_coverage_curve(probs, labels, confidence)
    # selective risk x accepted fraction = errors among the accepted / N
    generalized_risk = risk * coverage
    steps = np.diff(np.r_[0.0, coverage])
    return float(np.sum(steps * generalized_risk))


def accuracy_at_coverage(
    probs: ArrayLike, labels: ArrayLike, coverage: float = 0.9, confidence: ArrayLike | None = None
) -> float:
    """Accuracy on the most confident fraction ``coverage`` of the examples.

    Keeps ``n = ceil(coverage * N)`` examples (``coverage`` in (0, 1)). If the n-th confidence
    ``t`` is tied, all examples above ``t`` are kept and the remaining places are filled from the
    tied group at that group's mean accuracy (the expected accuracy under random tie-breaking), so
    the result does not depend on the order of the examples."""
    coverage = unit_interval("coverage", coverage)
    conf, errors = _sorted(probs, labels, confidence)
    # Round first so that e.g. 0.07 * 100 = 7.000000000000001 keeps 7 examples, not 8.
    keep = max(1, int(np.ceil(round(coverage * len(conf), 9))))
    threshold = conf[keep - 1]
    above = conf > threshold
    tied = conf == threshold
    correct_above = np.sum(1 - errors[above])
    from_tied = (keep - above.sum()) * np.mean(1 - errors[tied])
    return float((correct_above + from_tied) / keep)
