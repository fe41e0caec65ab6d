"""Distillation: the soft term's value and gradient against hand computations, weight 0 is
exactly the label loss, and teacher outputs computed once equal those computed per batch."""

from __future__ import annotations

import pytest
import torch

from uqbench.search import distill
from uqbench.search.blocks import build_network
from uqbench.training.classifier import Runtime, fit
from uqbench.training.protocols import choose_protocol


def test_kl_term_and_its_gradient_match_the_hand_computation():
    torch.manual_seed(0)
    s = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 5, dtype=torch.float64)
    temperature = 2.5
    term = distill.soft_term(s, t, "kl", temperature)
    p_t = torch.softmax(t / temperature, dim=-1)
    q_s = torch.softmax(s / temperature, dim=-1)
    by_hand = temperature**2 * (p_t * (p_t.log() - q_s.log())).sum(dim=-1).mean()
    assert term.item() == pytest.approx(by_hand.item(), rel=1e-6)
    (grad,) = torch.autograd.grad(term, s)
    # d/ds T^2 KL(p_t || softmax(s/T)) / B = T (softmax(s/T) - p_t) / B
    expected = temperature * (q_s - p_t) / 4
    torch.testing.assert_close(grad.double(), expected.detach(), rtol=1e-5, atol=1e-7)


def test_mse_term_and_its_gradient_match_the_hand_computation():
    torch.manual_seed(1)
    s = torch.randn(3, 4, requires_grad=True)
    t = torch.randn(3, 4)
    term = distill.soft_term(s, t, "mse", 3.0)  # the temperature plays no part
    assert term.item() == pytest.approx(((s - t) ** 2).mean().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(term, s)
    torch.testing.assert_close(grad, 2 * (s - t).detach() / 12)
    with pytest.raises(ValueError, match="one of kl, mse"):
        distill.soft_term(s, t, "ce", 1.0)
    with pytest.raises(ValueError, match=r"weight must be in \[0, 1\], got 1.5"):
        distill.batch_loss(None, 1.5, "kl", 1.0)  # type: ignore[arg-type]


def _train(batch_loss=None, crop_padding=0):
    torch.manual_seed(5)
    images = torch.randint(0, 256, (96, 1, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 10, (96,))
    recipe = choose_protocol("cpu", None, "cpu").recipe.with_overrides(
        epochs=2, batch_size=16, warmup_epochs=0.0, crop_padding=crop_padding, flip=False
    )
    torch.manual_seed(6)
    network = build_network(("conv3x3_16", "max_pool", "fc_64"), (1, 8, 8), 10)
    runtime = Runtime.for_device(torch.device("cpu"))
    history = fit(
        network,
        images,
        labels,
        (100.0,),
        (60.0,),
        recipe,
        runtime,
        seed=7,
        quiet=True,
        batch_loss=batch_loss,
    )
    return network, history, images, runtime


def _teacher(images, runtime, precompute: bool):
    torch.manual_seed(8)
    network = build_network(("conv3x3_16", "fc_64"), (1, 8, 8), 10).eval()
    if precompute:
        return distill.Teacher([network], "kl", runtime, images=images, norm=((100.0,), (60.0,)))
    return distill.Teacher([network], "kl", runtime)


def test_weight_zero_trains_exactly_as_the_label_loss():
    plain, history, images, runtime = _train()
    teacher = _teacher(images, runtime, precompute=False)
    zero, zero_history, _, _ = _train(distill.batch_loss(teacher, 0.0, "kl", 2.0))
    for (name, a), b in zip(plain.state_dict().items(), zero.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert [h["train/loss"] for h in history] == [h["train/loss"] for h in zero_history]
    assert all(h["train/extra_loss"] == 0.0 for h in zero_history)
    half, half_history, _, _ = _train(distill.batch_loss(teacher, 0.5, "kl", 2.0))
    assert not torch.equal(half.head.weight, plain.head.weight)
    assert all(h["train/extra_loss"] > 0 for h in half_history)


def test_teacher_outputs_computed_once_equal_those_computed_per_batch():
    _, _, images, runtime = _train()
    once = _teacher(images, runtime, precompute=True)
    per_batch = _teacher(images, runtime, precompute=False)
    assert once.precomputed and not per_batch.precomputed
    a, _, _, _ = _train(distill.batch_loss(once, 0.7, "kl", 2.0))
    b, _, _, _ = _train(distill.batch_loss(per_batch, 0.7, "kl", 2.0))
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)
