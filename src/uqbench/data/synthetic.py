"""Synthetic data for demos and tests; generated from a fixed seed, so always the same."""

from __future__ import annotations

import numpy as np

GAP1D_SIZE = 400


def gap1d() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D heteroscedastic regression with a gap: ``y = x sin(x) + eps``, ``eps ~ N(0, (0.1 +
    0.2 |x|)^2)``. Returns ``(x (N, 1), y (N,), in_gap (N,) bool)``: 80% of x are uniform on
    ``[-4, -1] U [1, 4]`` and 20% on the gap ``(-1, 1)``; the gap rows only ever go to test sets,
    so "in-between" uncertainty shows there."""
    rng = np.random.default_rng(20261123)
    outside = int(0.8 * GAP1D_SIZE)
    x_out = rng.uniform(1.0, 4.0, outside) * rng.choice([-1.0, 1.0], outside)
    x_gap = rng.uniform(-1.0, 1.0, GAP1D_SIZE - outside)
    x = np.r_[x_out, x_gap]
    y = x * np.sin(x) + rng.normal(0.0, 1.0, len(x)) * (0.1 + 0.2 * np.abs(x))
    return x[:, None], y, np.r_[np.zeros(outside, bool), np.ones(GAP1D_SIZE - outside, bool)]


def gap1d_splits(num_splits: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Splits of :func:`gap1d`: test = 10% of the outside rows plus every gap row; train = the rest."""
    _, _, in_gap = gap1d()
    outside, gap = np.flatnonzero(~in_gap), np.flatnonzero(in_gap)
    out = []
    for i in range(num_splits):
        order = np.random.default_rng([seed, i]).permutation(outside)
        cut = round(0.1 * len(outside))
        out.append((np.sort(order[cut:]), np.sort(np.r_[order[:cut], gap])))
    return out


def two_moons() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles, 1,000 points, noise 0.1, fixed seed."""
    from sklearn.datasets import make_moons

    return make_moons(n_samples=1000, noise=0.1, random_state=0)
