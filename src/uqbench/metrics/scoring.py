"""Classification scores: accuracy and the two proper scoring rules (log and Brier).

``probs`` is ``(N, K)`` with rows in [0, 1] summing to 1 (within 1e-3); ``labels`` is ``(N,)``
integer classes in ``[0, K)``.
"""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, probabilities_and_labels

PROBABILITY_FLOOR = 1e-12


def accuracy(probs: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy of the predicted class.

    ``mean_i 1[argmax_k p_ik = y_i]``; a tie for the largest probability goes to the lowest class
    index (``np.argmax``)."""
    probs, labels = probabilities_and_labels(probs, labels)
    return float(np.mean(probs.argmax(axis=1) == labels))


def nll(probs: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood of the true class, mean per example, in nats.

    ``-mean_i log max(p_{i, y_i}, 1e-12)``: probabilities are clipped below at 1e-12, so a
    confident mistake costs ``-log 1e-12 = 27.63`` nats rather than infinity. Compute ``probs`` in
    float32 or float64 from logits, never in bf16."""
    probs, labels = probabilities_and_labels(probs, labels)
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, PROBABILITY_FLOOR))))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    """Brier score: squared error against the one-hot label, summed over classes.

    ``mean_i sum_k (p_ik - 1[y_i = k])^2``, in [0, 2] (the multi-class form, not halved and not
    averaged over classes)."""
    probs, labels = probabilities_and_labels(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
