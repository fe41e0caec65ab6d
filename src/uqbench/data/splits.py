"""The regression split record, standardisation with training statistics, and seeded splits.

Conventions (shared by every loader):

- **Standardisation** uses the mean and (population, ``ddof=0``) standard deviation of the rows
  actually trained on: the training part *minus* the validation carve-out. A column that is
  constant on those rows gets mean = its value and std = 1, so it becomes exactly 0 (never a
  division by zero, never a division by a rounding residue).
- **Validation carve-out**: ``round(validation_fraction * n_train)`` rows of the training part,
  chosen by a permutation from ``numpy.random.default_rng([seed, split])``: deterministic in
  ``(seed, split)``, different across splits, independent of anything else. The test part never
  depends on ``seed``.
- Index arrays are sorted row numbers of the source data (int64), so ``x[train_index]`` is the
  source order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from uqbench.data.paths import DataError

PARTS = ("train", "val", "test")


def _tensors(record: Any, part: str, device: Any = None) -> tuple[Any, Any]:
    if part not in PARTS:
        raise DataError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    import torch

    x, y = getattr(record, f"x_{part}"), getattr(record, f"y_{part}")
    return torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)


def _summary(record: Any, extra: str) -> str:
    shapes = ", ".join(
        f"{p}={getattr(record, f'x_{p}').shape[0]}" for p in PARTS if hasattr(record, f"x_{p}")
    )
    return (
        f"{type(record).__name__}(name={record.name!r}, split={record.split}/{record.num_splits}, "
        f"{shapes}, features={record.x_train.shape[1]}{extra}, data_hash={record.data_hash[:12]}…)"
    )


@dataclass(frozen=True, eq=False, repr=False)
class RegressionSplit:
    """One train/validation/test split of a regression set, standardised with the statistics of
    the rows trained on (see the module docstring).

    ``x_*`` are ``(N, D)`` and ``y_*`` ``(N,)`` float32 NumPy arrays (``x_val``/``y_val`` have
    ``N = 0`` when no validation set was asked for); ``*_index`` are int64 rows of the source
    data. ``x_mean``/``x_std`` (``(D,)`` float64) and ``y_mean``/``y_std`` (floats) undo the
    standardisation: ``x = x_std * x_train + x_mean``. ``data_hash`` is the SHA-256 of the data
    read (see the loader). ``n_hidden``, ``n_epochs``, ``dropout_rates`` and ``tau_values`` are the
    benchmark's published settings (``tau`` = precision of the observation noise in *original*
    target units); ``num_splits`` is how many standard splits the set has.
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
        """Standardised predictive mean (and variance) -> target units:
        ``mean * y_std + y_mean`` (and ``var * y_std**2``). NumPy arrays, torch tensors or
        floats of any shape; returns the mean alone when ``var`` is None, else ``(mean, var)``."""
        mean = mean * self.y_std + self.y_mean
        return mean if var is None else (mean, var * self.y_std**2)

    def tensors(self, part: str = "train", device: Any = None) -> tuple[Any, Any]:
        """``(x, y)`` of ``part`` (train, val or test) as float32 torch tensors."""
        return _tensors(self, part, device)

    def __repr__(self) -> str:
        return _summary(self, "")


def check_fraction(validation_fraction: Any) -> float:
    """``validation_fraction`` as a float in [0, 1), else a DataError."""
    number = isinstance(validation_fraction, int | float | np.integer | np.floating)
    value = float(validation_fraction) if number else float("nan")
    if isinstance(validation_fraction, bool) or not 0.0 <= value < 1.0:
        raise DataError(
            f"validation_fraction must be a number in [0, 1) (e.g. 0.2 holds out 20% of the "
            f"training part), got {validation_fraction!r}"
        )
    return value


def validation_size(num_train: int, fraction: float) -> int:
    """``round(fraction * num_train)``; a DataError when that leaves either side empty."""
    count = round(fraction * num_train)
    if fraction > 0 and not 0 < count < num_train:
        raise DataError(
            f"validation_fraction={fraction} of {num_train} training rows gives {count} "
            "validation rows, which leaves no rows for training or none for validation; "
            "choose a fraction between "
            f"{0.5 / max(num_train, 1):.3g} and {1 - 0.5 / max(num_train, 1):.3g}"
        )
    return count


def carve_validation(
    train_index: np.ndarray, fraction: float, seed: int, split: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split training rows into sorted (train, validation) rows by a permutation seeded with
    ``(seed, split)``; ``fraction`` 0 gives an empty validation part."""
    train_index = np.asarray(train_index, dtype=np.int64)
    count = validation_size(len(train_index), check_fraction(fraction))
    order = np.random.default_rng([seed, split]).permutation(len(train_index))
    return np.sort(train_index[order[count:]]), np.sort(train_index[order[:count]])


def moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (``ddof=0``) for standardisation; a constant column
    gets mean = its value and std = 1, so it standardises to exactly 0."""
    values = np.asarray(values, dtype=np.float64)
    mean, std = values.mean(axis=0), values.std(axis=0)
    constant = (values.max(axis=0) == values.min(axis=0)) | ~(std > 0)
    return np.where(constant, values[0], mean), np.where(constant, 1.0, std)


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
    """Carve the validation rows off ``train_index``, then standardise x and y with the moments
    of the remaining training rows (see :func:`moments`)."""
    train_index, val_index = carve_validation(train_index, validation_fraction, seed, split)
    test_index = np.sort(np.asarray(test_index, dtype=np.int64))
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    x_mean, x_std = moments(x[train_index])
    y_mean, y_std = (float(v[0]) for v in moments(y[train_index, None]))

    def part(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            ((x[index] - x_mean) / x_std).astype(np.float32),
            ((y[index] - y_mean) / y_std).astype(np.float32),
        )

    (xt, yt), (xv, yv), (xs, ys) = part(train_index), part(val_index), part(test_index)
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
        train_index=train_index,
        val_index=val_index,
        test_index=test_index,
        data_hash=data_hash,
        **meta,
    )


def random_splits(
    num_rows: int, num_splits: int, test_fraction: float, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``num_splits`` seeded random (train, test) row partitions, like the UCI standard splits:
    split ``i`` permutes the rows with ``default_rng([seed, i])`` and puts the first
    ``round(test_fraction * num_rows)`` in the test part."""
    out = []
    cut = round(test_fraction * num_rows)
    for i in range(num_splits):
        order = np.random.default_rng([seed, i]).permutation(num_rows)
        out.append((np.sort(order[cut:]), np.sort(order[:cut])))
    return out


def array_hash(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' dtypes, shapes and bytes (for built-in data, which has no files)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
