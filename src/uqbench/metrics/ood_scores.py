"""Per-example OOD scores from a classifier's outputs, for ``ood_auroc`` and its siblings.

Convention (DESIGN.md): a score is HIGHER for "more in-distribution", so scores of the
in-distribution and the OOD test sets go straight into ``ood_auroc(scores_in, scores_out)``.
Uncertainties (entropy, mutual information, Dempster-Shafer uncertainty) are therefore returned
negated. ``probs`` is ``(N, K)`` with rows in [0, 1] summing to 1 (within 1e-3), ``logits`` is
``(N, K)`` and finite, ``member_probs`` is ``(M, N, K)`` with members on axis 0. Every score is a
float64 array of shape ``(N,)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from scipy.special import expit, logsumexp

from uqbench.metrics._arrays import ArrayLike, as_float, probability_rows
from uqbench.metrics.diversity import _entropy, mutual_information


def _probs(probs: ArrayLike) -> np.ndarray:
    return probability_rows("probs", as_float("probs", probs, ndim=2), axis=1)


def _logits(logits: ArrayLike) -> np.ndarray:
    return as_float("logits", logits, ndim=2, finite=True)


def _member_probs(member_probs: ArrayLike) -> np.ndarray:
    return probability_rows("member_probs", as_float("member_probs", member_probs, ndim=3), axis=2)


def max_probability(probs: ArrayLike) -> np.ndarray:
    """OOD score: the largest class probability (maximum softmax probability), per example.

    ``s_i = max_k p_ik`` (Hendrycks & Gimpel 2017); in [1/K, 1], higher = more in-distribution."""
    return _probs(probs).max(axis=1)


def negative_entropy(probs: ArrayLike) -> np.ndarray:
    """OOD score: minus the entropy of the predicted distribution, per example.

    ``s_i = -H[p_i] = sum_k p_ik log p_ik`` in nats with ``0 log 0 = 0``; in [-log K, 0], higher =
    more in-distribution. For an ensemble pass the mean prediction (minus the predictive
    entropy)."""
    return -_entropy(_probs(probs))


def dempster_shafer(logits: ArrayLike) -> np.ndarray:
    """OOD score: minus the Dempster-Shafer uncertainty of the logits, per example.

    ``s_i = -u_i`` with ``u_i = K / (K + sum_k exp(z_ik))`` (Sensoy et al. 2018, eq. 1: the
    evidence of class k is ``exp(z_ik)``), exactly the ``DempsterShaferUncertainty`` of
    Uncertainty Baselines (``baselines/cifar/ood_utils.py``), negated so higher = more
    in-distribution; in (-1, 0). Computed stably as ``u_i = sigmoid(log K - logsumexp_k z_ik)``,
    so no logit overflows and scores stay distinct while ``logsumexp_k z_ik - log K`` lies in
    about [-36, 708] (below, ``u`` rounds to 1; above, to 0). Needs the raw logits: on
    log-probabilities ``sum_k exp`` is 1 and the score is the constant ``-K / (K + 1)``."""
    logits = _logits(logits)
    log_evidence = logsumexp(logits, axis=1)
    return -expit(np.log(logits.shape[1]) - log_evidence)


def negative_mutual_information(member_probs: ArrayLike) -> np.ndarray:
    """OOD score: minus the mutual information between prediction and member, per example.

    ``s_i = -(H[mean_m p_mi] - mean_m H[p_mi])`` in nats (the epistemic part of the entropy,
    BALD; see ``mutual_information``), members on axis 0; in [-log K, 0], higher = more
    in-distribution."""
    return -mutual_information(member_probs)


Needs = Literal["probs", "logits", "member_probs"]


class OODScore(NamedTuple):
    """An entry of ``OOD_SCORES``: the score function and which output it is computed from."""

    function: Callable[[ArrayLike], np.ndarray]
    needs: Needs


OOD_SCORES: dict[str, OODScore] = {
    "max_prob": OODScore(max_probability, "probs"),
    "entropy": OODScore(negative_entropy, "probs"),
    "dempster_shafer": OODScore(dempster_shafer, "logits"),
    "mutual_information": OODScore(negative_mutual_information, "member_probs"),
}


def ood_scores(
    probs: ArrayLike,
    logits: ArrayLike | None = None,
    member_probs: ArrayLike | None = None,
) -> dict[str, np.ndarray]:
    """Every score of ``OOD_SCORES`` that the given outputs allow, by short name.

    ``probs`` ``(N, K)`` is the prediction (for an ensemble or MC dropout, the mean over
    members); ``logits`` ``(N, K)`` adds ``dempster_shafer`` (pass raw logits only: an ensemble
    has none); ``member_probs`` ``(M, N, K)`` adds ``mutual_information``. Shapes are checked
    against ``probs``. Returns float64 arrays of shape ``(N,)`` in the order of ``OOD_SCORES``."""
    inputs: dict[str, np.ndarray] = {"probs": _probs(probs)}
    shape = inputs["probs"].shape
    if logits is not None:
        inputs["logits"] = _logits(logits)
        if inputs["logits"].shape != shape:
            raise ValueError(
                f"logits has shape {inputs['logits'].shape} but probs has shape {shape}: "
                "they must be the same (N examples, K classes)"
            )
    if member_probs is not None:
        inputs["member_probs"] = _member_probs(member_probs)
        if inputs["member_probs"].shape[1:] != shape:
            raise ValueError(
                f"member_probs has shape {inputs['member_probs'].shape} but probs has shape "
                f"{shape}: member_probs must be (M, N, K) with probs (N, K)"
            )
    return {
        name: score.function(inputs[score.needs])
        for name, score in OOD_SCORES.items()
        if score.needs in inputs
    }
