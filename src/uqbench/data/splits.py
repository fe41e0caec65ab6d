"""The regression split record, standardisation with training statistics, and seeded splits."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RegressionSplit:
    """One train/(validation)/test split, standardised with the statistics of the rows trained on.

    ``x_*`` are ``(N, D)`` and ``y_*`` ``(N,)`` float32; ``*_index`` are rows of the source data.
    ``to_original`` maps standardised predictive means and variances back to target units.
    """

    name: str
    split: int
    num_splits: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: float
    y_std: float
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    data_hash: str
    n_hidden: int = 50
    n_epochs: int = 40
    dropout_rates: tuple[float, ...] | None = None
    tau_values: tuple[float, ...] | None = None

    def to_original(self, mean: Any, var: Any = None) -> Any:
        """``(mean * y_std + y_mean, var * y_std^2)``; NumPy or torch, any shape."""
        mean = mean * self.y_std + self.y_mean
        return mean if var is None else (mean, var * self.y_std**2)


def carve_validation(
    train_index: np.ndarray, fraction: float, seed: int, split: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training rows into (train, validation) by a permutation seeded with (seed, split)."""
    if not 0 <= fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    count = round(fraction * len(train_index))
    if fraction > 0 and not 0 < count < len(train_index):
        raise ValueError(
            f"validation_fraction={fraction} leaves no rows for training or validation"
        )
    order = np.random.default_rng([seed, split]).permutation(len(train_index))
    return np.sort(train_index[order[count:]]), np.sort(train_index[order[:count]])


def standardised_split(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    train_index: np.ndarray,
    test_index: np.ndarray,
    *,
    split: int,
    num_splits: int,
    validation_fraction: float,
    seed: int,
    data_hash: str,
    **meta: Any,
) -> RegressionSplit:
    """Standardise x and y with the mean and std of the rows actually trained on (std 0 -> 1)."""
    train_index, val_index = carve_validation(
        np.asarray(train_index), validation_fraction, seed, split
    )
    x_mean, x_std = x[train_index].mean(axis=0), x[train_index].std(axis=0)
    x_std = np.where(x_std > 0, x_std, 1.0)
    y_mean, y_std = float(y[train_index].mean()), float(y[train_index].std())
    y_std = y_std if y_std > 0 else 1.0

    def part(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((x[index] - x_mean) / x_std).astype(np.float32), (
            (y[index] - y_mean) / y_std
        ).astype(np.float32)

    (xt, yt), (xv, yv), (xs, ys) = part(train_index), part(val_index), part(np.asarray(test_index))
    return RegressionSplit(
        name=name,
        split=split,
        num_splits=num_splits,
        x_train=xt,
        y_train=yt,
        x_val=xv,
        y_val=yv,
        x_test=xs,
        y_test=ys,
        x_mean=x_mean,
        x_std=x_std,
        y_mean=y_mean,
        y_std=y_std,
        train_index=train_index.astype(np.int64),
        val_index=val_index.astype(np.int64),
        test_index=np.asarray(test_index, dtype=np.int64),
        data_hash=data_hash,
        **meta,
    )


def random_splits(
    num_rows: int, num_splits: int, test_fraction: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``num_splits`` seeded random (train, test) row partitions, like the UCI standard splits."""
    out = []
    for i in range(num_splits):
        order = np.random.default_rng([seed, i]).permutation(num_rows)
        cut = round(test_fraction * num_rows)
        out.append((np.sort(order[cut:]), np.sort(order[:cut])))
    return out


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' bytes (for built-in data, which has no files)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()
