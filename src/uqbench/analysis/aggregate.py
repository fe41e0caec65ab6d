"""Means and standard errors over seeds and splits, and paired differences between groups.

A group's evaluations are its (seed, split) units (``Group.units``). A metric's value is the
mean over the units that recorded it and its standard error ``std(ddof=1) / sqrt(n)`` (none
for one unit), as ``summary.json``'s ``_se`` twins are defined. Two groups are compared on the
units they share (the same seed and split): the mean of the paired differences and its standard
error, which removes what the seed or split shares between them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from uqbench.analysis.grouping import Group


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values and its standard error (``None`` when ``n`` is 1)."""

    mean: float
    se: float | None
    n: int


def estimate(values: list[float] | np.ndarray) -> Estimate:
    """Mean and standard error ``std(ddof=1) / sqrt(n)`` of ``values`` (finite, at least one)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        raise ValueError("no values to average")
    se = float(array.std(ddof=1) / math.sqrt(array.size)) if array.size > 1 else None
    return Estimate(float(array.mean()), se, int(array.size))


def aggregate(units: Mapping[Any, Mapping[str, float]]) -> dict[str, Estimate]:
    """Every metric of the units: its mean and standard error over the units that have it
    (non-finite values are left out)."""
    values: dict[str, list[float]] = {}
    for metrics in units.values():
        for key, value in metrics.items():
            if value is not None and math.isfinite(value):
                values.setdefault(key, []).append(float(value))
    return {key: estimate(v) for key, v in sorted(values.items())}


def paired(first: Group, second: Group, metric: str) -> Estimate | None:
    """``first - second`` on ``metric`` over the (seed, split) units both have; ``None`` for
    fewer than two shared units."""
    a, b = first.units(), second.units()
    shared = [
        k
        for k in a
        if k in b
        and metric in a[k]
        and metric in b[k]
        and math.isfinite(a[k][metric])
        and math.isfinite(b[k][metric])
    ]
    if len(shared) < 2:
        return None
    return estimate([a[k][metric] - b[k][metric] for k in shared])
