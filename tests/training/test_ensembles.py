"""VectorizedEnsemble: the same outputs and the same training as separate members."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from uqbench.training.ensembles import VectorizedEnsemble


def small_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    )


def test_forward_equals_each_member_in_both_modes():
    members = [small_net(s) for s in range(3)]
    ensemble = VectorizedEnsemble([copy.deepcopy(m) for m in members])
    x = torch.randn(5, 1, 6, 6)
    for mode in (True, False):
        ensemble.train(mode)
        for m in members:
            m.train(mode)
        out = ensemble(x)
        assert out.shape == (3, 5, 3)
        for i, m in enumerate(members):
            torch.testing.assert_close(out[i], m(x))
    # per-member inputs: member i sees x_per[i]
    ensemble.eval()
    x_per = torch.randn(3, 5, 1, 6, 6)
    out = ensemble(x_per)
    for i, m in enumerate(members):
        torch.testing.assert_close(out[i], m.eval()(x_per[i]))


def test_one_optimiser_over_stacked_parameters_trains_each_member_exactly():
    members = [small_net(s) for s in range(2)]
    ensemble = VectorizedEnsemble([copy.deepcopy(m) for m in members])
    x = torch.randn(2, 8, 1, 6, 6)
    y = torch.randint(0, 3, (2, 8))
    settings = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt = torch.optim.SGD(ensemble.parameters(), **settings)
    for _ in range(3):
        logits = ensemble(x)
        loss = sum(nn.functional.cross_entropy(logits[i], y[i]) for i in range(2))
        opt.zero_grad()
        loss.backward()
        opt.step()
    for i, m in enumerate(members):
        opt_i = torch.optim.SGD(m.parameters(), **settings)
        for _ in range(3):
            loss = nn.functional.cross_entropy(m(x[i]), y[i])
            opt_i.zero_grad()
            loss.backward()
            opt_i.step()
        trained = ensemble.members()[i]
        for (name, a), b in zip(trained.state_dict().items(), m.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=name)


def test_members_must_share_an_architecture():
    with pytest.raises(ValueError, match="at least one"):
        VectorizedEnsemble([])
    with pytest.raises(ValueError, match="identical parameter"):
        VectorizedEnsemble([small_net(0), nn.Sequential(nn.Flatten(), nn.Linear(36, 3))])
    with pytest.raises(ValueError, match="first dimension 2"):
        VectorizedEnsemble([small_net(0), small_net(1)])(torch.randn(3, 4, 1, 6, 6), True)
