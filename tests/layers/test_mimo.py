"""MIMO (Havasi et al. 2021): stacking, heads, test-time averaging, UB's batches, and that the
subnetworks become independent by training."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uqbench import models
from uqbench.data import augment
from uqbench.layers.mimo import MIMO, MIMOBatches
from uqbench.models.fast_cifar import FastCifarNet
from uqbench.training import predictors
from uqbench.training.classifier import Runtime

CPU = Runtime.for_device(torch.device("cpu"))


pytestmark = pytest.mark.usefixtures("one_thread")


def test_stacking_and_heads_match_a_hand_built_reference():
    torch.manual_seed(0)
    m, b, c, k = 3, 5, 2, 4
    network = models.get("lenet", num_classes=m * k, in_channels=m * c, image_size=8)
    model = MIMO(network, m).eval()
    x = torch.randn(m, b, c, 8, 8)
    stacked = torch.empty(b, m * c, 8, 8)
    for member in range(m):
        for channel in range(c):
            stacked[:, channel * m + member] = x[member, :, channel]
    torch.testing.assert_close(model.stack(x), stacked)
    flat = network(stacked)
    out = model(x)
    assert out.shape == (m, b, k)
    for member in range(m):
        torch.testing.assert_close(out[member], flat[:, member * k : (member + 1) * k])


def test_test_time_every_head_sees_the_image_and_softmaxes_are_averaged():
    torch.manual_seed(0)
    m, k = 3, 5
    model = MIMO(models.get("lenet", num_classes=m * k, in_channels=m, image_size=8), m).eval()
    images = torch.randint(0, 256, (7, 1, 8, 8), dtype=torch.uint8)
    norm = ((0.4,), (0.2,))
    x = augment.normalize(images, *norm)
    with torch.no_grad():
        heads = model(x.unsqueeze(0).repeat(m, 1, 1, 1, 1)).double().numpy()
        out = predictors.mimo(model, norm, CPU, flips=False)(images)
    softmax = np.exp(heads) / np.exp(heads).sum(-1, keepdims=True)
    np.testing.assert_allclose(out["member_probs"], softmax, atol=1e-6)
    np.testing.assert_allclose(out["probs"], softmax.mean(0), atol=1e-6)
    np.testing.assert_allclose(out["log_probs"], np.log(softmax.mean(0)), atol=1e-5)


def test_networks_without_a_stacking_stem_or_split_head_are_refused():
    with pytest.raises(ValueError, match="first layer 'whiten' is a PatchWhitening"):
        MIMO(FastCifarNet(num_classes=30, in_channels=9), 3)
    with pytest.raises(ValueError, match="first layer .* is a BatchNorm2d"):
        MIMO(nn.Sequential(nn.BatchNorm2d(6), nn.Flatten(), nn.Linear(6 * 64, 6)), 3)
    with pytest.raises(ValueError, match="takes 4 inputs, not a multiple of num_members=3"):
        MIMO(models.get("lenet", num_classes=30, in_channels=4, image_size=8), 3)
    with pytest.raises(ValueError, match="Linear with 10 outputs"):
        MIMO(models.get("lenet", num_classes=10, in_channels=3, image_size=8), 3)
    model = MIMO(models.get("lenet", num_classes=30, in_channels=3, image_size=8), 3)
    with pytest.raises(ValueError, match="takes 3 = 3 members x 1 inputs per image"):
        model(torch.zeros(3, 2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(3, B, C, H, W\)"):
        model(torch.zeros(2, 2, 1, 8, 8))


def test_batches_repeat_each_new_example_and_shuffle_per_member_as_ub():
    batches = MIMOBatches(num_members=3, batch_repetitions=4, input_repetition=0.25)
    generator = torch.Generator().manual_seed(0)
    steps = list(batches.indices(50, 32, generator))
    assert batches.steps_per_epoch(50, 32) == len(steps) == 50 // 8
    seen = torch.cat([new for new, _ in steps])
    assert len(set(seen.tolist())) == len(seen) == 48  # each example once per epoch
    for new, arrangement in steps:
        assert new.shape == (8,) and arrangement.shape == (3, 32)
        for row in arrangement:  # every member sees each new example batch_repetitions times
            assert torch.bincount(row, minlength=8).tolist() == [4] * 8
        shared = arrangement[:, 24:]  # the last 25% of rows: one image for every member
        assert (shared == shared[0]).all()
        assert not (arrangement[0, :24] == arrangement[1, :24]).all()
    with pytest.raises(ValueError, match="at least --batch_repetition"):
        batches.steps_per_epoch(50, 3)
    with pytest.raises(ValueError, match="input_repetition"):
        MIMOBatches(3, 1, 1.5)


def _cross_gradients(model: MIMO, x: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """``G[m, j]``: mean |d z_m[y_m] / d x_j| over test images (``z_m``: head m's logits,
    ``y_m``: the label of member m's image), the members' inputs ``x_j`` being independent
    images, as in training."""
    m = model.num_members
    inputs = x.clone().requires_grad_(True)
    logits = model(inputs)
    grid = np.zeros((m, m))
    for member in range(m):
        picked = logits[member].gather(1, labels[member][:, None]).sum()
        (grad,) = torch.autograd.grad(picked, inputs, retain_graph=True)
        grid[member] = grad.abs().mean(dim=(1, 2, 3, 4)).numpy()
    return grid


def test_heads_become_independent_by_training_not_by_construction():
    """Havasi et al.'s Figure 3 in small: a synthetic task (a random linear teacher on 16
    Gaussian pixels, 5 classes), an MLP trunk for 3 members, SGD with weight decay."""
    m, k = 3, 5
    torch.manual_seed(0)
    teacher = torch.randn(16, k)
    x_train, x_test = torch.randn(4000, 1, 4, 4), torch.randn(500, 1, 4, 4)
    y_train, y_test = ((x @ teacher).argmax(1) for x in (x_train.flatten(1), x_test.flatten(1)))
    network = models.get("mlp", num_classes=m * k, in_channels=m, image_size=4, hidden_sizes=[64])
    model = MIMO(network, m)
    generator = torch.Generator().manual_seed(1)
    order = torch.stack([torch.randperm(500, generator=generator) for _ in range(m)])
    off = ~np.eye(m, dtype=bool)
    before = _cross_gradients(model.eval(), x_test[order], y_test[order])
    # At initialisation every head depends on every member's input as much as on its own ...
    assert before[off].mean() > 0.5 * np.diag(before).mean() > 0
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-3)
    batches = MIMOBatches(m, batch_repetitions=2)
    model.train()
    for _ in range(12):  # 12 epochs of 31 steps
        for new, arrangement in batches.indices(4000, 128, generator):
            logits = model(x_train[new][arrangement])
            loss = F.cross_entropy(logits.reshape(-1, k), y_train[new][arrangement].reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    after = _cross_gradients(model.eval(), x_test[order], y_test[order])
    with torch.no_grad():
        accuracy = (model(x_test).argmax(-1) == y_test).float().mean(1)
    assert (accuracy > 0.9).all()
    # ... and after training head m reads (almost) only input m.
    assert after[off].mean() < 0.1 * np.diag(after).mean()
