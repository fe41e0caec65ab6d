"""Spectral normalisation: the bound against exact singular values and against torch's own
spectral_norm, buffers and modes, gradients, state dicts, and the residual blocks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from uqbench.layers import (
    BatchEnsembleConv2d,
    SpectralConvResidualBlock,
    SpectralResidualBlock,
    spectral_normalized,
)


def matrix_norm(weight: torch.Tensor) -> float:
    """Exact largest singular value of the weight reshaped to ``(out, -1)``."""
    return torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2).item()


def with_norm(module: nn.Module, sigma: float) -> nn.Module:
    """``module`` with its weight rescaled to spectral norm ``sigma`` (before wrapping)."""
    with torch.no_grad():
        module.weight.mul_(sigma / matrix_norm(module.weight))
    return module


def bound_of(module: nn.Module, name: str = "weight"):
    return getattr(module.parametrizations, name)[0]


def converge(module: nn.Module, x: torch.Tensor, steps: int = 30) -> None:
    module.train()
    with torch.no_grad():
        for _ in range(steps):
            module(x)
    module.eval()


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: nn.Linear(12, 7), (3, 12)),
        (lambda: nn.Conv2d(4, 6, 3), (2, 4, 6, 6)),
        (lambda: BatchEnsembleConv2d(4, 6, 3, 2), (2, 4, 6, 6)),
    ],
    ids=["linear", "conv", "batch_ensemble_conv"],
)
def test_a_large_weight_is_scaled_down_to_the_coefficient(make, shape):
    torch.manual_seed(0)
    module = with_norm(make(), 5.0)
    raw = module.weight.detach().clone()
    assert spectral_normalized(module, coefficient=0.95) is module
    converge(module, torch.randn(shape))
    assert matrix_norm(module.weight) <= 0.95 + 1e-4
    assert matrix_norm(module.weight) == pytest.approx(0.95, abs=1e-3)
    torch.testing.assert_close(module.parametrizations.weight.original, raw)
    torch.testing.assert_close(module.weight, raw * 0.95 / matrix_norm(raw), atol=1e-4, rtol=0)


@pytest.mark.parametrize("make", [lambda: nn.Linear(12, 7), lambda: nn.Conv2d(4, 6, 3)])
def test_a_weight_within_the_bound_is_unchanged(make):
    torch.manual_seed(1)
    module = with_norm(make(), 0.5)
    raw = module.weight.detach().clone()
    spectral_normalized(module, coefficient=0.95)
    module.train()
    assert torch.equal(module.weight, raw)
    module.eval()
    assert torch.equal(module.weight, raw)


def test_matches_torch_spectral_norm_times_the_coefficient_with_the_same_vectors():
    torch.manual_seed(2)
    ours = with_norm(nn.Conv2d(3, 5, 3), 4.0)
    theirs = copy.deepcopy(ours)
    spectral_normalized(ours, coefficient=2.0, n_power_iterations=2)
    torch_spectral_norm(theirs, n_power_iterations=2)
    with torch.no_grad():
        bound_of(ours)._u.copy_(bound_of(theirs)._u)
        bound_of(ours)._v.copy_(bound_of(theirs)._v)
    x = torch.randn(2, 3, 7, 7)
    for mode in ("train", "train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        ours(x)
        theirs(x)
        torch.testing.assert_close(ours.weight, 2.0 * theirs.weight)
        torch.testing.assert_close(bound_of(ours)._u, bound_of(theirs)._u)


def test_power_iteration_runs_in_training_mode_only():
    torch.manual_seed(3)
    module = spectral_normalized(with_norm(nn.Linear(10, 10), 3.0))
    bound = bound_of(module)
    with torch.no_grad():
        bound._u.normal_()
    u = bound._u.clone()
    x = torch.randn(4, 10)
    module.eval()
    first = module(x)
    assert torch.equal(bound._u, u)
    torch.testing.assert_close(module(x), first)
    module.train()
    module(x)
    assert not torch.equal(bound._u, u)


def test_gradients_flow_to_the_raw_weight_and_match_finite_differences():
    torch.manual_seed(4)
    module = spectral_normalized(with_norm(nn.Linear(5, 4), 3.0).double(), coefficient=0.9)
    module.eval()
    x = torch.randn(6, 5, dtype=torch.float64)
    module(x).square().sum().backward()
    assert module.parametrizations.weight.original.grad.abs().sum() > 0
    assert module.bias.grad.abs().sum() > 0

    def output(weight: torch.Tensor) -> torch.Tensor:
        params = {"parametrizations.weight.original": weight, "bias": module.bias}
        return torch.func.functional_call(module, params, (x,))

    original = module.parametrizations.weight.original.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(output, (original,))


def test_functional_call_uses_the_substituted_weight():
    torch.manual_seed(5)
    module = spectral_normalized(nn.Linear(6, 3), coefficient=0.5).eval()
    bound = bound_of(module)
    original = module.parametrizations.weight.original.detach()
    x = torch.randn(2, 6)
    for weight in (4 * original + 0.01 * torch.randn(3, 6), 0.1 * original):
        params = {"parametrizations.weight.original": weight}
        y = torch.func.functional_call(module, params, (x,))
        sigma = (bound._u @ weight @ bound._v).item()
        expected = x @ (weight * min(1.0, 0.5 / sigma)).T + module.bias
        torch.testing.assert_close(y, expected)
    assert 4 * matrix_norm(original) > 0.5 > 0.1 * matrix_norm(original)


def test_state_dict_round_trip_and_deepcopy():
    torch.manual_seed(6)
    module = spectral_normalized(with_norm(nn.Conv2d(2, 3, 3), 2.0))
    converge(module, torch.randn(1, 2, 5, 5), steps=3)
    state = module.state_dict()
    assert {"parametrizations.weight.original", "parametrizations.weight.0._u"} <= set(state)
    fresh = spectral_normalized(nn.Conv2d(2, 3, 3)).eval()
    fresh.load_state_dict(state)
    x = torch.randn(2, 2, 5, 5)
    torch.testing.assert_close(fresh(x), module(x))
    torch.testing.assert_close(copy.deepcopy(module)(x), module(x))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="2 or more dimensions"):
        spectral_normalized(nn.Linear(3, 2), name="bias")
    with pytest.raises(ValueError, match="no parameter"):
        spectral_normalized(nn.ReLU())
    with pytest.raises(ValueError, match="coefficient"):
        spectral_normalized(nn.Linear(3, 2), coefficient=0.0)
    with pytest.raises(ValueError, match="n_power_iterations"):
        spectral_normalized(nn.Linear(3, 2), n_power_iterations=0)
    with pytest.raises(ValueError, match="dropout"):
        SpectralResidualBlock(4, dropout=1.0)


@pytest.mark.parametrize(("hidden", "lipschitz"), [(None, 0.9), (16, 0.81)])
def test_residual_block_is_bi_lipschitz_once_converged(hidden, lipschitz):
    torch.manual_seed(7)
    block = SpectralResidualBlock(8, hidden=hidden, coefficient=0.9, dropout=0.2)
    with torch.no_grad():
        for module in block.modules():
            if isinstance(module, nn.Linear):
                module.parametrizations.weight.original.mul_(10.0)
    converge(block, torch.randn(16, 8), steps=50)
    x, y = torch.randn(2, 500, 8)
    with torch.no_grad():
        ratio = (block(x) - block(y)).norm(dim=1) / (x - y).norm(dim=1)
    assert ratio.min() >= 1 - lipschitz - 1e-4
    assert ratio.max() <= 1 + lipschitz + 1e-4
    assert block(x).shape == x.shape
    assert block.config["hidden"] == hidden
    block.train()
    assert not torch.equal(block(x), block(x))


def test_conv_residual_block_keeps_shape_bounds_its_kernels_and_trains():
    torch.manual_seed(8)
    block = SpectralConvResidualBlock(4, coefficient=0.5)
    assert block.config == {"channels": 4, "coefficient": 0.5, "n_power_iterations": 1}
    x = torch.randn(3, 4, 6, 6)
    converge(block, x)
    for conv in (block.conv1, block.conv2):
        assert matrix_norm(conv.weight) <= 0.5 + 1e-4
    block.train()
    out = block(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert block.conv1.parametrizations.weight.original.grad.abs().sum() > 0
    assert block.bn1.weight.grad.abs().sum() > 0
