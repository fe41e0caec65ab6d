"""Regression metrics for Gaussian predictive distributions and uniform Gaussian mixtures."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import norm

from uqbench.metrics._arrays import ArrayLike, as_float, positive, same_shape, unit_interval


def _mean_var_y(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, ...]:
    mean, y = as_float("mean", mean), as_float("y", y)
    var = positive("var", as_float("var", var))
    same_shape(mean=mean, y=y)
    try:
        var = np.broadcast_to(var, mean.shape)
    except ValueError:
        raise ValueError(
            f"var has shape {var.shape}, which does not broadcast to mean's {mean.shape}"
        ) from None
    return mean, var, y


def rmse(mean: ArrayLike, y: ArrayLike) -> float:
    """Root mean squared error: ``sqrt(mean_i (y_i - mean_i)^2)``."""
    mean, y = as_float("mean", mean), as_float("y", y)
    same_shape(mean=mean, y=y)
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def gaussian_nll(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> float:
    """Gaussian negative log-likelihood, mean per example, in nats:
    ``mean_i [0.5 log(2 pi var_i) + (y_i - mean_i)^2 / (2 var_i)]``."""
    mean, var, y = _mean_var_y(mean, var, y)
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + (y - mean) ** 2 / (2 * var)))


def _members(means: ArrayLike, variances: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    means = as_float("means", means)
    if means.ndim < 2:
        raise ValueError(f"means must be (members, examples...), got shape {means.shape}")
    variances = positive("variances", as_float("variances", variances))
    try:
        variances = np.broadcast_to(variances, means.shape)
    except ValueError:
        raise ValueError(
            f"variances has shape {variances.shape}, which does not broadcast to means' {means.shape}"
        ) from None
    return means, variances


def mixture_gaussian_nll(means: ArrayLike, variances: ArrayLike, y: ArrayLike) -> float:
    """NLL of a uniform mixture of M Gaussians (members on axis 0), mean per example, nats:
    ``-mean_i log( (1/M) sum_m N(y_i; mu_mi, var_mi) )``, computed with log-sum-exp.

    ``variances`` broadcasts to ``means``: a scalar or ``(M, 1)`` gives a homoscedastic
    variance (MC dropout's ``1 / tau``)."""
    means, variances = _members(means, variances)
    y = as_float("y", y)
    if means.shape[1:] != y.shape:
        raise ValueError(
            f"means has shape {means.shape} but y has shape {y.shape}: expected (M, *y.shape)"
        )
    log_pdf = norm.logpdf(y, loc=means, scale=np.sqrt(variances))
    return float(-np.mean(logsumexp(log_pdf, axis=0) - np.log(means.shape[0])))


def mixture_mean_variance(means: ArrayLike, variances: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Moments of a uniform mixture (members on axis 0): ``mean = E_m[mu_m]``,
    ``var = E_m[var_m + mu_m^2] - mean^2`` (law of total variance)."""
    means, variances = _members(means, variances)
    mean = means.mean(axis=0)
    var = (variances + means**2).mean(axis=0) - mean**2
    return mean, np.maximum(var, variances.min(axis=0))


def gaussian_crps(mean: ArrayLike, var: ArrayLike, y: ArrayLike) -> float:
    """Continuous ranked probability score of a Gaussian (Gneiting & Raftery 2007), mean over
    examples, in the units of y: with ``z = (y - mu) / sigma``,
    ``CRPS = sigma [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``. Lower is better."""
    mean, var, y = _mean_var_y(mean, var, y)
    sigma = np.sqrt(var)
    z = (y - mean) / sigma
    return float(
        np.mean(sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi)))
    )


def interval_coverage(mean: ArrayLike, var: ArrayLike, y: ArrayLike, level: float = 0.95) -> float:
    """Fraction of targets inside the central ``level`` interval of the Gaussian,
    ``|y - mu| <= Phi^{-1}((1 + level) / 2) sigma``; ideally equal to ``level``."""
    level = unit_interval("level", level)
    mean, var, y = _mean_var_y(mean, var, y)
    half_width = norm.ppf(0.5 + level / 2) * np.sqrt(var)
    return float(np.mean(np.abs(y - mean) <= half_width))


def regression_calibration_error(
    mean: ArrayLike, var: ArrayLike, y: ArrayLike, num_levels: int = 19
) -> float:
    """Quantile calibration error (Kuleshov et al. 2018): with levels ``p_j = j / (L + 1)``,
    ``mean_j |p_j - mean_i 1[y_i <= F_i^{-1}(p_j)]|`` where ``F_i`` is example i's Gaussian CDF.
    0 is perfectly calibrated."""
    if num_levels < 1:
        raise ValueError(f"num_levels must be at least 1, got {num_levels}")
    mean, var, y = _mean_var_y(mean, var, y)
    levels = np.arange(1, num_levels + 1) / (num_levels + 1)
    pit = norm.cdf((y - mean) / np.sqrt(var)).ravel()
    observed = (pit[None, :] <= levels[:, None]).mean(axis=1)
    return float(np.mean(np.abs(levels - observed)))
