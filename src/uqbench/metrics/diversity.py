"""Uncertainty decomposition and diversity of ensembles; member probabilities are ``(M, N, K)``."""

from __future__ import annotations

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float


def _member_probs(member_probs: ArrayLike) -> np.ndarray:
    probs = as_float("member_probs", member_probs, ndim=3)
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError("member_probs must lie in [0, 1]")
    off = np.abs(probs.sum(axis=2) - 1).max()
    if off > 1e-3:
        raise ValueError(
            f"member_probs must sum to 1 over classes (axis 2); worst is off by {off:.3g}"
        )
    return probs


def _entropy(probs: np.ndarray) -> np.ndarray:
    """Entropy in nats over the last axis, with 0 log 0 = 0."""
    logs = np.log(np.where(probs > 0, probs, 1.0))
    return -np.sum(probs * logs, axis=-1)


def predictive_entropy(member_probs: ArrayLike) -> np.ndarray:
    """Per example, the entropy of the mean prediction: ``H[mean_m p_m]`` (nats, shape (N,))."""
    return _entropy(_member_probs(member_probs).mean(axis=0))


def expected_entropy(member_probs: ArrayLike) -> np.ndarray:
    """Per example, the mean of the members' entropies ``mean_m H[p_m]`` (aleatoric part)."""
    return _entropy(_member_probs(member_probs)).mean(axis=0)


def mutual_information(member_probs: ArrayLike) -> np.ndarray:
    """Per example, ``H[mean_m p_m] - mean_m H[p_m]`` (epistemic part, >= 0; clipped at 0)."""
    probs = _member_probs(member_probs)
    return np.maximum(_entropy(probs.mean(axis=0)) - _entropy(probs).mean(axis=0), 0.0)


def disagreement(member_probs: ArrayLike) -> float:
    """Mean over member pairs of the fraction of examples whose top labels differ (0 for one member)."""
    top = _member_probs(member_probs).argmax(axis=2)
    members = top.shape[0]
    if members < 2:
        return 0.0
    pairs = [np.mean(top[a] != top[b]) for a in range(members) for b in range(a + 1, members)]
    return float(np.mean(pairs))
