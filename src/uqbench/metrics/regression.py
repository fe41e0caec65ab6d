"""Regression metrics for Gaussian predictive distributions and uniform Gaussian mixtures.

``mean``, ``var`` and ``y`` hold one entry per example (any shape, the same for ``mean`` and
``y``; ``var`` may be a scalar or anything that broadcasts to ``mean``). Mixtures put the members
on axis 0: ``means`` and ``variances`` are ``(M, *y.shape)`` with uniform weights ``1 / M``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from uqbench.metrics._arrays import (
    ArrayLike,
    as_float,
    count,
    positive,
    same_shape,
    unit_interval,
)


def _broadcast_var(name: str, var: np.ndarray, target_name: str, shape: tuple) -> np.ndarray:
    try:
        return np.broadcast_to(var, shape)
    except ValueError:
        raise ValueError(
            f"{name} has shape {var.shape}, which does not broadcast to {target_name} shape {shape}"
        ) from None


def _mean_var_y(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, ...]:
    mean = as_float("mean", mean, finite=True)
    y = as_float("y", y, finite=True)
    var = positive("var", as_float("var", var, finite=True))
    same_shape(mean=mean, y=y)
    return mean, _broadcast_var("var", var, "mean's", mean.shape), y


def rmse(mean: ArrayLike, y: ArrayLike) -> float:
    """Root mean squared error of the predictive mean.

    ``sqrt(mean_i (y_i - mean_i)^2)``, in the units of ``y``; ``mean`` and ``y`` have one shape."""
    mean, y = as_float("mean", mean, finite=True), as_float("y", y, finite=True)
    same_shape(mean=mean, y=y)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def gaussian_nll(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> float:
    """Gaussian negative log-likelihood, mean per example, in nats.

    ``mean_i [0.5 log(2 pi var_i) + (y_i - mean_i)^2 / (2 var_i)]``; ``var`` is a variance (not a
    standard deviation), positive, and may be a scalar."""
    mean, var, y = _mean_var_y(mean, var, y)
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var)))


def _members(means: ArrayLike, variances: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    means = as_float("means", means, finite=True)
    if means.ndim < 2:
        raise ValueError(
            f"means must be (members, examples...) with members on axis 0, got shape {means.shape}"
        )
    variances = positive("variances", as_float("variances", variances, finite=True))
    return means, _broadcast_var("variances", variances, "means'", means.shape)


def mixture_gaussian_nll(means: ArrayLike, variances: ArrayLike, y: ArrayLike) -> float:
    """Negative log-likelihood of a uniform mixture of Gaussians, mean per example, in nats.

    ``-mean_i log( (1/M) sum_m N(y_i; mu_mi, var_mi) )`` with the members on axis 0 of ``means``
    (shape ``(M, *y.shape)``), computed with log-sum-exp so that it stays finite far in the tails.
    ``variances`` broadcasts to ``means``: a scalar or ``(M, 1)`` gives a homoscedastic variance
    (MC dropout's ``1 / tau``)."""
    means, variances = _members(means, variances)
    y = as_float("y", y, finite=True)
    if means.shape[1:] != y.shape:
        raise ValueError(
            f"means has shape {means.shape} but y has shape {y.shape}: expected (M, *y.shape)"
        )
    log_pdf = norm.logpdf(y, loc=means, scale=np.sqrt(variances))
    return float(-np.mean(logsumexp(log_pdf, axis=0) - np.log(means.shape[0])))


def mixture_mean_variance(means: ArrayLike, variances: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Moment-matched mean and variance of a uniform Gaussian mixture, per example.

    With the members on axis 0: ``mean = mean_m mu_m`` and, by the law of total variance,
    ``var = mean_m var_m + mean_m (mu_m - mean)^2`` (computed in this form, which cannot cancel
    below ``mean_m var_m``). Returns two float64 arrays of shape ``means.shape[1:]``."""
    means, variances = _members(means, variances)
    mean = means.mean(axis=0)
    var = variances.mean(axis=0) + ((means - mean) ** 2).mean(axis=0)
    return mean, var


def gaussian_crps(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> float:
    """Continuous ranked probability score of a Gaussian, mean over examples (lower is better).

    Closed form (Gneiting & Raftery 2007): with ``sigma = sqrt(var)`` and ``z = (y - mu) / sigma``,
    ``CRPS = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``, which equals
    ``int (F(t) - 1[t >= y])^2 dt``. In the units of ``y``; tends to ``|y - mu|`` as
    ``sigma -> 0``."""
    mean, var, y = _mean_var_y(mean, var, y)
    sigma = np.sqrt(var)
    z = (y - mean) / sigma
    return float(
        np.mean(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))
    )


def interval_coverage(mean: ArrayLike, var: ArrayLike, y: ArrayLike, level: float = 0.95) -> float:
    """Fraction of targets inside the central Gaussian prediction interval of a given level.

    ``mean_i 1[|y_i - mu_i| <= Phi^{-1}((1 + level) / 2) sigma_i]`` (the interval is closed);
    ideally equal to ``level``, which must be in (0, 1)."""
    level = unit_interval("level", level)
    mean, var, y = _mean_var_y(mean, var, y)
    half_width = norm.ppf(0.5 + level / 2) * np.sqrt(var)
    return float(np.mean(np.abs(y - mean) <= half_width))


def regression_calibration_error(
    mean: ArrayLike, var: ArrayLike, y: ArrayLike, num_levels: int = 19
) -> float:
    """Quantile calibration error of Gaussian predictions (Kuleshov et al. 2018); 0 is perfect.

    With levels ``p_j = j / (L + 1)`` for ``j = 1..L`` (``L = num_levels``; 19 gives 0.05, 0.10,
    ..., 0.95), ``mean_j |p_j - mean_i 1[y_i <= F_i^{-1}(p_j)]|``, where ``F_i`` is example i's
    Gaussian CDF (equivalently ``1[F_i(y_i) <= p_j]``, the PIT value below the level)."""
    num_levels = count("num_levels", num_levels)
    mean, var, y = _mean_var_y(mean, var, y)
    levels = np.arange(1, num_levels + 1) / (num_levels + 1)
    pit = np.sort(norm.cdf((y - mean) / np.sqrt(var)).ravel())
    observed = np.searchsorted(pit, levels, side="right") / pit.size
    return float(np.mean(np.abs(levels - observed)))
