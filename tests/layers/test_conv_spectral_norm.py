"""The convolution-operator spectral bound (SNGP) against the convolution written out as a dense
matrix, whose exact largest singular value NumPy computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from uqbench.layers import spectral_normalize_convs, spectral_normalized_conv


def dense_operator(conv: nn.Conv2d, input_shape: tuple[int, int, int]) -> np.ndarray:
    """The matrix of ``x -> conv(x)`` without bias: one column per input basis vector."""
    size = int(np.prod(input_shape))
    basis = torch.eye(size).reshape(size, *input_shape)
    with torch.no_grad():
        weight = conv.weight
        columns = nn.functional.conv2d(
            basis, weight, None, conv.stride, conv.padding, conv.dilation, conv.groups
        )
    return columns.reshape(size, -1).T.double().numpy()


def operator_norm(conv: nn.Conv2d, input_shape: tuple[int, int, int]) -> float:
    return float(np.linalg.norm(dense_operator(conv, input_shape), ord=2))


def train_steps(conv: nn.Conv2d, input_shape: tuple[int, int, int], steps: int) -> None:
    conv.train()
    with torch.no_grad():
        for _ in range(steps):
            conv(torch.zeros(1, *input_shape))


@pytest.mark.parametrize(
    ("stride", "padding", "kernel", "shape"),
    [(1, 1, 3, (3, 6, 6)), (2, 1, 3, (3, 7, 7)), (2, 0, 1, (4, 6, 6))],
)
def test_sigma_is_the_operator_norm_and_the_bound_holds(stride, padding, kernel, shape):
    torch.manual_seed(0)
    conv = nn.Conv2d(shape[0], 5, kernel, stride, padding, bias=True)
    with torch.no_grad():
        conv.weight.mul_(4.0)
    exact = operator_norm(conv, shape)
    reshaped = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2).item()
    coefficient = 0.5 * exact
    spectral_normalized_conv(conv, shape, coefficient, n_power_iterations=1)
    train_steps(conv, shape, 200)
    bound = conv.parametrizations.weight[0]
    sigma = bound.sigma(conv.parametrizations.weight.original).item()
    assert sigma == pytest.approx(exact, rel=1e-3)
    bounded = operator_norm(conv, shape)  # conv.weight is the bounded weight
    assert bounded <= coefficient * (1 + 1e-3)
    assert bounded == pytest.approx(coefficient, rel=1e-3)
    if kernel == 3:  # the reshaped kernel's norm is not the operator's: the old proxy was wrong
        assert abs(reshaped - exact) > 0.05 * exact


def test_weights_inside_the_bound_are_unchanged_and_eval_is_fixed():
    torch.manual_seed(1)
    shape = (2, 5, 5)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    raw = conv.weight.detach().clone()
    exact = operator_norm(conv, shape)
    spectral_normalized_conv(conv, shape, coefficient=2 * exact)
    train_steps(conv, shape, 50)
    torch.testing.assert_close(conv.weight.detach(), raw)
    conv.eval()
    u = conv.parametrizations.weight[0]._u.clone()
    conv(torch.randn(4, *shape))
    torch.testing.assert_close(conv.parametrizations.weight[0]._u, u)


def test_every_conv_of_a_residual_network_is_bounded_with_its_own_input_shape():
    from uqbench.models import get

    torch.manual_seed(0)
    model = get("resnet8", num_classes=3, in_channels=1, image_size=8)
    spectral_normalize_convs(model, torch.zeros(2, 1, 8, 8), coefficient=1.0)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shapes = [c.parametrizations.weight[0].input_shape for c in convs]
    assert shapes == [
        (1, 8, 8),
        (16, 8, 8),
        (16, 8, 8),
        (16, 8, 8),
        (32, 4, 4),
        (32, 4, 4),
        (64, 2, 2),
    ]
    for conv in convs:
        train_steps(conv, conv.parametrizations.weight[0].input_shape, 60)
        assert operator_norm(conv, conv.parametrizations.weight[0].input_shape) <= 1.0 + 1e-2
    model.eval()
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_refuses_what_it_cannot_bound():
    with pytest.raises(ValueError, match="C_in=2"):
        spectral_normalized_conv(nn.Conv2d(2, 3, 3), (3, 5, 5))
    with pytest.raises(ValueError, match="zero padding"):
        spectral_normalized_conv(nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 5, 5))
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        spectral_normalize_convs(nn.Linear(3, 2), torch.zeros(1, 3))
