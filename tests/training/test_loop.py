"""Batched training: models train independently, and failures are reported clearly."""

from __future__ import annotations

import io

import pytest
import torch

from uqbench.models.mlp import MLP
from uqbench.training.loop import (
    NonFiniteLossError,
    shuffled_minibatches,
    take,
    train_models,
)
from uqbench.training.progress import Progress
from uqbench.training.regression import mean_variance_loss


def test_minibatches_cover_every_example_once_per_model():
    x = torch.arange(30.0).reshape(3, 10, 1)
    y = x[..., 0] * 2
    batches = list(shuffled_minibatches(x, y, 4, torch.Generator().manual_seed(0)))
    assert [tuple(b[0].shape) for b in batches] == [(3, 4, 1), (3, 4, 1), (3, 2, 1)]
    xs = torch.cat([b[0] for b in batches], dim=1)[..., 0]
    ys = torch.cat([b[1] for b in batches], dim=1)
    assert torch.equal(ys, 2 * xs)  # rows of x and y stay paired
    for model, row in enumerate(xs):
        assert sorted(row.tolist()) == list(range(10 * model, 10 * model + 10))
    assert not torch.equal(xs[0], xs[1] - 10)


def test_take_selects_rows_per_model():
    x = torch.arange(2 * 4 * 1.0).reshape(2, 4, 1)
    index = torch.tensor([[3, 0], [1, 1]])
    assert take(x, index).squeeze(-1).tolist() == [[3.0, 0.0], [5.0, 5.0]]


def _train(x, y, seed=0):
    torch.manual_seed(seed)
    model = MLP(x.shape[-1], (8,), 2, num_models=x.shape[0])
    train_models(
        model,
        mean_variance_loss(),
        x,
        y,
        epochs=3,
        batch_size=5,
        learning_rate=1e-2,
        generator=torch.Generator().manual_seed(seed),
    )
    return model


def test_a_model_is_unaffected_by_the_other_models_data():
    torch.manual_seed(1)
    x, y = torch.randn(2, 20, 3), torch.randn(2, 20)
    other_x, other_y = x.clone(), y.clone()
    other_x[1], other_y[1] = torch.randn(20, 3) * 5, torch.randn(20) * 5
    a, b = _train(x, y), _train(other_x, other_y)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa[0], pb[0])
        assert not torch.allclose(pa[1], pb[1])


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    x = torch.rand(2, 200, 1) * 4 - 2
    y = (2 * x[..., 0]) + 0.1 * torch.randn(2, 200)
    model = MLP(1, (16,), 2, num_models=2)
    history = train_models(
        model,
        mean_variance_loss(),
        x,
        y,
        epochs=30,
        batch_size=20,
        learning_rate=1e-2,
        generator=torch.Generator().manual_seed(0),
    )
    first, last = history[0]["train/loss"], history[-1]["train/loss"]
    assert all(end < start - 1.0 for start, end in zip(first, last, strict=True))


def test_nan_loss_names_the_model_and_epoch():
    x, y = torch.randn(2, 10, 3), torch.randn(2, 10)
    y[1, 4] = float("nan")
    model = MLP(3, (4,), 2, num_models=2)
    with pytest.raises(NonFiniteLossError, match="split 1 member 0.*epoch 1.*--learning_rate"):
        train_models(
            model,
            mean_variance_loss(),
            x,
            y,
            epochs=2,
            batch_size=10,
            learning_rate=1e-3,
            generator=torch.Generator(),
            model_names=["split 0 member 0", "split 1 member 0"],
        )


def test_bad_shapes_and_settings_are_refused():
    model = MLP(3, (4,), 2, num_models=2)
    with pytest.raises(ValueError, match="expected x"):
        train_models(
            model,
            mean_variance_loss(),
            torch.randn(2, 10, 3),
            torch.randn(2, 9),
            epochs=1,
            batch_size=2,
            learning_rate=1e-3,
            generator=torch.Generator(),
        )
    with pytest.raises(ValueError, match="positive"):
        train_models(
            model,
            mean_variance_loss(),
            torch.randn(2, 10, 3),
            torch.randn(2, 10),
            epochs=0,
            batch_size=2,
            learning_rate=1e-3,
            generator=torch.Generator(),
        )


def test_adversarial_loss_adds_a_second_nonnegative_term():
    torch.manual_seed(0)
    model = MLP(3, (4,), 2, num_models=2)
    x, y = torch.randn(2, 10, 3), torch.randn(2, 10)
    plain = mean_variance_loss()(model, x, y)
    adversarial = mean_variance_loss(0.05)(model, x, y)
    # NLL at the adversarial point is at least the clean NLL to first order, so the sum is ~2x.
    assert (adversarial >= 2 * plain - 1e-3).all()


def test_replicas_share_their_group_data_and_order():
    """Models 0,1 see group 0's data, models 2,3 group 1's, in one shared order per group: two
    replicas that start equal stay equal, and each equals a replicas=1 run on its group."""
    torch.manual_seed(3)
    x, y = torch.randn(2, 20, 3), torch.randn(2, 20)
    single = MLP(3, (8,), 2, num_models=2)
    doubled = MLP(3, (8,), 2, num_models=4)
    with torch.no_grad():
        for p_single, p_doubled in zip(single.parameters(), doubled.parameters(), strict=True):
            p_doubled.copy_(p_single.repeat_interleave(2, 0))
    settings = dict(epochs=3, batch_size=6, learning_rate=1e-2)
    train_models(
        single,
        mean_variance_loss(),
        x,
        y,
        generator=torch.Generator().manual_seed(0),
        **settings,
    )
    train_models(
        doubled,
        mean_variance_loss(),
        x,
        y,
        generator=torch.Generator().manual_seed(0),
        replicas=2,
        **settings,
    )
    for p_single, p_doubled in zip(single.parameters(), doubled.parameters(), strict=True):
        torch.testing.assert_close(p_doubled[0::2], p_single)
        torch.testing.assert_close(p_doubled[1::2], p_single)
    with pytest.raises(ValueError, match="replicas"):
        train_models(
            doubled,
            mean_variance_loss(),
            x,
            y,
            generator=torch.Generator(),
            replicas=0,
            **settings,
        )


def test_progress_gets_one_line_per_epoch_with_the_mean_loss_over_models():
    torch.manual_seed(0)
    x, y = torch.randn(2, 20, 3), torch.randn(2, 20)
    stream = io.StringIO()
    progress = Progress(3, "uci", stream=stream, log_interval=0.0)
    history = train_models(
        MLP(3, (4,), 2, num_models=2),
        mean_variance_loss(),
        x,
        y,
        epochs=3,
        batch_size=5,
        learning_rate=1e-2,
        generator=torch.Generator().manual_seed(0),
        progress=progress,
    )
    lines = stream.getvalue().splitlines()
    assert [line.split(" ")[1] for line in lines] == ["1/3", "2/3", "3/3"]
    for epoch, (line, record) in enumerate(zip(lines, history, strict=True), start=1):
        mean = sum(record["train/loss"]) / 2
        assert line.endswith(f"  epoch {epoch}/3, loss {mean:.3f}")
