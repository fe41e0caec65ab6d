"""Synthetic data for demos and tests, generated from fixed seeds, so always the same arrays.

``gap1d``: 1-D heteroscedastic regression with a gap, for "in-between" uncertainty.

- target: ``y = x sin(x) + (0.1 + 0.2 |x|) * eps`` with ``eps ~ N(0, 1)``, so the noise
  standard deviation grows from 0.3 at ``|x| = 1`` to 0.9 at ``|x| = 4`` (1.1 at ``|x| = 5``);
- 400 *observed* rows with ``x ~ U([-4, -1] U [1, 4])``; split ``i`` puts a seeded random 10%
  of them in the test part and the other 90% (360) in the training part;
- 100 *probe* rows on an even grid over ``[-5, 5]`` (``numpy.linspace(-5, 5, 100)``), in every
  split's test part: they cover the gap ``(-1, 1)`` (in-between uncertainty), the observed
  range, and the edges ``[-5, -4)``/``(4, 5]`` (extrapolation). No training row lies in the gap.

Every split thus has 360 training and 140 test rows. The average noise variance over the
observed range is about 0.39, so the precision grid for MC dropout is ``tau`` in (1, 2, 4).
"""

from __future__ import annotations

import functools

import numpy as np

GAP1D_OBSERVED = 400
GAP1D_PROBES = 100
GAP1D_SEED = 20261123
GAP1D_TAUS = (1.0, 2.0, 4.0)


def gap1d_mean(x: np.ndarray) -> np.ndarray:
    """The noise-free function of :func:`gap1d`: ``x sin(x)``."""
    return x * np.sin(x)


def gap1d_noise_std(x: np.ndarray) -> np.ndarray:
    """The noise standard deviation of :func:`gap1d` at ``x``: ``0.1 + 0.2 |x|``."""
    return 0.1 + 0.2 * np.abs(x)


@functools.cache
def gap1d() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x (500, 1), y (500,), probe (500,) bool)``: the 400 observed rows, then the 100 probe
    rows (see the module docstring). Read-only arrays."""
    rng = np.random.default_rng(GAP1D_SEED)
    observed = rng.uniform(1.0, 4.0, GAP1D_OBSERVED) * rng.choice([-1.0, 1.0], GAP1D_OBSERVED)
    x = np.r_[observed, np.linspace(-5.0, 5.0, GAP1D_PROBES)]
    y = gap1d_mean(x) + gap1d_noise_std(x) * rng.normal(0.0, 1.0, len(x))
    probe = np.r_[np.zeros(GAP1D_OBSERVED, bool), np.ones(GAP1D_PROBES, bool)]
    arrays = (x[:, None], y, probe)
    for array in arrays:
        array.flags.writeable = False
    return arrays


def gap1d_splits(num_splits: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` rows of :func:`gap1d`: split ``i`` permutes the observed rows with
    ``default_rng([seed, i])``; the first 10% and every probe row are the test part."""
    probe = gap1d()[2]
    observed, probes = np.flatnonzero(~probe), np.flatnonzero(probe)
    cut = round(0.1 * len(observed))
    out = []
    for i in range(num_splits):
        order = np.random.default_rng([seed, i]).permutation(observed)
        out.append((np.sort(order[cut:]), np.sort(np.r_[order[:cut], probes])))
    return out


@functools.cache
def two_moons() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles: 1,000 points, noise 0.1, ``random_state``
    0. Label 0 is the upper moon, 1 the lower one. Read-only arrays."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1000, noise=0.1, random_state=0)
    y = y.astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y
