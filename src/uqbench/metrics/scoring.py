"""Classification scores: accuracy and the two proper scoring rules (log and Brier)."""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, probabilities_and_labels

PROBABILITY_FLOOR = 1e-12


def accuracy(probs: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy: ``mean_i 1[argmax_k p_ik = y_i]`` (ties go to the lowest class index)."""
    probs, labels = probabilities_and_labels(probs, labels)
    return float(np.mean(probs.argmax(axis=1) == labels))


def nll(probs: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood, mean per example, nats: ``-mean_i log p_{i, y_i}``.

    Probabilities are clipped below at 1e-12, so a confident mistake costs about 27.6 nats rather
    than infinity. Compute ``probs`` in float32 or float64 from logits, never in bf16."""
    probs, labels = probabilities_and_labels(probs, labels)
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, PROBABILITY_FLOOR))))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    """Brier score: ``mean_i sum_k (p_ik - 1[y_i = k])^2`` (sum over classes, in [0, 2])."""
    probs, labels = probabilities_and_labels(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
