"""How raw table rows become a network's input, as one record a checkpoint can carry.

:class:`TablePreprocessing` one-hot encodes the categorical columns (in the order of
``categories``) and standardises every resulting feature with the moments of the rows trained
on, ``((x - x_mean) / x_std).astype(float32)`` computed in float64: the very computation the
registry's splits make, so a model applied to raw rows sees bit for bit what it was trained and
evaluated on. A regression target is standardised the same way (``y_mean``, ``y_std``), and
:meth:`TablePreprocessing.to_original` maps predictive means and variances back to its units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from uqbench.data.paths import DataError

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class TablePreprocessing:
    """Raw rows -> standardised float32 features (and a regression target's units).

    ``columns`` name the raw columns in order (``None``: unnamed, numeric); ``categories`` maps a
    categorical column to its values, each becoming one 0/1 feature in that order; ``x_mean`` and
    ``x_std`` standardise the encoded features; ``y_mean``/``y_std`` the regression target."""

    task: str
    x_mean: tuple[float, ...]
    x_std: tuple[float, ...]
    columns: tuple[str, ...] | None = None
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    y_mean: float | None = None
    y_std: float | None = None
    class_names: tuple[str, ...] = ()

    @property
    def num_raw_columns(self) -> int:
        """How many columns a raw row has."""
        if self.columns is not None:
            return len(self.columns)
        return len(self.x_mean)

    def encode(self, rows: Any) -> np.ndarray:
        """Raw rows (an ``(N, columns)`` array, a sequence of rows, or a mapping of column name
        to values) as float64 features, categorical columns one-hot encoded."""
        table = self._as_columns(rows)
        features = []
        for index, values in enumerate(table):
            name = self.columns[index] if self.columns is not None else str(index)
            if name in self.categories:
                features.extend(self._one_hot(name, values))
            else:
                features.append(self._numbers(name, values))
        return np.stack(features, axis=1) if features else np.zeros((0, 0))

    def transform(self, rows: Any) -> np.ndarray:
        """Raw rows -> the standardised float32 ``(N, D)`` input the network was trained on."""
        x = self.encode(rows)
        mean, std = np.asarray(self.x_mean), np.asarray(self.x_std)
        return ((x - mean) / std).astype(np.float32)

    def to_original(self, mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Standardised predictive means and variances in the target's units (float64)."""
        if self.y_mean is None or self.y_std is None:
            raise ValueError("to_original is for a regression target")
        mean = np.asarray(mean, dtype=np.float64)
        var = np.asarray(var, dtype=np.float64)
        return mean * self.y_std + self.y_mean, var * self.y_std**2

    def as_record(self) -> dict[str, Any]:
        """JSON-able record (floats round-trip exactly through JSON)."""
        return {
            "kind": "table",
            "task": self.task,
            "columns": list(self.columns) if self.columns is not None else None,
            "categories": {k: list(v) for k, v in self.categories.items()},
            "x_mean": [float(v) for v in self.x_mean],
            "x_std": [float(v) for v in self.x_std],
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "class_names": list(self.class_names),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TablePreprocessing:
        """The preprocessing :meth:`as_record` wrote."""
        columns = record.get("columns")
        return cls(
            task=record["task"],
            x_mean=tuple(record["x_mean"]),
            x_std=tuple(record["x_std"]),
            columns=tuple(columns) if columns is not None else None,
            categories={k: tuple(v) for k, v in (record.get("categories") or {}).items()},
            y_mean=record.get("y_mean"),
            y_std=record.get("y_std"),
            class_names=tuple(record.get("class_names") or ()),
        )

    def _as_columns(self, rows: Any) -> list[np.ndarray]:
        """The raw values column by column, checked against the expected columns."""
        expected = self.num_raw_columns
        if isinstance(rows, Mapping):
            if self.columns is None:
                raise ValueError("this model's columns are unnamed: pass an (N, D) array of rows")
            missing = [c for c in self.columns if c not in rows]
            if missing:
                raise ValueError(
                    f"rows lack column(s) {', '.join(missing)}; the model reads "
                    f"{', '.join(self.columns)}"
                )
            return [np.asarray(rows[c], dtype=object) for c in self.columns]
        array = np.asarray(rows, dtype=object)
        if array.ndim == 1 and expected == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[1] != expected:
            named = f" ({', '.join(self.columns)})" if self.columns is not None else ""
            raise ValueError(
                f"expected raw rows of shape (N, {expected}){named}, got {array.shape}; pass "
                "the rows as they were read, before any scaling"
            )
        return [array[:, i] for i in range(expected)]

    def _numbers(self, name: str, values: np.ndarray) -> np.ndarray:
        try:
            numbers = values.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"column {name!r} must hold numbers") from None
        if not np.isfinite(numbers).all():
            raise ValueError(f"column {name!r} holds NaN or infinite values")
        return numbers

    def _one_hot(self, name: str, values: np.ndarray) -> list[np.ndarray]:
        known = self.categories[name]
        text = np.array([str(v).strip() for v in values], dtype=object)
        unknown = sorted(set(text) - set(known))
        if unknown:
            raise ValueError(
                f"column {name!r} holds value(s) {', '.join(map(repr, unknown[:5]))} the model "
                f"never saw (it knows {', '.join(map(repr, known))})"
            )
        return [(text == value).astype(np.float64) for value in known]


def check_task(task: str) -> str:
    """``task`` if it is one of :data:`TASKS`, else a DataError."""
    if task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return task


def standardise(x: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``((x - mean) / std).astype(float32)`` in float64, as the registry's splits compute it."""
    return ((np.asarray(x, dtype=np.float64) - np.asarray(mean)) / np.asarray(std)).astype(
        np.float32
    )
