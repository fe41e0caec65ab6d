"""The statistics of the search comparison (benchmarks/search.py): best-so-far curves,
trials to reach a target, and bootstrap intervals of paired differences over seeds.

Objectives here are signed so that lower is better (as the search's algorithms see them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

BOOTSTRAP = 10_000  # resamples of the seeds for every interval
LEVEL = 0.95


def best_so_far(objectives: Sequence[float | None]) -> list[float]:
    """The lowest finite objective among the first k trials, for every k (inf before any)."""
    best, out = math.inf, []
    for value in objectives:
        if value is not None and math.isfinite(value):
            best = min(best, value)
        out.append(best)
    return out


def trials_to_target(curve: Sequence[float], target: float) -> tuple[int, bool]:
    """The first trial count whose best-so-far is at most ``target``, and whether it is
    censored (never reached: the budget, ``len(curve)``, is returned)."""
    for count, value in enumerate(curve, 1):
        if value <= target:
            return count, False
    return len(curve), True


def seconds_to_target(curve: Sequence[float], seconds: Sequence[float], target: float) -> float:
    """The training seconds spent until the best-so-far first reaches ``target`` (all the
    search's seconds when it never does)."""
    count, _ = trials_to_target(curve, target)
    return float(sum(seconds[:count]))


def bootstrap_median(
    values: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP
) -> tuple[float, float, float]:
    """The median of ``values`` and its percentile bootstrap interval (``LEVEL``)."""
    data = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(data[rng.integers(len(data), size=(resamples, len(data)))], axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(np.median(data)), float(low), float(high)


def paired_difference(
    a: Sequence[float], b: Sequence[float], seed: int = 0
) -> tuple[float, float, float]:
    """Median of the per-seed differences ``a - b`` with its bootstrap interval."""
    if len(a) != len(b):
        raise ValueError(f"paired values need as many of each, got {len(a)} and {len(b)}")
    return bootstrap_median(np.subtract(a, b), seed)


def ratio_of_medians(
    a: Sequence[float], b: Sequence[float], seed: int = 0, resamples: int = BOOTSTRAP
) -> tuple[float, float, float]:
    """``median(a) / median(b)`` with a bootstrap interval that resamples seeds in pairs."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"paired values need as many of each, got {len(x)} and {len(y)}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(x), size=(resamples, len(x)))
    ratios = np.median(x[picks], axis=1) / np.median(y[picks], axis=1)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(np.median(x) / np.median(y)), float(low), float(high)
