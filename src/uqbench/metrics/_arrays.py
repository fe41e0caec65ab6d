"""Input handling shared by the metrics: NumPy or torch in, float64 NumPy out, clear errors."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

ArrayLike = Any  # numpy arrays, torch tensors, sequences of numbers


def to_numpy(name: str, value: ArrayLike) -> np.ndarray:
    """``value`` as a NumPy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        if str(value.dtype) == "torch.bfloat16":
            raise ValueError(
                f"{name} is a torch.bfloat16 tensor: metrics are computed in float32 or float64, "
                "never from bf16 (DESIGN.md); compute it from float32 logits"
            )
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def as_float(
    name: str, value: ArrayLike, ndim: int | None = None, finite: bool = False
) -> np.ndarray:
    """``value`` as a float64 array; ``ValueError`` naming ``name`` if it has the wrong number of
    dimensions, is empty, holds NaN, or (with ``finite``) holds an infinity."""
    array = to_numpy(name, value)
    try:
        array = array.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(array).sum())} of {array.size})")
    if finite and np.isinf(array).any():
        raise ValueError(f"{name} contains an infinity ({int(np.isinf(array).sum())} values)")
    return array


def as_labels(name: str, value: ArrayLike, num_classes: int) -> np.ndarray:
    """Integer class labels in ``[0, num_classes)``, 1-D, as int64."""
    array = to_numpy(name, value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per example), got shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            raise ValueError(f"{name} contains NaN")
        if not np.all(array == np.round(array)):
            raise ValueError(f"{name} must hold integer class indices, got fractional values")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"{name} must be in [0, {num_classes}) for {num_classes} classes, "
            f"got values from {array.min()} to {array.max()}"
        )
    return array


def same_shape(**arrays: np.ndarray) -> None:
    """All arrays have one shape, else a ``ValueError`` listing every shape."""
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{name} has shape {shape}" for name, shape in shapes.items())
        raise ValueError(f"shape mismatch: {listed}; they must be equal")


def positive(name: str, array: np.ndarray) -> np.ndarray:
    """``array`` unchanged if every entry is > 0, else a ``ValueError``."""
    if (array <= 0).any():
        raise ValueError(
            f"{name} must be positive, got a minimum of {array.min()} "
            f"({int((array <= 0).sum())} of {array.size} values <= 0)"
        )
    return array


def probability_rows(name: str, probs: np.ndarray, axis: int = -1) -> np.ndarray:
    """``probs`` unchanged if it lies in [0, 1] and sums to 1 (within 1e-3) along ``axis``."""
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(
            f"{name} must lie in [0, 1], got values from {probs.min()} to {probs.max()}"
        )
    off = np.abs(probs.sum(axis=axis) - 1.0).max()
    if off > 1e-3:
        raise ValueError(
            f"{name} must sum to 1 over classes (within 1e-3); the worst row is off by {off:.3g}"
        )
    return probs


def probabilities_and_labels(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``probs`` ``(N, K)`` (rows in [0, 1] summing to 1 within 1e-3) and ``labels`` ``(N,)``."""
    probs = probability_rows("probs", as_float("probs", probs, ndim=2), axis=1)
    labels = as_labels("labels", labels, probs.shape[1])
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"probs has shape {probs.shape} but labels has shape {labels.shape}: "
            "they must have the same number of examples"
        )
    return probs, labels


def unit_interval(name: str, value: float) -> float:
    """``value`` as a float if it lies strictly between 0 and 1, else a ``ValueError``."""
    if not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def count(name: str, value: int) -> int:
    """``value`` as an int if it is an integer >= 1 (``num_bins``, ``num_levels``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
