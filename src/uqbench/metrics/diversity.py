"""Uncertainty decomposition and diversity of ensembles.

``member_probs`` has shape ``(M, N, K)``: M members (axis 0), N examples, K classes, each row in
[0, 1] summing to 1 (within 1e-3). Entropies are in nats with ``0 log 0 = 0``.
"""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float, probability_rows


def _member_probs(member_probs: ArrayLike) -> np.ndarray:
    probs = as_float("member_probs", member_probs, ndim=3)
    return probability_rows("member_probs", probs, axis=2)


def _entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis, with 0 log 0 = 0."""
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -np.sum(probs * logs, axis=-1)


def predictive_entropy(member_probs: ArrayLike) -> np.ndarray:
    """Entropy of the ensemble's mean prediction, per example (total uncertainty).

    ``H[pbar_i] = -sum_k pbar_ik log pbar_ik`` with ``pbar_i = mean_m p_mi``; nats, ``0 log 0 =
    0``; a float64 array of shape ``(N,)``."""
    return _entropy(_member_probs(member_probs).mean(axis=0))


def expected_entropy(member_probs: ArrayLike) -> np.ndarray:
    """Mean of the members' entropies, per example (the aleatoric part).

    ``mean_m H[p_mi]``; nats, ``0 log 0 = 0``; a float64 array of shape ``(N,)``."""
    return _entropy(_member_probs(member_probs)).mean(axis=0)


def mutual_information(member_probs: ArrayLike) -> np.ndarray:
    """Mutual information between prediction and member, per example (the epistemic part).

    ``H[mean_m p_mi] - mean_m H[p_mi]`` (predictive minus expected entropy, also called BALD),
    clipped below at 0 against rounding; nats; a float64 array of shape ``(N,)``."""
    probs = _member_probs(member_probs)
    return np.maximum(_entropy(probs.mean(axis=0)) - _entropy(probs).mean(axis=0), 0.0)


def disagreement(member_probs: ArrayLike) -> float:
    """Mean over member pairs of the fraction of examples whose top labels differ.

    ``(2 / (M (M - 1))) sum_{a < b} mean_i 1[argmax p_ai != argmax p_bi]`` (ties go to the
    lowest class index); 0 for a single member."""
    top = _member_probs(member_probs).argmax(axis=2)
    members, n = top.shape
    if members < 2:
        return 0.0
    # per example, count the pairs that agree: sum over classes of C(members voting it, 2)
    votes = np.zeros((n, int(top.max()) + 1))
    np.add.at(votes, (np.broadcast_to(np.arange(n), top.shape), top), 1)
    agreeing_pairs = (votes * (votes - 1) / 2).sum(axis=1)
    total_pairs = members * (members - 1) / 2
    return float(np.mean(1 - agreeing_pairs / total_pairs))
