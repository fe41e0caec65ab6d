"""Uncertainty decomposition and diversity of ensembles.

``member_probs`` has shape ``(M, N, K)``: M members (axis 0), N examples, K classes, each row in
[0, 1] summing to 1 (within 1e-3). Entropies are in nats with ``0 log 0 = 0``.

The pairwise diversity metrics (``disagreement``, ``average_kl``, ``cosine_similarity``) are
those Uncertainty Baselines reports as ``test/diversity/*`` for its ensembles
(``baselines/cifar/ensemble.py``: ``rm.metrics.AveragePairwiseDiversity()`` fed the members'
softmax outputs), defined in robustness_metrics' ``robustness_metrics/metrics/diversity.py``:
a per-example divergence between members ``a`` and ``b`` for each unordered pair ``a < b``
(``itertools.combinations``, so ``M (M - 1) / 2`` pairs, not the ``M**2`` of its docstring),
averaged over the pairs and the examples. They need at least two members.
"""

from __future__ import annotations

import itertools

import numpy as np

from uqbench.metrics._arrays import ArrayLike, as_float, probability_rows
from uqbench.metrics.scoring import accuracy, nll


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


def _pairs(probs: np.ndarray, name: str) -> list[tuple[int, int]]:
    """The unordered member pairs ``(a, b)``, ``a < b``; a ``ValueError`` for fewer than 2."""
    if probs.shape[0] < 2:
        raise ValueError(
            f"{name} compares ensemble members pairwise and needs at least 2 members; "
            f"member_probs has shape {probs.shape} (members on axis 0)"
        )
    return list(itertools.combinations(range(probs.shape[0]), 2))


def disagreement(member_probs: ArrayLike) -> float:
    """Mean over member pairs of the fraction of examples whose top labels differ.

    ``(2 / (M (M - 1))) sum_{a < b} mean_i 1[argmax p_ai != argmax p_bi]`` (ties go to the
    lowest class index); robustness_metrics' ``disagreement`` averaged as in
    ``AveragePairwiseDiversity``. 0 for a single member (there, no pair: NaN)."""
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


def average_kl(member_probs: ArrayLike) -> float:
    """Mean over member pairs ``a < b`` and examples of ``KL(p_a || p_b)``, in nats.

    ``(2 / (M (M - 1))) sum_{a < b} mean_i sum_k p_aik log(p_aik / p_bik)``: the
    ``average_kl`` of robustness_metrics' ``AveragePairwiseDiversity`` (``kl_divergence(p, q)``
    with ``p`` the member of lower index and no clipping), so not symmetrised. Terms with
    ``p_aik = 0`` are 0 (the limit; TensorFlow's ``0 * log 0`` would give NaN there) and a class
    with ``p_bik = 0 < p_aik`` makes the result ``+inf``, as there."""
    probs = _member_probs(member_probs)
    total = 0.0
    pairs = _pairs(probs, "average_kl")
    for a, b in pairs:
        p, q = probs[a], probs[b]
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q)), 0.0)
        total += float(np.mean(terms.sum(axis=-1)))
    return total / len(pairs)


def cosine_similarity(member_probs: ArrayLike) -> float:
    """Mean over member pairs and examples of the cosine similarity of their predictions.

    The cosine is taken between two members' probability vectors of one example (over the class
    axis): ``(2 / (M (M - 1))) sum_{a < b} mean_i <p_ai, p_bi> / (||p_ai|| ||p_bi||)``: the
    ``cosine_similarity`` of robustness_metrics' ``AveragePairwiseDiversity`` (computed there by
    a function named ``cosine_distance`` that returns the similarity). 1 when the members
    agree; for probability vectors it lies in [0, 1]."""
    probs = _member_probs(member_probs)
    unit = probs / np.linalg.norm(probs, axis=-1, keepdims=True)
    pairs = _pairs(probs, "cosine_similarity")
    return float(np.mean([np.mean(np.sum(unit[a] * unit[b], axis=-1)) for a, b in pairs]))


def member_mean_accuracy(member_probs: ArrayLike, labels: ArrayLike) -> float:
    """Each member's own top-1 accuracy, averaged over members: ``mean_m accuracy(p_m, y)``.

    UB logs the members one by one (``test/accuracy_member_i``); the ensemble's accuracy minus
    this is what averaging the members gained."""
    probs = _member_probs(member_probs)
    return float(np.mean([accuracy(p, labels) for p in probs]))


def member_mean_nll(member_probs: ArrayLike, labels: ArrayLike) -> float:
    """Each member's own NLL in nats per example, averaged over members.

    ``mean_m nll(p_m, y)`` with :func:`nll`'s convention; the ensemble's NLL is never above it
    (Jensen), and the gap is what averaging the members gained."""
    probs = _member_probs(member_probs)
    return float(np.mean([nll(p, labels) for p in probs]))
