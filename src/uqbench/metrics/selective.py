"""Selective prediction: accuracy when the model may abstain on its least confident examples."""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float, probabilities_and_labels, unit_interval


def _confidence(probs: np.ndarray, confidence: ArrayLike | None) -> np.ndarray:
    if confidence is None:
        return probs.max(axis=1)
    confidence = as_float("confidence", confidence, ndim=1)
    if confidence.shape[0] != probs.shape[0]:
        raise ValueError(
            f"confidence has shape {confidence.shape} but probs has shape {probs.shape}"
        )
    return confidence


def risk_coverage_curve(
    probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Risk (error rate of the accepted examples) against coverage (fraction accepted), accepting
    examples in order of decreasing confidence (default: max probability). Examples with tied
    confidence are accepted together, so the curve has one point per distinct confidence value."""
    probs, labels = probabilities_and_labels(probs, labels)
    conf = _confidence(probs, confidence)
    errors = (probs.argmax(axis=1) != labels).astype(np.float64)
    order = np.argsort(-conf, kind="stable")
    conf, errors = conf[order], errors[order]
    last_of_group = np.r_[conf[1:] != conf[:-1], True]
    accepted = np.arange(1, len(conf) + 1)[last_of_group]
    risk = np.cumsum(errors)[last_of_group] / accepted
    return accepted / len(conf), risk


def aurc(probs: ArrayLike, labels: ArrayLike, confidence: ArrayLike | None = None) -> float:
    """Area under the risk-coverage curve (Geifman & El-Yaniv 2018), as a step function:
    ``sum_j (c_j - c_{j-1}) r_j`` over the curve's points (``c_0 = 0``). Without ties this is
    ``(1/N) sum_k risk of the k most confident examples``. Lower is better."""
    coverage, risk = risk_coverage_curve(probs, labels, confidence)
    steps = np.diff(np.r_[0.0, coverage])
    return float(np.sum(steps * risk))


def accuracy_at_coverage(
    probs: ArrayLike, labels: ArrayLike, coverage: float = 0.9, confidence: ArrayLike | None = None
) -> float:
    """Accuracy on the ``ceil(coverage * N)`` most confident examples (ties broken by order)."""
    coverage = unit_interval("coverage", coverage)
    probs, labels = probabilities_and_labels(probs, labels)
    conf = _confidence(probs, confidence)
    # Round first so that e.g. 0.07 * 100 = 7.000000000000001 keeps 7 examples, not 8.
    count = int(np.ceil(round(coverage * len(conf), 9)))
    keep = np.argsort(-conf, kind="stable")[:count]
    return float(np.mean(probs[keep].argmax(axis=1) == labels[keep]))
