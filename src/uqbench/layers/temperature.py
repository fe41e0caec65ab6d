"""Temperature scaling (Guo et al. 2017): one scalar ``T > 0`` that divides the logits.

``T`` is fitted after training, on validation data only (DESIGN.md), to minimise the mean NLL of
``softmax(logits / T)``. Dividing every logit of an example by the same positive number never
changes its top class, so accuracy is unchanged while the confidence is recalibrated: ``T > 1``
softens an over-confident model, ``T < 1`` sharpens an under-confident one.

Ensembles and MC dropout have no single logit vector: fit and apply ``T`` to the log of the mean
prediction, ``log(mean_m p_m)`` (clipped below, e.g. at 1e-12, so that it stays finite). Then
``softmax(log(pbar) / T)`` is proportional to ``pbar ** (1 / T)``, a tempered mean prediction.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import numpy as np
import torch
from scipy.optimize import brentq
from scipy.special import logsumexp, softmax
from torch import nn

DEFAULT_BOUNDS = (1e-2, 1e2)


def _float64(name: str, value: Any) -> np.ndarray:
    """``value`` (a tensor of any floating dtype, an array or a sequence) as float64 NumPy."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().to(torch.float64).numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None


def _logits_and_labels(logits: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``logits`` ``(N, K)`` (finite, ``K >= 2``) and integer ``labels`` ``(N,)``."""
    logits = _float64("logits", logits)
    if logits.ndim != 2:
        raise ValueError(
            f"logits must be 2-D (N examples, K classes), got shape {logits.shape}; "
            "for an ensemble pass the log of the mean probabilities"
        )
    if logits.shape[0] == 0:
        raise ValueError(f"logits is empty (shape {logits.shape}): fit on validation examples")
    if logits.shape[1] < 2:
        raise ValueError(f"logits must have at least 2 classes, got shape {logits.shape}")
    if not np.isfinite(logits).all():
        raise ValueError(
            f"logits must be finite, got {int((~np.isfinite(logits)).sum())} NaN or infinite "
            "values; clip log-probabilities below (e.g. log(max(p, 1e-12)))"
        )
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(
            f"labels must be 1-D with one label per row of logits: logits has shape "
            f"{logits.shape}, labels has shape {labels.shape}"
        )
    if labels.dtype.kind not in "iuf" or (
        labels.dtype.kind == "f" and not np.all(labels == np.round(labels))
    ):
        raise ValueError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    num_classes = logits.shape[1]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must be in [0, {num_classes}) for {num_classes} classes, "
            f"got values from {labels.min()} to {labels.max()}"
        )
    return logits, labels.astype(np.int64)


def _temperature(value: Any) -> float:
    """``value`` as a float if it is a finite number > 0, else a ``ValueError``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"the temperature must be a number > 0, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"the temperature must be finite and > 0, got {value!r}")
    return float(value)


def _bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high) of numbers, got {bounds!r}") from None
    if not (0 < low < high < math.inf):
        raise ValueError(f"bounds must satisfy 0 < low < high < inf, got {bounds!r}")
    return low, high


def temperature_nll(logits: Any, labels: Any, temperature: float) -> float:
    """Mean NLL in nats of ``softmax(logits / T)`` for integer ``labels``, computed in float64.

    ``(1/N) sum_i [logsumexp_k(z_ik / T) - z_{i,y_i} / T]``: the objective ``fit_temperature``
    minimises (no probability floor, unlike ``uqbench.metrics.nll``)."""
    logits, labels = _logits_and_labels(logits, labels)
    scaled = logits / _temperature(temperature)
    return float(np.mean(logsumexp(scaled, axis=1) - scaled[np.arange(len(labels)), labels]))


def fit_temperature(
    logits: Any, labels: Any, *, bounds: tuple[float, float] = DEFAULT_BOUNDS
) -> float:
    """The temperature ``T`` in ``bounds`` that minimises the mean NLL of ``softmax(logits / T)``.

    ``logits`` ``(N, K)`` and ``labels`` ``(N,)`` are validation data (torch tensors of any
    floating dtype or NumPy arrays; computed in float64 on the CPU). For an ensemble or MC
    dropout pass ``log(mean_m p_m)`` (clipped below so it is finite) as ``logits``.

    With ``b = 1 / T`` the NLL ``(1/N) sum_i [logsumexp_k(b z_ik) - b z_{i,y_i}]`` is convex in
    ``b``, so its minimum is the root of the derivative ``(1/N) sum_i (E_{softmax(b z_i)}[z_i] -
    z_{i,y_i})``, which is non-decreasing in ``b``; it is found by Brent's method on ``log b``.
    When the derivative has no root in ``bounds`` the NLL is monotone there and the bound it
    decreases towards is returned with a warning: ``low`` when it keeps decreasing as ``T -> 0``
    (every example classified correctly with a margin), ``high`` when the logits fit the labels
    no better than uniform predictions. Raises ``ValueError`` for bad shapes, labels or non-finite logits, and
    when every row of ``logits`` is constant (the NLL then does not depend on ``T``)."""
    logits, labels = _logits_and_labels(logits, labels)
    low, high = _bounds(bounds)
    if np.all(logits.max(axis=1) == logits.min(axis=1)):
        raise ValueError(
            "every row of logits is constant: the NLL does not depend on the temperature"
        )
    # logits relative to the true class: d_iy = 0, and the derivative is mean_i E_p[d_i]
    relative = logits - logits[np.arange(len(labels)), labels][:, None]

    def derivative(log_b: float) -> float:
        return float(np.mean(np.sum(softmax(np.exp(log_b) * relative, axis=1) * relative, axis=1)))

    log_b_low, log_b_high = -math.log(high), -math.log(low)
    if derivative(log_b_low) >= 0:
        warnings.warn(
            f"the NLL keeps decreasing as T grows: the logits fit these labels no better than "
            f"uniform predictions; T is set to the upper bound {high}",
            stacklevel=2,
        )
        return high
    if derivative(log_b_high) <= 0:
        warnings.warn(
            f"the NLL keeps decreasing as T shrinks (e.g. every example is classified correctly "
            f"with a margin); T is set to the lower bound {low}",
            stacklevel=2,
        )
        return low
    return math.exp(-brentq(derivative, log_b_low, log_b_high, xtol=1e-12))


def apply_temperature(logits: Any, temperature: float) -> Any:
    """``logits / T``: a torch tensor keeps its dtype and device, anything else is NumPy.

    ``temperature`` is a finite number > 0 (or a one-element tensor); non-float input (integers,
    nested lists) is divided in float64. Any shape: every entry is divided by ``T``."""
    t = _temperature(temperature)
    if isinstance(logits, torch.Tensor):
        return logits / t
    logits = np.asarray(logits)
    if logits.dtype.kind != "f":
        logits = _float64("logits", logits)
    return logits / t


class TemperatureScaling(nn.Module):
    """Divides logits by a fitted temperature ``T`` (a float32 buffer, saved in the state_dict).

    Append it to a trained classifier, ``nn.Sequential(model, TemperatureScaling().fit(val_logits,
    val_labels))``, or call it on logits; ``forward`` returns ``logits / T`` in the logits' dtype.
    ``fit`` sets ``T`` in place with :func:`fit_temperature` (validation data only).
    """

    temperature: torch.Tensor

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.register_buffer(
            "temperature", torch.tensor(_temperature(temperature), dtype=torch.float32)
        )

    def fit(
        self, logits: Any, labels: Any, *, bounds: tuple[float, float] = DEFAULT_BOUNDS
    ) -> TemperatureScaling:
        """Set ``T`` to ``fit_temperature(logits, labels, bounds=bounds)``; returns ``self``."""
        self.temperature.fill_(fit_temperature(logits, labels, bounds=bounds))
        return self

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits / T`` (classes on the last axis; any leading shape)."""
        return logits / self.temperature

    def extra_repr(self) -> str:
        return f"temperature={self.temperature.item():.4g}"
