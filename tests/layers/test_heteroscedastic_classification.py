"""The heteroscedastic softmax head (Collier et al. 2021) against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax
from torch import nn

from uqbench.layers.heteroscedastic_classification import (
    HeteroscedasticSoftmaxHead,
    attach_heteroscedastic_head,
    mc_log_mean_softmax,
    sample_logits,
)


def _head(**options: object) -> HeteroscedasticSoftmaxHead:
    torch.manual_seed(0)
    return HeteroscedasticSoftmaxHead(6, 5, **options)


def test_zero_noise_at_temperature_one_is_the_deterministic_head() -> None:
    head = _head(num_factors=2, temperature=1.0, min_scale=0.0, test_mc_samples=7)
    with torch.no_grad():
        head.factor_layer.weight.zero_()
        head.factor_layer.bias.zero_()
        head.diagonal_layer.weight.zero_()
        head.diagonal_layer.bias.fill_(-200.0)  # softplus underflows to exactly 0
    features = torch.randn(4, 6)
    out = head.eval()(features)
    deterministic = head.loc(features)
    torch.testing.assert_close(out, deterministic.log_softmax(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(out.softmax(-1), deterministic.softmax(-1), atol=1e-7, rtol=0)


def test_sampled_logits_have_covariance_v_vt_plus_diag_d_squared() -> None:
    torch.manual_seed(1)
    loc = torch.randn(1, 4, dtype=torch.float64)
    factors = torch.randn(1, 4, 2, dtype=torch.float64)
    diagonal = torch.rand(1, 4, dtype=torch.float64) + 0.2
    samples = 200_000
    noise_r = torch.randn(samples, 2, dtype=torch.float64)
    noise_k = torch.randn(samples, 4, dtype=torch.float64)
    u = sample_logits(loc, factors, diagonal, noise_r, noise_k)[0].numpy()
    expected = (factors[0] @ factors[0].T + torch.diag(diagonal[0] ** 2)).numpy()
    covariance = np.cov(u, rowvar=False)
    # Standard error of a sample covariance entry: sqrt((S_ii S_jj + S_ij^2) / n).
    se = np.sqrt((np.outer(np.diag(expected), np.diag(expected)) + expected**2) / samples)
    assert np.all(np.abs(covariance - expected) < 5 * se)
    assert np.all(np.abs(u.mean(0) - loc[0].numpy()) < 5 * np.sqrt(np.diag(expected) / samples))


def test_mc_probability_matches_numpy_with_the_same_draws() -> None:
    head = _head(num_factors=3, temperature=1.3, share_samples=True)
    features = torch.randn(3, 6)
    torch.manual_seed(5)
    eps_r, eps_k = torch.randn(50, 3), torch.randn(50, 5)
    loc, factors, diagonal = (t.detach() for t in head.noise_parameters(features))
    ours = mc_log_mean_softmax(loc, factors, diagonal, eps_r, eps_k, temperature=1.3)
    mu, v, d = loc.double().numpy(), factors.double().numpy(), diagonal.double().numpy()
    er, ek = eps_r.double().numpy(), eps_k.double().numpy()
    for b in range(3):
        latent = mu[b] + er @ v[b].T + d[b] * ek  # (S, K)
        reference = np.log(softmax(latent / 1.3, axis=-1).mean(axis=0))
        np.testing.assert_allclose(ours[b].numpy(), reference, atol=2e-6)
    # The head itself, with its draws replayed from the same seed, gives the same numbers.
    torch.manual_seed(5)
    head.config["test_mc_samples"] = 50
    torch.testing.assert_close(head.eval()(features), ours, atol=1e-6, rtol=0)


def test_log_mean_is_exact_where_probabilities_underflow_and_chunks_agree(monkeypatch) -> None:
    loc = torch.tensor([[0.0, 200.0, -200.0]])
    factors = torch.zeros(1, 3, 1)
    diagonal = torch.full((1, 3), 30.0)
    eps_r, eps_k = torch.randn(64, 1), torch.randn(64, 3)
    whole = mc_log_mean_softmax(loc, factors, diagonal, eps_r, eps_k)
    assert torch.isfinite(whole).all()
    latent = (loc + diagonal * eps_k).double().numpy()
    reference = logsumexp(latent - logsumexp(latent, axis=1, keepdims=True), axis=0) - np.log(64)
    np.testing.assert_allclose(whole[0].numpy(), reference, rtol=1e-5)
    monkeypatch.setattr(
        "uqbench.layers.heteroscedastic_classification.CHUNK_ELEMENTS", 3 * 5
    )  # chunks of 5 samples
    torch.testing.assert_close(mc_log_mean_softmax(loc, factors, diagonal, eps_r, eps_k), whole)


def test_per_example_noise_and_sample_counts() -> None:
    head = _head(num_factors=1, share_samples=False, train_mc_samples=3, test_mc_samples=9)
    eps_r, eps_k = head.draw_noise(4, 9, torch.zeros(1))
    assert eps_r.shape == (4, 9, 1) and eps_k.shape == (4, 9, 5)
    out = head.train()(torch.randn(4, 6))
    assert out.shape == (4, 5)
    torch.testing.assert_close(out.exp().sum(-1), torch.ones(4))
    out.sum().backward()  # every layer of the head gets a gradient through the samples
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_attach_replaces_the_output_layer_and_bad_settings_fail() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    head = attach_heteroscedastic_head(model, 4, num_factors=2, test_mc_samples=10)
    assert model[3] is head and head.loc.in_features == 16
    assert model.eval()(torch.randn(2, 2, 4)).shape == (2, 4)
    with pytest.raises(ValueError, match="no nn.Linear with 7 outputs"):
        attach_heteroscedastic_head(nn.Sequential(nn.Linear(3, 4)), 7)
    with pytest.raises(ValueError, match="num_factors must be in"):
        HeteroscedasticSoftmaxHead(3, 4, num_factors=5)
    with pytest.raises(ValueError, match="temperature must be positive"):
        HeteroscedasticSoftmaxHead(3, 4, temperature=0.0)
    with pytest.raises(ValueError, match="at least 1"):
        HeteroscedasticSoftmaxHead(3, 4, train_mc_samples=0)
