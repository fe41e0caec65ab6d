"""Calibration errors of classifiers: ECE (top label), adaptive ECE, classwise ECE."""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, probabilities_and_labels


def _check_bins(num_bins: int) -> None:
    if num_bins < 1:
        raise ValueError(f"num_bins must be at least 1, got {num_bins}")


def binned_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, num_bins: int = 15
) -> float:
    """``sum_b (n_b / N) |mean(correct in b) - mean(confidence in b)|`` over equal-width bins
    ``(b/B, (b+1)/B]`` (a confidence of exactly 0 falls in the first bin); empty bins add 0."""
    _check_bins(num_bins)
    bins = np.clip(np.ceil(confidence * num_bins).astype(np.int64) - 1, 0, num_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        members = bins == b
        total += members.sum() * abs(correct[members].mean() - confidence[members].mean())
    return float(total / len(confidence))


def ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Expected calibration error of the top label (Guo et al. 2017), 15 equal-width bins:
    ``sum_b (n_b / N) |acc_b - conf_b|`` with ``conf = max_k p_k`` and bins ``(b/B, (b+1)/B]``."""
    probs, labels = probabilities_and_labels(probs, labels)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    return binned_calibration_error(probs.max(axis=1), correct, num_bins)


def adaptive_ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """ECE with equal-mass bins (Nguyen & O'Connor 2015): examples sorted by top-label
    confidence are cut into ``num_bins`` groups of (nearly) equal size (``np.array_split``), then
    ``sum_b (n_b / N) |acc_b - conf_b|``."""
    _check_bins(num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    order = np.argsort(confidence, kind="stable")
    total = 0.0
    for group in np.array_split(order, min(num_bins, len(order))):
        total += len(group) * abs(correct[group].mean() - confidence[group].mean())
    return float(total / len(order))


def classwise_ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Classwise ECE (Kull et al. 2019): the mean over classes k of the equal-width binned
    calibration error of ``p_k`` against ``1[y = k]``."""
    probs, labels = probabilities_and_labels(probs, labels)
    errors = [
        binned_calibration_error(probs[:, k], (labels == k).astype(np.float64), num_bins)
        for k in range(probs.shape[1])
    ]
    return float(np.mean(errors))
