"""Temperature scaling: fitted T against a brute-force grid, calibration, the module, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax

from uqbench.layers.temperature import (
    TemperatureScaling,
    apply_temperature,
    fit_temperature,
    temperature_nll,
)
from uqbench.metrics import accuracy, ece


def sampled_problem(n: int, k: int, seed: int, scale: float = 1.5):
    """Logits and labels drawn from softmax(logits): the logits are calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, scale, size=(n, k))
    probs = softmax(logits, axis=1)
    labels = (rng.random((n, 1)) > np.cumsum(probs, axis=1)).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


def reference_nll(logits: np.ndarray, labels: np.ndarray, t):
    """Mean NLL of softmax(logits / t) for a scalar or a 1-D grid of temperatures ``t``."""
    t = np.asarray(t, dtype=np.float64)[..., None, None]
    scaled = logits / t
    picked = scaled[..., np.arange(len(labels)), labels]
    return np.mean(logsumexp(scaled, axis=-1) - picked, axis=-1)


def grid_minimum(logits: np.ndarray, labels: np.ndarray, low: float, high: float):
    """Brute force: the best of 801 log-spaced temperatures, then of 801 around it."""
    grid = np.exp(np.linspace(np.log(low), np.log(high), 801))
    best = grid[np.argmin(reference_nll(logits, labels, grid))]
    step = np.log(grid[1] / grid[0])
    fine = best * np.exp(np.linspace(-step, step, 801))
    nlls = reference_nll(logits, labels, fine)
    return fine[np.argmin(nlls)], nlls.min(), np.log(fine[1] / fine[0])


def test_fitted_temperature_matches_a_brute_force_grid():
    logits, labels = sampled_problem(400, 6, 0)
    logits = logits * 2.3 + np.random.default_rng(1).normal(0, 0.5, logits.shape)
    best, best_nll, step = grid_minimum(logits, labels, 0.2, 20.0)
    fitted = fit_temperature(logits, labels)
    assert abs(np.log(fitted / best)) <= step
    assert reference_nll(logits, labels, fitted) <= best_nll + 1e-12
    assert temperature_nll(logits, labels, fitted) == pytest.approx(
        reference_nll(logits, labels, fitted), rel=1e-12
    )


def test_calibrated_logits_give_a_temperature_near_one():
    logits, labels = sampled_problem(20000, 5, 2)
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.05)


def test_over_confident_logits_are_softened_and_ece_drops():
    logits, labels = sampled_problem(6000, 10, 3)
    logits = 3.0 * logits  # over-confident by a factor of 3
    val, test = slice(0, 3000), slice(3000, None)
    t = fit_temperature(logits[val], labels[val])
    assert t == pytest.approx(3.0, rel=0.1)
    before = softmax(logits[test], axis=1)
    after = softmax(apply_temperature(logits[test], t), axis=1)
    assert ece(after, labels[test]) < ece(before, labels[test]) / 2
    assert accuracy(after, labels[test]) == accuracy(before, labels[test])


def test_under_confident_logits_are_sharpened():
    logits, labels = sampled_problem(4000, 4, 4)
    assert fit_temperature(logits / 2.0, labels) == pytest.approx(0.5, rel=0.1)


def test_scaling_never_changes_the_predicted_class():
    logits = np.random.default_rng(5).normal(size=(500, 7))
    for t in (0.01, 0.3, 1.0, 7.0, 100.0):
        np.testing.assert_array_equal(
            apply_temperature(logits, t).argmax(axis=1), logits.argmax(axis=1)
        )


def test_torch_and_numpy_input_agree():
    logits, labels = sampled_problem(300, 3, 6)
    logits *= 2
    from_numpy = fit_temperature(logits, labels)
    from_torch = fit_temperature(torch.from_numpy(logits), torch.from_numpy(labels))
    from_float32 = fit_temperature(torch.from_numpy(logits).float(), labels.astype(np.float64))
    assert from_torch == from_numpy
    assert from_float32 == pytest.approx(from_numpy, rel=1e-5)


def test_ensemble_mean_prediction_through_log_probabilities():
    logits, labels = sampled_problem(1000, 5, 7)
    rng = np.random.default_rng(8)
    members = softmax(3.0 * (logits[None] + rng.normal(0, 0.3, (4, *logits.shape))), axis=2)
    log_mean = np.log(np.maximum(members.mean(axis=0), 1e-12))
    t = fit_temperature(log_mean, labels)
    best, best_nll, step = grid_minimum(log_mean, labels, 0.5, 10.0)
    assert t > 1 and abs(np.log(t / best)) <= step
    assert reference_nll(log_mean, labels, t) <= best_nll + 1e-12


def test_a_separable_validation_set_clips_to_the_lower_bound_with_a_warning():
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [3.0, 1.0]])
    with pytest.warns(UserWarning, match="lower bound 0.01"):
        assert fit_temperature(logits, [0, 1, 0]) == 0.01


def test_logits_worse_than_uniform_clip_to_the_upper_bound_with_a_warning():
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    with pytest.warns(UserWarning, match="upper bound 50"):
        assert fit_temperature(logits, [1, 0], bounds=(0.5, 50.0)) == 50.0


def test_module_divides_logits_and_saves_the_temperature():
    logits, labels = sampled_problem(2000, 4, 9)
    logits = torch.from_numpy(2.5 * logits).float()
    scaler = TemperatureScaling().fit(logits, torch.from_numpy(labels))
    t = fit_temperature(logits, labels)
    assert scaler.temperature.item() == pytest.approx(t, rel=1e-6)
    out = scaler(logits)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, logits / t)
    assert "temperature" in scaler.state_dict()
    restored = TemperatureScaling()
    restored.load_state_dict(scaler.state_dict())
    torch.testing.assert_close(restored(logits), out)
    assert "temperature=" in repr(restored)


def test_module_composes_with_a_model_and_keeps_the_dtype():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), TemperatureScaling(2.0))
    x = torch.randn(4, 3)
    torch.testing.assert_close(model(x), model[0](x) / 2.0)
    assert TemperatureScaling(2.0)(torch.ones(2, 2, dtype=torch.float64)).dtype == torch.float64


def test_apply_temperature_keeps_torch_and_numpy_types():
    logits = torch.tensor([[2.0, -4.0]], dtype=torch.float64)
    torch.testing.assert_close(apply_temperature(logits, 2.0), torch.tensor([[1.0, -2.0]]).double())
    np.testing.assert_array_equal(apply_temperature(np.array([[2, -4]]), 4), [[0.5, -1.0]])
    assert apply_temperature(np.ones(2, dtype=np.float32), 2.0).dtype == np.float32
    np.testing.assert_array_equal(apply_temperature([[3.0]], torch.tensor(3.0)), [[1.0]])


GOOD_LOGITS = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.5]])


@pytest.mark.parametrize(
    ("logits", "labels", "match"),
    [
        (GOOD_LOGITS[0], [0], "logits must be 2-D"),
        (np.zeros((0, 3)), [], "logits is empty"),
        (np.zeros((2, 1)), [0, 0], "at least 2 classes"),
        ([[1.0, np.nan, 0.0], [0.0, 1.0, 0.0]], [0, 1], "logits must be finite"),
        ([[1.0, -np.inf, 0.0], [0.0, 1.0, 0.0]], [0, 1], "logits must be finite"),
        ([["a", "b"]], [0], "logits must be numeric"),
        (GOOD_LOGITS, [0], r"labels has shape \(1,\)"),
        (GOOD_LOGITS, [[0, 1]], "labels must be 1-D"),
        (GOOD_LOGITS, [0, 3], r"labels must be in \[0, 3\)"),
        (GOOD_LOGITS, [-1, 0], r"labels must be in \[0, 3\)"),
        (GOOD_LOGITS, [0.5, 1.0], "integer class indices"),
        (GOOD_LOGITS, np.array([True, False]), "integer class indices"),
        (np.ones((2, 3)), [0, 1], "every row of logits is constant"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan"), "2", True, None])
def test_bad_temperatures_are_refused(bad):
    with pytest.raises(ValueError, match="temperature must be"):
        apply_temperature(GOOD_LOGITS, bad)
    with pytest.raises(ValueError, match="temperature must be"):
        TemperatureScaling(bad)


@pytest.mark.parametrize("bounds", [(0.0, 1.0), (2.0, 1.0), (1.0, float("inf")), (1.0,), "ab"])
def test_bad_bounds_are_refused(bounds):
    with pytest.raises(ValueError, match="bounds must"):
        fit_temperature(GOOD_LOGITS, [0, 1], bounds=bounds)
