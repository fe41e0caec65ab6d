"""BatchEnsemble layers against hand-built per-member nn.Linear / F.conv2d references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uqbench.layers import (
    BatchEnsembleConv2d,
    BatchEnsembleLinear,
    member_mean,
    split_members,
    tile_members,
)


def randomise_(layer: nn.Module) -> None:
    """Give every parameter generic values, so no reference can pass by symmetry."""
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.normal_()


def test_linear_equals_separate_linear_layers_with_rank1_weights():
    torch.manual_seed(0)
    ensemble, batch = 3, 5
    layer = BatchEnsembleLinear(4, 6, ensemble)
    randomise_(layer)
    x = torch.randn(ensemble * batch, 4)
    y = layer(x)
    assert y.shape == (ensemble * batch, 6)
    for e in range(ensemble):
        member = nn.Linear(4, 6)
        with torch.no_grad():
            member.weight.copy_(layer.weight * torch.outer(layer.s[e], layer.r[e]))
            member.bias.copy_(layer.bias[e])
        rows = slice(e * batch, (e + 1) * batch)
        torch.testing.assert_close(y[rows], member(x[rows]))


def test_linear_keeps_extra_dimensions_and_works_without_bias():
    torch.manual_seed(1)
    ensemble, batch = 2, 3
    layer = BatchEnsembleLinear(4, 5, ensemble, bias=False)
    randomise_(layer)
    assert layer.bias is None
    x = torch.randn(ensemble * batch, 7, 4)
    y = layer(x)
    assert y.shape == (ensemble * batch, 7, 5)
    for e in range(ensemble):
        weight = layer.weight * torch.outer(layer.s[e], layer.r[e])
        rows = slice(e * batch, (e + 1) * batch)
        torch.testing.assert_close(y[rows], x[rows] @ weight.T)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation"), [(1, 0, 1), (2, 1, 1), (1, "same", 2), ((1, 2), (2, 0), 1)]
)
def test_conv_equals_per_member_convolutions_with_scaled_kernels(stride, padding, dilation):
    torch.manual_seed(2)
    ensemble, batch = 3, 2
    layer = BatchEnsembleConv2d(
        3, 4, 3, ensemble, stride=stride, padding=padding, dilation=dilation
    )
    randomise_(layer)
    x = torch.randn(ensemble * batch, 3, 9, 8)
    y = layer(x)
    for e in range(ensemble):
        kernel = layer.weight * layer.s[e].view(-1, 1, 1, 1) * layer.r[e].view(1, -1, 1, 1)
        rows = slice(e * batch, (e + 1) * batch)
        expected = F.conv2d(x[rows], kernel, layer.bias[e], stride, padding, dilation)
        torch.testing.assert_close(y[rows], expected)
    assert y.shape[0] == ensemble * batch


def test_conv_keeps_channels_last_inputs_correct():
    torch.manual_seed(3)
    layer = BatchEnsembleConv2d(3, 5, (3, 1), 2, padding=1)
    randomise_(layer)
    x = torch.randn(4, 3, 6, 6)
    expected = layer(x)
    torch.testing.assert_close(layer(x.to(memory_format=torch.channels_last)), expected)


@pytest.mark.parametrize(
    "layer", [BatchEnsembleLinear(4, 2, 3), BatchEnsembleConv2d(2, 2, 3, 3)], ids=["linear", "conv"]
)
def test_batch_not_divisible_by_ensemble_size_is_a_clear_error(layer):
    x = torch.randn(10, 4) if isinstance(layer, BatchEnsembleLinear) else torch.randn(10, 2, 5, 5)
    with pytest.raises(ValueError, match=r"10 rows is not divisible by ensemble_size=3"):
        layer(x)


def test_wrong_feature_sizes_and_arguments_are_refused():
    with pytest.raises(ValueError, match="expects input"):
        BatchEnsembleLinear(4, 2, 2)(torch.randn(4, 5))
    with pytest.raises(ValueError, match="expects input"):
        BatchEnsembleConv2d(3, 2, 3, 2)(torch.randn(4, 2, 5, 5))
    with pytest.raises(ValueError, match="ensemble_size"):
        BatchEnsembleLinear(4, 2, 0)
    with pytest.raises(ValueError, match="fast_weight_init"):
        BatchEnsembleLinear(4, 2, 2, fast_weight_init="zeros")
    with pytest.raises(ValueError, match="kernel_size"):
        BatchEnsembleConv2d(3, 2, (3, 3, 3), 2)


def test_tile_split_and_mean_use_the_members_major_layout():
    x = torch.arange(12.0).view(3, 4)
    tiled = tile_members(x, 2)
    torch.testing.assert_close(tiled, torch.cat([x, x]))
    members = split_members(tiled * torch.tensor([1.0] * 3 + [3.0] * 3).view(-1, 1), 2)
    assert members.shape == (2, 3, 4)
    torch.testing.assert_close(members[1], 3 * x)
    weighted = tiled * torch.arange(1.0, 7.0).view(-1, 1)
    torch.testing.assert_close(member_mean(weighted, 2), x * torch.tensor([[2.5], [3.5], [4.5]]))
    with pytest.raises(ValueError, match="not divisible"):
        member_mean(torch.zeros(5, 2), 2)


def test_tiled_members_with_equal_fast_weights_agree():
    torch.manual_seed(4)
    layer = BatchEnsembleLinear(3, 2, 4, fast_weight_init="ones")
    y = split_members(layer(tile_members(torch.randn(5, 3), 4)), 4)
    for e in range(1, 4):
        torch.testing.assert_close(y[e], y[0])


def test_fast_weight_initialisations():
    torch.manual_seed(5)
    signs = BatchEnsembleLinear(64, 64, 8)
    for fast in (signs.r, signs.s):
        assert set(fast.unique().tolist()) == {-1.0, 1.0}
    assert torch.count_nonzero(signs.bias) == 0
    normal = BatchEnsembleConv2d(64, 64, 1, 8, fast_weight_init="normal")
    assert normal.r.mean().item() == pytest.approx(1.0, abs=0.1)
    assert normal.r.std().item() == pytest.approx(0.5, abs=0.1)
    ones = BatchEnsembleLinear(5, 3, 2, fast_weight_init="ones")
    assert bool((ones.r == 1).all()) and bool((ones.s == 1).all())
    bound = 1 / 64**0.5
    assert signs.weight.abs().max().item() <= bound


def test_gradients_reach_shared_and_fast_weights():
    torch.manual_seed(6)
    for layer, x in (
        (BatchEnsembleLinear(3, 2, 2), torch.randn(4, 3)),
        (BatchEnsembleConv2d(2, 3, 3, 2, padding=1), torch.randn(4, 2, 5, 5)),
    ):
        layer(x).square().sum().backward()
        for name, parameter in layer.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_functional_call_matches_the_reference_with_substituted_parameters():
    torch.manual_seed(7)
    layer = BatchEnsembleLinear(3, 2, 2)
    params = {name: torch.randn_like(p) for name, p in layer.named_parameters()}
    x = torch.randn(6, 3)
    y = torch.func.functional_call(layer, params, (x,))
    for e in range(2):
        weight = params["weight"] * torch.outer(params["s"][e], params["r"][e])
        rows = slice(3 * e, 3 * e + 3)
        torch.testing.assert_close(y[rows], x[rows] @ weight.T + params["bias"][e])


@pytest.mark.parametrize(
    ("cls", "kwargs", "shape"),
    [
        (BatchEnsembleLinear, {"in_features": 3, "out_features": 2, "ensemble_size": 2}, (4, 3)),
        (
            BatchEnsembleConv2d,
            {
                "in_channels": 2,
                "out_channels": 3,
                "kernel_size": 3,
                "ensemble_size": 2,
                "padding": 1,
            },
            (4, 2, 5, 5),
        ),
    ],
)
def test_config_rebuilds_the_layer_and_state_dict_round_trips(cls, kwargs, shape):
    torch.manual_seed(8)
    layer = cls(**kwargs)
    assert layer.ensemble_size == 2
    assert all(layer.config[key] == value for key, value in kwargs.items())
    rebuilt = cls(**layer.config)
    rebuilt.load_state_dict(layer.state_dict())
    x = torch.randn(shape)
    torch.testing.assert_close(rebuilt(x), layer(x))
