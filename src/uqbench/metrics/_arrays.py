"""Input handling shared by the metrics: NumPy or torch in, float64 NumPy out, clear errors."""

from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any  # numpy arrays, torch tensors, sequences of numbers


def as_float(name: str, value: ArrayLike, ndim: int | None = None) -> np.ndarray:
    """``value`` as a float64 array; ``ValueError`` naming ``name`` if empty, NaN or wrong ndim."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value, dtype=np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if np.isnan(array).any():
        raise ValueError(f"{name} contains NaN")
    return array


def as_labels(name: str, value: ArrayLike, num_classes: int) -> np.ndarray:
    """Integer class labels in ``[0, num_classes)``, 1-D."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per example), got shape {array.shape}")
    if array.size and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError(f"{name} must hold integer class indices")
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
    if (array <= 0).any():
        raise ValueError(f"{name} must be positive, got a minimum of {array.min()}")
    return array


def probabilities_and_labels(probs: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``probs`` ``(N, K)`` (rows in [0, 1] summing to 1 within 1e-3) and ``labels`` ``(N,)``."""
    probs = as_float("probs", probs, ndim=2)
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(
            f"probs must lie in [0, 1], got values from {probs.min()} to {probs.max()}"
        )
    off = np.abs(probs.sum(axis=1) - 1.0).max()
    if off > 1e-3:
        raise ValueError(f"each row of probs must sum to 1; the worst row is off by {off:.3g}")
    labels = as_labels("labels", labels, probs.shape[1])
    if labels.shape[0] != probs.shape[0]:
        raise ValueError(
            f"probs has shape {probs.shape} but labels has shape {labels.shape}: "
            "they must have the same number of examples"
        )
    return probs, labels


def unit_interval(name: str, value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value}")
    return float(value)
