"""Gaussian and mixture regression metrics against scipy.stats, quadrature and Monte Carlo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm
from sklearn.metrics import root_mean_squared_error

import uqbench.metrics as M

RNG = np.random.default_rng(0)
MEAN = RNG.normal(size=40)
VAR = RNG.uniform(0.2, 3.0, size=40)
Y = MEAN + RNG.normal(size=40) * np.sqrt(VAR) * 1.3


def test_rmse_matches_sklearn():
    assert M.rmse(MEAN, Y) == pytest.approx(root_mean_squared_error(Y, MEAN), rel=1e-12)
    assert M.rmse(Y, Y) == 0.0


def test_gaussian_nll_matches_scipy_logpdf():
    expected = -norm.logpdf(Y, loc=MEAN, scale=np.sqrt(VAR)).mean()
    assert M.gaussian_nll(MEAN, VAR, Y) == pytest.approx(expected, rel=1e-12)
    # a scalar variance broadcasts
    expected = -norm.logpdf(Y, loc=MEAN, scale=np.sqrt(0.5)).mean()
    assert M.gaussian_nll(MEAN, 0.5, Y) == pytest.approx(expected, rel=1e-12)


def crps_by_quadrature(mu: float, sigma: float, y: float) -> float:
    """The definition: integral over z of (F(z) - 1[z >= y])^2."""
    below, _ = integrate.quad(lambda z: norm.cdf(z, mu, sigma) ** 2, -np.inf, y)
    above, _ = integrate.quad(lambda z: norm.sf(z, mu, sigma) ** 2, y, np.inf)
    return below + above


@pytest.mark.parametrize(
    ("mu", "sigma", "y"), [(0.0, 1.0, 0.0), (0.0, 1.0, 1.5), (2.0, 0.5, -1.0), (-3.0, 4.0, 2.0)]
)
def test_gaussian_crps_matches_the_integral_definition(mu, sigma, y):
    expected = crps_by_quadrature(mu, sigma, y)
    assert M.gaussian_crps([mu], [sigma**2], [y]) == pytest.approx(expected, rel=1e-7)


def test_gaussian_crps_mean_over_examples_and_point_mass_limit():
    cases = [(0.0, 1.0, 0.0), (2.0, 0.5, -1.0), (-3.0, 4.0, 2.0)]
    expected = np.mean([crps_by_quadrature(*c) for c in cases])
    mu, sigma, y = map(np.array, zip(*cases, strict=True))
    assert M.gaussian_crps(mu, sigma**2, y) == pytest.approx(expected, rel=1e-7)
    # as sigma -> 0 the CRPS tends to the absolute error
    assert M.gaussian_crps([1.0, 2.0], [1e-12, 1e-12], [3.0, 1.5]) == pytest.approx(1.25, abs=1e-5)


def test_interval_coverage_hand_case():
    # the 95% central interval is |y - mu| <= 1.95996 sigma; sigma = 2
    # offsets in sigmas: 0, 1.9, 2.0, -1.95, -1.97 -> inside: 0, 1.9, -1.95 -> 3/5
    offsets = np.array([0.0, 1.9, 2.0, -1.95, -1.97])
    mean = np.arange(5.0)
    assert M.interval_coverage(mean, 4.0, mean + 2 * offsets) == pytest.approx(0.6)
    # at level 0.5 the half width is 0.6745 sigma: only offset 0 is inside
    assert M.interval_coverage(mean, 4.0, mean + 2 * offsets, level=0.5) == pytest.approx(0.2)


def test_interval_coverage_of_calibrated_samples_is_close_to_level():
    rng = np.random.default_rng(1)
    mean, var = rng.normal(size=20000), rng.uniform(0.5, 2.0, 20000)
    y = mean + rng.normal(size=20000) * np.sqrt(var)
    for level in (0.5, 0.9, 0.95):
        assert M.interval_coverage(mean, var, y, level=level) == pytest.approx(level, abs=0.01)
    assert M.regression_calibration_error(mean, var, y) < 0.01


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_interval_level_outside_unit_interval_raises(level):
    with pytest.raises(ValueError, match="level"):
        M.interval_coverage(MEAN, VAR, Y, level=level)


def test_regression_calibration_error_hand_cases():
    # one level p = 1/2: y = mu -/+ sigma gives PIT 0.159 and 0.841 -> 1/2 below -> error 0
    assert M.regression_calibration_error([0.0, 0.0], [1.0, 1.0], [-1.0, 1.0], num_levels=1) == 0.0
    # every y far below its mean: PIT ~ 0 <= every level, observed 1 everywhere;
    # error = mean_j (1 - j / 20) for j = 1..19 = 1 - 10 / 20 = 0.5
    assert M.regression_calibration_error([0.0] * 3, [1.0] * 3, [-50.0] * 3) == pytest.approx(0.5)
    # three levels 1/4, 1/2, 3/4 and PITs norm.cdf(z) for z = -1, 0.1, 2 (0.159, 0.540, 0.977):
    # observed fractions 1/3, 1/3, 2/3 -> (|.25 - .3333| + |.5 - .3333| + |.75 - .6667|) / 3
    z = np.array([-1.0, 0.1, 2.0])
    expected = (abs(0.25 - 1 / 3) + abs(0.5 - 1 / 3) + abs(0.75 - 2 / 3)) / 3
    got = M.regression_calibration_error(np.zeros(3), np.ones(3), z, num_levels=3)
    assert got == pytest.approx(expected)
    with pytest.raises(ValueError, match="num_levels"):
        M.regression_calibration_error([0.0], [1.0], [0.0], num_levels=0)


def test_mixture_nll_matches_a_direct_density_sum():
    rng = np.random.default_rng(2)
    means = rng.normal(size=(5, 30))
    variances = rng.uniform(0.1, 2.0, size=(5, 30))
    y = rng.normal(size=30)
    density = norm.pdf(y, loc=means, scale=np.sqrt(variances)).mean(axis=0)
    assert M.mixture_gaussian_nll(means, variances, y) == pytest.approx(
        -np.log(density).mean(), rel=1e-10
    )


def test_mixture_nll_of_identical_members_is_the_gaussian_nll_even_far_in_the_tail():
    means = np.tile(MEAN, (4, 1))
    assert M.mixture_gaussian_nll(means, np.tile(VAR, (4, 1)), Y) == pytest.approx(
        M.gaussian_nll(MEAN, VAR, Y), rel=1e-12
    )
    # y 100 standard deviations away: the density underflows to 0, log-sum-exp keeps it finite
    # var 1e-4 and |y - mu| = 1: NLL = 0.5 log(2 pi 1e-4) + 1 / (2e-4) = 5000 - 3.686
    got = M.mixture_gaussian_nll(np.zeros((3, 1)), 1e-4, [1.0])
    assert got == pytest.approx(5000 + 0.5 * np.log(2 * np.pi * 1e-4), rel=1e-12)


def test_mixture_nll_homoscedastic_variance_broadcasts():
    rng = np.random.default_rng(3)
    means, y = rng.normal(size=(3, 10)), rng.normal(size=10)
    full = M.mixture_gaussian_nll(means, np.full((3, 10), 0.7), y)
    assert M.mixture_gaussian_nll(means, 0.7, y) == pytest.approx(full)
    assert M.mixture_gaussian_nll(means, np.full((3, 1), 0.7), y) == pytest.approx(full)


def test_mixture_nll_against_monte_carlo_cross_entropy():
    # E_{y ~ N(0, 1)} [-log q(y)] for the mixture q = (N(-1, 1) + N(1, 1)) / 2, by sampling
    rng = np.random.default_rng(4)
    y = rng.normal(size=50_000)
    means = np.array([[-1.0], [1.0]]) * np.ones((2, y.size))
    by_sampling = -np.log(0.5 * norm.pdf(y, -1.0) + 0.5 * norm.pdf(y, 1.0)).mean()
    assert M.mixture_gaussian_nll(means, 1.0, y) == pytest.approx(by_sampling, rel=1e-10)
    # ... and the same expectation by quadrature, within Monte-Carlo error
    exact, _ = integrate.quad(
        lambda t: -norm.pdf(t) * np.log(0.5 * norm.pdf(t, -1.0) + 0.5 * norm.pdf(t, 1.0)),
        -12.0,
        12.0,
    )
    assert M.mixture_gaussian_nll(means, 1.0, y) == pytest.approx(exact, abs=0.02)


def test_mixture_mean_variance_against_monte_carlo():
    means = np.array([[0.0, 2.0], [1.0, -2.0], [5.0, 0.0]])
    variances = np.array([[1.0, 0.5], [0.25, 0.5], [2.0, 3.0]])
    mean, var = M.mixture_mean_variance(means, variances)
    rng = np.random.default_rng(5)
    n = 200_000
    member = rng.integers(0, 3, size=(n, 2))
    cols = np.arange(2)
    samples = means[member, cols] + rng.normal(size=(n, 2)) * np.sqrt(variances[member, cols])
    np.testing.assert_allclose(mean, samples.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(var, samples.var(axis=0), rtol=0.02)
    # hand: column 0 mean 2, E[var] = 3.25/3, Var[mu] = (4 + 1 + 9) / 3 -> 17.25 / 3 = 5.75
    assert mean[0] == pytest.approx(2.0)
    assert var[0] == pytest.approx(5.75)


def test_mixture_of_one_member_is_that_member():
    mean, var = M.mixture_mean_variance(MEAN[None], VAR[None])
    np.testing.assert_allclose(mean, MEAN)
    np.testing.assert_allclose(var, VAR, rtol=1e-12)


def test_torch_and_numpy_agree():
    t = torch.from_numpy
    for metric in (
        M.gaussian_nll,
        M.gaussian_crps,
        M.interval_coverage,
        M.regression_calibration_error,
    ):
        assert metric(t(MEAN), t(VAR), t(Y)) == pytest.approx(metric(MEAN, VAR, Y), rel=1e-12)
    assert M.rmse(t(MEAN), t(Y)) == pytest.approx(M.rmse(MEAN, Y))
    means, variances = np.stack([MEAN, Y]), np.stack([VAR, VAR])
    assert M.mixture_gaussian_nll(t(means), t(variances), t(Y)) == pytest.approx(
        M.mixture_gaussian_nll(means, variances, Y)
    )


GAUSSIAN_METRICS = [
    M.gaussian_nll,
    M.gaussian_crps,
    M.interval_coverage,
    M.regression_calibration_error,
]


@pytest.mark.parametrize("metric", GAUSSIAN_METRICS, ids=lambda f: f.__name__)
@pytest.mark.parametrize(
    ("mean", "var", "y", "words"),
    [
        (np.zeros(3), np.ones(3), np.zeros(4), ["shape mismatch", "(3,)", "(4,)"]),
        (np.zeros(3), np.ones(2), np.zeros(3), ["var", "(2,)", "(3,)"]),
        (np.zeros(3), np.array([1.0, 0.0, 1.0]), np.zeros(3), ["var must be positive"]),
        (np.zeros(3), np.array([1.0, -2.0, 1.0]), np.zeros(3), ["var must be positive"]),
        (np.array([0.0, np.nan, 0.0]), np.ones(3), np.zeros(3), ["mean", "NaN"]),
        (np.zeros(3), np.ones(3), np.array([0.0, np.nan, 0.0]), ["y", "NaN"]),
        (np.zeros(0), np.ones(1), np.zeros(0), ["empty"]),
    ],
    ids=["y-length", "var-shape", "var-zero", "var-negative", "nan-mean", "nan-y", "empty"],
)
def test_bad_regression_inputs_raise(metric, mean, var, y, words):
    with pytest.raises(ValueError) as info:
        metric(mean, var, y)
    for word in words:
        assert word in str(info.value)


def test_rmse_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"mean has shape \(3,\), y has shape \(2,\)"):
        M.rmse(np.zeros(3), np.zeros(2))


def test_mixture_shape_errors():
    with pytest.raises(ValueError, match=r"means has shape \(3, 4\) but y has shape \(5,\)"):
        M.mixture_gaussian_nll(np.zeros((3, 4)), 1.0, np.zeros(5))
    with pytest.raises(ValueError, match=r"means must be \(members, examples"):
        M.mixture_gaussian_nll(np.zeros(3), 1.0, np.zeros(3))
    with pytest.raises(ValueError, match=r"variances has shape \(2, 4\)"):
        M.mixture_mean_variance(np.zeros((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="variances must be positive"):
        M.mixture_mean_variance(np.zeros((3, 4)), np.zeros((3, 4)))


def test_mixture_mean_variance_does_not_cancel_for_large_means():
    # members N(1e8, 0.01) and N(1e8 + 1, 0.01): mean 1e8 + 0.5, variance 0.01 + 0.25 = 0.26
    # (E[var + mu^2] - mean^2 would subtract two numbers of size 1e16 and lose every digit)
    means = np.array([[1e8], [1e8 + 1.0]])
    mean, var = M.mixture_mean_variance(means, 0.01)
    assert mean[0] == 1e8 + 0.5
    assert var[0] == pytest.approx(0.26, rel=1e-12)
    assert mean.dtype == var.dtype == np.float64
    assert mean.shape == var.shape == (1,)


def test_mixture_mean_variance_scalar_and_per_member_variances():
    # members mu = 0, 2, 4 (one example each column) with per-member variance 1, 2, 3:
    # mean 2; E[var] = 2; Var[mu] = (4 + 0 + 4) / 3 = 8/3 -> 2 + 8/3 = 14/3
    means = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0]])
    mean, var = M.mixture_mean_variance(means, np.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(var, [14 / 3, 14 / 3])
    _, var = M.mixture_mean_variance(means, 1.0)
    np.testing.assert_allclose(var, [1 + 8 / 3] * 2)


def test_regression_metrics_accept_any_common_shape():
    # (N, 1) targets against (N, 1) means: the same numbers as flat arrays
    flat = M.gaussian_nll(MEAN, VAR, Y)
    assert M.gaussian_nll(MEAN[:, None], VAR[:, None], Y[:, None]) == pytest.approx(flat)
    # but (N, 1) means against (N,) targets is a mistake, not a broadcast
    with pytest.raises(ValueError, match=r"mean has shape \(40, 1\), y has shape \(40,\)"):
        M.gaussian_crps(MEAN[:, None], VAR, Y)


def test_regression_calibration_error_matches_scipy_ppf_quantiles():
    # independent of the PIT: count y <= norm.ppf(p, mu, sigma) level by level
    rng = np.random.default_rng(6)
    mean, var = rng.normal(size=300), rng.uniform(0.3, 2.0, 300)
    y = mean + 1.4 * rng.normal(size=300) * np.sqrt(var)  # overdispersed -> miscalibrated
    levels = np.arange(1, 20) / 20
    observed = [np.mean(y <= norm.ppf(p, loc=mean, scale=np.sqrt(var))) for p in levels]
    expected = np.mean(np.abs(levels - np.array(observed)))
    assert M.regression_calibration_error(mean, var, y) == pytest.approx(expected, abs=1e-12)
    assert expected > 0.02


@pytest.mark.parametrize("bad", ["mean", "var", "y"])
def test_infinities_are_rejected(bad):
    args = {"mean": np.zeros(3), "var": np.ones(3), "y": np.zeros(3)}
    args[bad] = np.array([0.5, np.inf, 1.0])
    with pytest.raises(ValueError, match=f"{bad} contains an infinity"):
        M.gaussian_nll(**args)


def test_num_levels_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="num_levels must be an integer"):
        M.regression_calibration_error(MEAN, VAR, Y, num_levels=9.5)


def test_mixture_variance_shapes_in_error_message():
    with pytest.raises(ValueError, match=r"variances has shape \(2,\).*\(3, 4\)"):
        M.mixture_gaussian_nll(np.zeros((3, 4)), np.ones(2), np.zeros(4))
