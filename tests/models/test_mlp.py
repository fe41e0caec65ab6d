"""The batched layers and MLP against plain PyTorch layers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from uqbench.layers.batched_linear import BatchedLinear
from uqbench.layers.gaussian_head import gaussian_mean_variance
from uqbench.layers.mc_dropout import MCDropout, mc_dropout
from uqbench.models.mlp import MLP


def test_batched_linear_equals_one_linear_per_model():
    torch.manual_seed(0)
    layer = BatchedLinear(4, 3, 5)
    x = torch.randn(4, 7, 3)
    out = layer(x)
    for b in range(4):
        expected = F.linear(x[b], layer.weight[b].T, layer.bias[b, 0])
        torch.testing.assert_close(out[b], expected)
    shared = torch.randn(7, 3)
    torch.testing.assert_close(
        layer(shared)[2], F.linear(shared, layer.weight[2].T, layer.bias[2, 0])
    )


def test_batched_linear_rejects_wrong_shapes():
    layer = BatchedLinear(2, 3, 5)
    with pytest.raises(ValueError, match=r"\(2, N, 3\)"):
        layer(torch.randn(3, 7, 3))
    with pytest.raises(ValueError, match="positive"):
        BatchedLinear(0, 3, 5)


def test_mlp_models_are_independent_networks():
    torch.manual_seed(0)
    model = MLP(3, (8,), 2, num_models=3)
    x = torch.randn(10, 3)
    out = model(x)
    assert out.shape == (3, 10, 2)
    first, second = model.layers[0], model.layers[2]
    for b in range(3):
        hidden = torch.relu(x @ first.weight[b] + first.bias[b])
        torch.testing.assert_close(out[b], hidden @ second.weight[b] + second.bias[b])
    # The gradient of model 0's output reaches only model 0's parameters.
    model(x)[0].sum().backward()
    assert model.layers[0].weight.grad[1:].abs().sum() == 0
    assert model.layers[0].weight.grad[0].abs().sum() > 0


def test_dropout_rates_per_model_and_mc_switch():
    torch.manual_seed(0)
    dropout = MCDropout(3, [0.0, 0.5, 0.9])
    x = torch.ones(3, 20000, 1)
    out = dropout(x)
    kept = (out != 0).float().mean(dim=(1, 2))
    torch.testing.assert_close(kept, torch.tensor([1.0, 0.5, 0.1]), atol=0.02, rtol=0)
    torch.testing.assert_close(out.mean(dim=(1, 2)), torch.ones(3), atol=0.05, rtol=0)
    dropout.eval()
    assert torch.equal(dropout(x), x)
    dropout.mc = True
    assert not torch.equal(dropout(x), x)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        MCDropout(2, [0.1, 1.0])


def test_gaussian_head_variance_positive_and_softplus():
    out = torch.tensor([[0.5, -30.0], [1.0, 0.0], [2.0, 30.0]])
    mean, var = gaussian_mean_variance(out)
    torch.testing.assert_close(mean, out[:, 0])
    torch.testing.assert_close(var, F.softplus(out[:, 1]) + 1e-6)
    assert (var > 0).all()
    with pytest.raises(ValueError, match="last dimension of 2"):
        gaussian_mean_variance(torch.zeros(3, 3))


def test_noise_groups_share_draws_within_a_block_only():
    """Common random numbers: in a block, a lower rate keeps a superset of a higher rate's
    units; blocks draw independently; each model still keeps 1 - rate of its units."""
    torch.manual_seed(0)
    rates = [0.1, 0.5, 0.1, 0.5]
    dropout = MCDropout(4, rates, noise_groups=2)
    out = dropout(torch.ones(4, 20000, 3))
    kept = out != 0
    assert bool((kept[0] | ~kept[1]).all()) and bool((kept[2] | ~kept[3]).all())
    assert not torch.equal(kept[0], kept[2])
    torch.testing.assert_close(
        kept.float().mean(dim=(1, 2)), 1 - torch.tensor(rates), atol=0.01, rtol=0
    )
    torch.testing.assert_close(out.mean(dim=(1, 2)), torch.ones(4), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="noise_groups"):
        MCDropout(4, 0.1, noise_groups=3)


def test_dropout_state_loaded_into_a_zero_rate_module_is_used():
    source = MCDropout(2, [0.5, 0.5])
    target = MCDropout(2, 0.0)
    target.load_state_dict(source.state_dict())
    assert not torch.equal(target(torch.ones(2, 100, 4)), torch.ones(2, 100, 4))


def test_mc_dropout_context_samples_only_inside_and_keeps_batch_norm_in_eval():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 32), torch.nn.BatchNorm1d(32), torch.nn.Dropout(0.5)
    )
    model.eval()
    x = torch.randn(8, 4)
    reference = model(x)
    with mc_dropout(model):
        assert model[1].training is False and model[2].training is True
        assert not torch.equal(model(x), model(x))
    assert model[2].training is False and torch.equal(model(x), reference)
    batched = MLP(3, (8,), 1, num_models=2, dropout_rate=0.3)
    batched.eval()
    with mc_dropout(batched):
        assert not torch.equal(batched(torch.ones(5, 3)), batched(torch.ones(5, 3)))
    assert torch.equal(batched(torch.ones(5, 3)), batched(torch.ones(5, 3)))
