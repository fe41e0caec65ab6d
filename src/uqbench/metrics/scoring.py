"""Classification scores: accuracy and the two proper scoring rules (log and Brier).

``probs`` is ``(N, K)`` with rows in [0, 1] summing to 1 (within 1e-3); ``labels`` is ``(N,)``
integer classes in ``[0, K)``.

NLL convention (DESIGN.md): where logits exist, compute it with :func:`nll_from_logits` (exact
log-softmax, no floor at all); from saved probabilities, :func:`nll` floors only an exact zero,
at the smallest positive float32 (``2**-149``, about 1.4e-45, so at most 103.28 nats per example).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp

from uqbench.metrics._arrays import ArrayLike, as_float, as_labels, probabilities_and_labels

# The smallest positive float32 (a subnormal): no float32 probability that is not exactly zero
# lies below it, so flooring at it changes nothing but an exact zero.
PROBABILITY_FLOOR = float(np.finfo(np.float32).smallest_subnormal)


def accuracy(probs: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy of the predicted class.

    ``mean_i 1[argmax_k p_ik = y_i]``; a tie for the largest probability goes to the lowest class
    index (``np.argmax``)."""
    probs, labels = probabilities_and_labels(probs, labels)
    return float(np.mean(probs.argmax(axis=1) == labels))


def nll(probs: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood of the true class from probabilities, mean per example, in nats.

    ``-mean_i log p_{i, y_i}``, where only an exact zero ``p_{i, y_i} = 0`` is replaced by the
    smallest positive float32 (``2**-149``; ``-log`` of it is 103.28 nats), so a confident mistake
    costs what the saved probability says, not a capped amount. Probabilities in float32 cannot
    resolve a true-class probability below ``2**-149``: where logits exist use
    :func:`nll_from_logits`, which is exact. Never compute ``probs`` in bf16."""
    probs, labels = probabilities_and_labels(probs, labels)
    picked = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.where(picked > 0, picked, PROBABILITY_FLOOR))))


def nll_from_logits(logits: ArrayLike, labels: ArrayLike) -> float:
    """Negative log-likelihood of the true class from logits, mean per example, in nats; exact.

    ``(N, K)`` logits: ``-mean_i log_softmax(z_i)_{y_i}``. ``(M, N, K)`` logits of M members
    (an ensemble, Monte-Carlo samples) whose prediction is the uniform mixture of their softmax
    outputs: ``-mean_i [logsumexp_m log_softmax(z_mi)_{y_i} - log M]``. Normalised
    log-probabilities are valid logits (log-softmax leaves them unchanged). Computed in float64
    by log-sum-exp, so no probability is floored; a non-finite logit is an error."""
    values = as_float("logits", logits, finite=True)
    if values.ndim not in (2, 3):
        raise ValueError(
            f"logits must be (N, K) or (M, N, K) for M members, got shape {values.shape}"
        )
    labels = as_labels("labels", labels, values.shape[-1])
    if labels.shape[0] != values.shape[-2]:
        raise ValueError(
            f"logits has shape {values.shape} but labels has shape {labels.shape}: they must "
            "have the same number of examples"
        )
    log_probs = log_softmax(values, axis=-1)[..., np.arange(len(labels)), labels]
    if values.ndim == 3:
        log_probs = logsumexp(log_probs, axis=0) - np.log(values.shape[0])
    return float(-np.mean(log_probs))


def brier(probs: ArrayLike, labels: ArrayLike) -> float:
    """Brier score: squared error against the one-hot label, summed over classes.

    ``mean_i sum_k (p_ik - 1[y_i = k])^2``, in [0, 2] (the multi-class form, not halved and not
    averaged over classes)."""
    probs, labels = probabilities_and_labels(probs, labels)
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    return float(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
