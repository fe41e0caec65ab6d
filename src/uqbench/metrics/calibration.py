"""Calibration errors of classifiers: ECE (top label), adaptive ECE, classwise ECE.

Equal-width binning, used by ``ece`` and ``classwise_ece``: with ``B`` bins, bin ``b`` is the
right-closed interval ``(b/B, (b+1)/B]`` for ``b = 0..B-1`` (edges computed as ``b / B`` in float64,
so a confidence written as exactly ``b / B`` lands in the bin it closes), and a confidence of
exactly 0 falls in the first bin. Empty bins contribute 0.
"""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, count, probabilities_and_labels


def _weighted_gap(bins: np.ndarray, confidence: np.ndarray, outcome: np.ndarray, n: int) -> float:
    """``sum_b (n_b / N) |mean(outcome in b) - mean(confidence in b)|`` over non-empty bins."""
    sizes = np.bincount(bins, minlength=n)
    gaps = np.bincount(bins, weights=outcome - confidence, minlength=n)
    # n_b |mean(outcome - confidence)| = |sum over the bin of (outcome - confidence)|
    return float(np.abs(gaps[sizes > 0]).sum() / len(confidence))


def binned_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, num_bins: int = 15
) -> float:
    """Equal-width binned calibration error of ``confidence`` against 0/1 ``outcome``.

    ``sum_b (n_b / N) |mean(outcome in b) - mean(confidence in b)|`` over the bins
    ``(b/B, (b+1)/B]`` (a confidence of exactly 0 falls in the first bin); empty bins add 0."""
    num_bins = count("num_bins", num_bins)
    edges = np.arange(num_bins + 1) / num_bins
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    return _weighted_gap(bins, confidence, outcome, num_bins)


def ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Expected calibration error of the top label, equal-width bins (15 by default).

    Guo et al. 2017: with confidence ``c_i = max_k p_ik`` and correctness
    ``a_i = 1[argmax_k p_ik = y_i]``, ``ECE = sum_b (n_b / N) |mean_{i in b} a_i - mean_{i in b}
    c_i|`` over bins ``(b/B, (b+1)/B]`` (confidence 0 in the first bin; empty bins add 0)."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    return binned_calibration_error(probs.max(axis=1), correct, num_bins)


def adaptive_ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Top-label calibration error with equal-mass bins (adaptive ECE).

    Nguyen & O'Connor 2015: the examples sorted by top-label confidence (stable sort) are cut into
    ``min(num_bins, N)`` consecutive groups of nearly equal size with ``np.array_split`` (the
    first ``N mod B`` groups have one more example), then ``sum_b (n_b / N) |acc_b - conf_b|``.
    Tied confidences on a group boundary may be split between two groups."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    order = np.argsort(confidence, kind="stable")
    groups = min(num_bins, len(order))
    bins = np.empty(len(order), dtype=np.int64)
    for b, members in enumerate(np.array_split(order, groups)):
        bins[members] = b
    return _weighted_gap(bins, confidence, correct, groups)


def classwise_ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Classwise expected calibration error, mean over classes (Kull et al. 2019).

    ``(1/K) sum_k sum_b (n_bk / N) |mean_{i in b} 1[y_i = k] - mean_{i in b} p_ik|``: for each
    class k, the equal-width binned calibration error (bins ``(b/B, (b+1)/B]``) of that class's
    probability against the indicator of that class, over all N examples."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    errors = [
        binned_calibration_error(probs[:, k], (labels == k).astype(np.float64), num_bins)
        for k in range(probs.shape[1])
    ]
    return float(np.mean(errors))
