"""BatchEnsemble / rank-1 BNN versions of whole networks: exactness against the base network,
optimiser groups, and the rank-1 KL term against torch.distributions."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D
from torch import nn

from uqbench import models
from uqbench.layers.batch_ensemble import batch_ensemble_model, parameter_groups
from uqbench.layers.rank1 import Rank1Conv2d, Rank1Linear, kl_divergence, rank1_model
from uqbench.training.classifier import Recipe, make_optimizer


def _randomise_batch_norm_(model: nn.Module) -> None:
    """Non-trivial running statistics and affine parameters, so eval mode is a real test."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()


@pytest.mark.parametrize(
    ("name", "shape"),
    [("lenet", (1, 8, 8)), ("resnet20", (3, 16, 16)), ("wrn16_1", (3, 16, 16))],
)
def test_unit_fast_weights_make_every_member_the_base_network(name, shape):
    torch.manual_seed(0)
    base = models.get(name, num_classes=5, in_channels=shape[0], image_size=shape[1])
    _randomise_batch_norm_(base)
    base.eval()
    x = torch.randn(3, *shape)
    expected = base(x)
    model = batch_ensemble_model(base, 4, "ones").eval()
    with torch.no_grad():  # any biases: they were copied into every member
        out = model(x)
    assert out.shape == (4, 3, 5)
    for member in out:
        torch.testing.assert_close(member, expected, rtol=1e-5, atol=1e-5)
    # the conversion copied the network: the original is untouched and shares no parameter
    assert not {id(p) for p in base.parameters()} & {id(p) for p in model.parameters()}


def test_members_differ_with_fast_weights_and_batch_norm_is_shared():
    torch.manual_seed(1)
    base = models.get("resnet20", num_classes=3, in_channels=3, image_size=8)
    model = batch_ensemble_model(base, 2, "random_sign").eval()
    out = model(torch.randn(4, 3, 8, 8))
    assert not torch.allclose(out[0], out[1])
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len([m for m in base.modules() if isinstance(m, nn.BatchNorm2d)])


def test_a_model_without_conv_or_linear_layers_is_refused():
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        batch_ensemble_model(nn.Sequential(nn.ReLU(), nn.Flatten()), 4)
    with pytest.raises(ValueError, match="ensemble_size"):
        batch_ensemble_model(nn.Linear(2, 2), 0)


def test_weight_decay_reaches_shared_weights_only():
    """One SGD step with zero gradients: decay shrinks shared weights, batch norm and biases by
    (1 - lr * wd), and leaves the fast weights exactly where they were."""
    torch.manual_seed(2)
    base = models.get("resnet20", num_classes=3, in_channels=3, image_size=8)
    model = batch_ensemble_model(base, 2, "normal")
    recipe = Recipe(epochs=1, batch_size=8, learning_rate=0.1, momentum=0.0, weight_decay=0.01)
    optimizer = make_optimizer(model, recipe, parameter_groups(model, fast_lr_multiplier=0.5))
    by_name = {g["name"]: g for g in parameter_groups(model, 0.5)}
    assert by_name["fast"]["weight_decay_scale"] == 0 and by_name["fast"]["lr_scale"] == 0.5
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    fast = [n for n in before if n.endswith((".r", ".s"))]
    assert len(fast) == 2 * len([m for m in model.modules() if hasattr(m, "fast_weights")])
    for name, parameter in model.named_parameters():
        if name in fast:
            torch.testing.assert_close(parameter, before[name], rtol=0, atol=0)
        else:
            # members' biases (lr x 0.5) decay at half the rate, everything else at the full one
            rate = 0.05 if name.endswith(".bias") and "fc" in name else 0.1
            torch.testing.assert_close(parameter, before[name] * (1 - rate * 0.01))


def test_rank1_with_zero_posterior_scale_equals_batchensemble_exactly():
    torch.manual_seed(3)
    base = models.get("lenet", num_classes=4, in_channels=1, image_size=8)
    rank1 = rank1_model(base, 3)
    batch_ensemble = batch_ensemble_model(base, 3)
    with torch.no_grad():
        for m in rank1.modules():
            if isinstance(m, (Rank1Linear, Rank1Conv2d)):
                m.r_rho.fill_(-math.inf)
                m.s_rho.fill_(-math.inf)
    state = {k: v for k, v in rank1.state_dict().items() if not k.endswith("_rho")}
    batch_ensemble.load_state_dict(state)
    x = torch.randn(5, 1, 8, 8)
    rank1.train(), batch_ensemble.train()
    assert torch.equal(rank1(x), batch_ensemble(x))
    # with a positive scale the draws differ per forward pass and per example
    with torch.no_grad():
        for m in rank1.modules():
            if isinstance(m, (Rank1Linear, Rank1Conv2d)):
                m.r_rho.fill_(0.0)
    same = x[:1].expand(2, -1, -1, -1)
    out = rank1(same)
    assert not torch.allclose(out[:, 0], out[:, 1])
    assert not torch.allclose(rank1(x), rank1(x))


@pytest.mark.parametrize("posterior", ["normal", "cauchy"])
def test_rank1_kl_equals_an_independent_computation(posterior):
    torch.manual_seed(4)
    layer = Rank1Conv2d(3, 4, 3, 2, posterior=posterior, prior_mean=1.0, prior_stddev=0.3)
    with torch.no_grad():
        layer.r_rho.normal_()
        layer.s_rho.normal_()
    expected = 0.0
    for mean, rho in ((layer.r, layer.r_rho), (layer.s, layer.s_rho)):
        scale = torch.nn.functional.softplus(rho).double()
        m = mean.detach().double()
        if posterior == "normal":
            expected += D.kl_divergence(D.Normal(m, scale), D.Normal(1.0, 0.3)).sum().item()
        else:  # Monte Carlo with many draws: E_q[log q - log p]
            q, p = D.Cauchy(m, scale), D.Cauchy(torch.ones_like(m), 0.3 * torch.ones_like(m))
            draws = q.sample((200_000,))
            expected += (q.log_prob(draws) - p.log_prob(draws)).mean(0).sum().item()
    tolerance = (1e-6 if posterior == "normal" else 0.02) * abs(expected)
    assert abs(layer.kl().item() - expected) <= tolerance
    model = rank1_model(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)), 2)
    parts = [m.kl() for m in model.modules() if isinstance(m, Rank1Linear)]
    torch.testing.assert_close(kl_divergence(model), parts[0] + parts[1])
