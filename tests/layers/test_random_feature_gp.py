"""SNGP's random-feature GP layer: features, Laplace precision and its per-epoch reset, covariance
and mean-field logits, each against a NumPy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from uqbench.layers import RandomFeatureGaussianProcess, mean_field_logits, reset_each_epoch
from uqbench.layers.random_feature_gp import orthogonal_random_features
from uqbench.training.classifier import Recipe, Runtime, fit


def test_features_and_logits_match_numpy():
    torch.manual_seed(0)
    gp = RandomFeatureGaussianProcess(6, 3, num_features=16, kernel_scale=4.0).train()
    x = torch.randn(5, 6)
    w, b = gp.feature_weight.double().numpy(), gp.feature_bias.double().numpy()
    phi = np.cos(x.double().numpy() / 2.0 @ w + b)
    np.testing.assert_allclose(gp.features(x).numpy(), phi, rtol=1e-5, atol=1e-5)
    beta = gp.output.weight.detach().double().numpy()
    np.testing.assert_allclose(gp(x).detach().numpy(), phi @ beta.T, rtol=1e-4, atol=1e-5)


def test_orthogonal_features_have_orthogonal_columns_within_a_block():
    w = orthogonal_random_features(8, 20, 0.5, torch.Generator().manual_seed(0)).double()
    block = w[:, :8] / w[:, :8].norm(dim=0)
    torch.testing.assert_close(
        block.T @ block, torch.eye(8, dtype=torch.float64), atol=1e-5, rtol=0
    )
    assert w.shape == (8, 20)


def test_precision_covariance_and_mean_field_logits_match_numpy():
    torch.manual_seed(1)
    gp = RandomFeatureGaussianProcess(
        4, 3, num_features=10, ridge=0.5, mean_field_factor=math.pi / 8
    )
    batches = [torch.randn(7, 4), torch.randn(5, 4)]
    gp.train()
    for x in batches:
        gp(x)
    phi = np.concatenate([gp.features(x).double().numpy() for x in batches])
    precision = phi.T @ phi
    np.testing.assert_allclose(gp.precision.numpy(), precision, rtol=1e-5, atol=1e-5)
    gp.eval()
    test = torch.randn(6, 4)
    phi_test = gp.features(test).double().numpy()
    covariance = np.linalg.inv(0.5 * np.eye(10) + precision)
    variance = 0.5 * np.einsum("bi,ij,bj->b", phi_test, covariance, phi_test)
    logits = phi_test @ gp.output.weight.detach().double().numpy().T
    expected = logits / np.sqrt(1 + math.pi / 8 * variance)[:, None]
    np.testing.assert_allclose(gp(test).detach().numpy(), expected, rtol=1e-4, atol=1e-5)
    # A far-away input has a larger variance than a training input.
    far = gp.predictive_variance(gp.features(100 * torch.randn(1, 4)))
    near = gp.predictive_variance(gp.features(batches[0][:1]))
    assert far.item() > near.item()


def test_moving_average_precision():
    torch.manual_seed(2)
    gp = RandomFeatureGaussianProcess(3, 2, num_features=5, momentum=0.9).train()
    a, b = torch.randn(4, 3), torch.randn(6, 3)
    gp(a)
    gp(b)
    pa, pb = gp.features(a).double().numpy(), gp.features(b).double().numpy()
    expected = 0.9 * (0.1 * pa.T @ pa / 4) + 0.1 * pb.T @ pb / 6
    np.testing.assert_allclose(gp.precision.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_mean_field_hand_computation_and_mode():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])
    variances = torch.tensor([3.0, 0.0])
    out = mean_field_logits(logits, variances, 1.0)
    torch.testing.assert_close(out, torch.tensor([[1.0, -0.5], [0.5, 0.5]]))
    torch.testing.assert_close(mean_field_logits(logits, variances, -1.0), logits)


def test_fit_with_reset_keeps_the_last_epochs_features_only():
    torch.manual_seed(3)
    gp = RandomFeatureGaussianProcess(12, 3, num_features=8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), gp)
    seen: list[torch.Tensor] = []
    gp.register_forward_hook(
        lambda m, args, out: seen.append(m.features(args[0]).detach()) if m.training else None
    )
    images = torch.randint(0, 256, (40, 1, 4, 4), dtype=torch.uint8)
    labels = torch.randint(0, 3, (40,))
    recipe = Recipe(epochs=3, batch_size=16, learning_rate=0.01, crop_padding=0, flip=False)
    fit(
        model,
        images,
        labels,
        (0.5,),
        (0.25,),
        recipe,
        Runtime(torch.device("cpu")),
        quiet=True,
        on_epoch_end=reset_each_epoch(gp, recipe.epochs),
    )
    assert len(seen) == 3 * 2  # 2 full batches per epoch
    # The hook sees features computed before that step's update, the same ones the layer
    # accumulated (the random features are fixed and the input was the hook's argument).
    last = torch.cat(seen[-2:]).double().numpy()
    np.testing.assert_allclose(gp.precision.numpy(), last.T @ last, rtol=1e-5, atol=1e-4)
    everything = torch.cat(seen).double().numpy()
    assert not np.allclose(gp.precision.numpy(), everything.T @ everything, atol=1e-2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="feature_type"):
        RandomFeatureGaussianProcess(3, 2, feature_type="laplace")
    with pytest.raises(ValueError, match="momentum"):
        RandomFeatureGaussianProcess(3, 2, momentum=1.0)
    with pytest.raises(ValueError, match="ridge"):
        RandomFeatureGaussianProcess(3, 2, ridge=0.0)
