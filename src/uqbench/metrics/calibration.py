"""Calibration errors of classifiers: ECE and MCE (top label), adaptive ECE, classwise ECE.

Equal-width binning, used by ``ece``, ``mce`` and ``classwise_ece``: with ``B`` bins, bin ``b`` is the
right-closed interval ``(b/B, (b+1)/B]`` for ``b = 0..B-1`` (edges computed as ``b / B`` in float64,
so a confidence written as exactly ``b / B`` lands in the bin it closes), and a confidence of
exactly 0 falls in the first bin. Empty bins contribute 0.

Equal-mass binning, used by ``adaptive_ece``, keeps tied confidences in one bin, so it depends only
on the values, never on the order of the examples (see ``adaptive_ece``).
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
    return _weighted_gap(_equal_width_bins(confidence, num_bins), confidence, outcome, num_bins)


def _equal_width_bins(confidence: np.ndarray, num_bins: int) -> np.ndarray:
    """Bin index of each confidence: ``(b/B, (b+1)/B]`` is bin ``b``, and 0 is in bin 0."""
    edges = np.arange(num_bins + 1) / num_bins
    return np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)


def ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Expected calibration error of the top label, equal-width bins (15 by default).

    Guo et al. 2017: with confidence ``c_i = max_k p_ik`` and correctness
    ``a_i = 1[argmax_k p_ik = y_i]``, ``ECE = sum_b (n_b / N) |mean_{i in b} a_i - mean_{i in b}
    c_i|`` over bins ``(b/B, (b+1)/B]`` (confidence 0 in the first bin; empty bins add 0)."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    return binned_calibration_error(probs.max(axis=1), correct, num_bins)


def mce(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Maximum calibration error of the top label, equal-width bins (15 by default).

    Naeini et al. 2015 (and Guo et al. 2017): ``MCE = max_b |mean_{i in b} a_i - mean_{i in b}
    c_i|`` over the NON-EMPTY bins ``(b/B, (b+1)/B]`` (confidence 0 in the first bin), with
    confidence ``c_i = max_k p_ik`` and correctness ``a_i = 1[argmax_k p_ik = y_i]``: the same
    bins and gaps as ``ece``, the largest gap instead of their weighted mean, whatever the bin's
    size (a bin of one example counts as much as a bin of thousands)."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = _equal_width_bins(confidence, num_bins)
    sizes = np.bincount(bins, minlength=num_bins)
    gaps = np.bincount(bins, weights=correct - confidence, minlength=num_bins)
    filled = sizes > 0
    return float(np.max(np.abs(gaps[filled]) / sizes[filled]))


def adaptive_ece(probs: ArrayLike, labels: ArrayLike, num_bins: int = 15) -> float:
    """Top-label calibration error with equal-mass bins (adaptive ECE), ties kept together.

    Nguyen & O'Connor 2015, ``sum_b (n_b / N) |acc_b - conf_b|`` over non-empty bins, with
    equal-mass bins defined from the values alone: sort the N top-label confidences increasingly,
    ``c_(1) <= ... <= c_(N)``, and cut the sorted positions into ``G = min(num_bins, N)`` runs of
    nearly equal size as ``np.array_split`` does (the first ``N mod G`` runs have one more); the
    run starting at sorted position ``s_j`` (``j = 1..G-1``) gives the edge ``e_j = c_(s_j)``.
    An example with confidence ``c`` goes to bin ``#{j : c >= e_j}``. Without ties these are
    exactly the runs; a group of tied confidences that a cut would split goes whole to the
    upper bin (bins whose edges coincide stay empty). The bins, hence the result, depend only on
    the multiset of (confidence, correct) pairs, never on the order of the examples: a constant
    predictor whose accuracy equals its confidence scores 0 for every order of its labels."""
    num_bins = count("num_bins", num_bins)
    probs, labels = probabilities_and_labels(probs, labels)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    return equal_mass_calibration_error(probs.max(axis=1), correct, num_bins)


def equal_mass_calibration_error(
    confidence: np.ndarray, outcome: np.ndarray, num_bins: int = 15
) -> float:
    """Equal-mass binned calibration error of ``confidence`` against 0/1 ``outcome``, ties kept
    in one bin: the bins of ``adaptive_ece``, ``sum_b (n_b / N) |mean(outcome in b) -
    mean(confidence in b)|`` over non-empty bins."""
    num_bins = count("num_bins", num_bins)
    ordered = np.sort(confidence)
    groups = min(num_bins, len(ordered))
    sizes = [len(run) for run in np.array_split(ordered, groups)]
    starts = np.cumsum(sizes)[:-1]  # sorted positions s_1..s_{G-1} where runs 2..G start
    bins = np.searchsorted(ordered[starts], confidence, side="right")
    return _weighted_gap(bins, confidence, outcome, groups)


def classwise_ece(
    probs: ArrayLike, labels: ArrayLike, num_bins: int = 15, binning: str = "width"
) -> float:
    """Classwise expected calibration error, mean over classes (Kull et al. 2019).

    ``(1/K) sum_k sum_b (n_bk / N) |mean_{i in b} 1[y_i = k] - mean_{i in b} p_ik|``: for each
    class k, the binned calibration error of that class's probability against the indicator of
    that class, over all N examples; ``binning="width"`` (default) uses the bins ``(b/B,
    (b+1)/B]``, ``"mass"`` the tie-safe equal-mass bins of ``adaptive_ece`` on ``p_k``."""
    num_bins = count("num_bins", num_bins)
    if binning not in ("width", "mass"):
        raise ValueError(f"binning must be 'width' or 'mass', got {binning!r}")
    probs, labels = probabilities_and_labels(probs, labels)
    error = binned_calibration_error if binning == "width" else equal_mass_calibration_error
    errors = [
        error(probs[:, k], (labels == k).astype(np.float64), num_bins)
        for k in range(probs.shape[1])
    ]
    return float(np.mean(errors))
