"""Image classifier training: minibatches, the training loop, prediction, recipe checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from uqbench import models
from uqbench.data import get_images
from uqbench.training.classifier import (
    Recipe,
    Runtime,
    fit,
    predict_logits,
    training_batches,
)
from uqbench.training.ensembles import VectorizedEnsemble
from uqbench.training.loop import NonFiniteLossError

CPU = Runtime.for_device(torch.device("cpu"))
NORM = ((0.5,), (0.25,))


def two_class_images(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 0: dark images, class 1: bright ones (trivially separable)."""
    labels = torch.arange(n) % 2
    images = torch.where(labels.view(-1, 1, 1, 1) == 1, 200, 40).to(torch.uint8)
    images = images.expand(n, 1, 6, 6).contiguous()
    return images, labels


def tiny_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2))


def test_each_member_sees_every_full_batch_example_once_per_epoch():
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    labels = torch.arange(10)
    batches = list(training_batches(images, labels, 4, torch.Generator().manual_seed(0), 3))
    assert len(batches) == 2  # the partial last batch is dropped
    seen = torch.cat([y for _, y in batches], dim=1)
    assert seen.shape == (3, 8)
    for row in seen:
        assert len(set(row.tolist())) == 8
    assert not torch.equal(seen[0], seen[1])
    x, y = batches[0]
    assert torch.equal(x.view(3, 4), y.to(torch.uint8))  # images stay paired with labels


def test_fit_learns_a_separable_problem_and_records_history():
    torch.manual_seed(0)
    images, labels = two_class_images()
    model = tiny_net()
    recipe = Recipe(epochs=5, batch_size=16, learning_rate=0.1, schedule="cosine", crop_padding=1)
    history = fit(model, images, labels, *NORM, recipe, CPU, quiet=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5]
    assert history[-1]["train/loss"] < history[0]["train/loss"]
    logits = predict_logits(model, images, *NORM, CPU, batch_size=10)
    assert logits.dtype == torch.float32 and logits.shape == (64, 2)
    assert (logits.argmax(1) == labels).float().mean() == 1.0


def test_vectorized_members_train_in_one_fit():
    torch.manual_seed(0)
    images, labels = two_class_images()
    ensemble = VectorizedEnsemble([tiny_net(), tiny_net(), tiny_net()])
    recipe = Recipe(epochs=4, batch_size=16, learning_rate=0.1, crop_padding=0, flip=False)
    history = fit(ensemble, images, labels, *NORM, recipe, CPU, quiet=True)
    assert len(history[0]["train/loss"]) == 3
    logits = predict_logits(ensemble, images, *NORM, CPU)
    assert logits.shape == (3, 64, 2)
    assert (logits.argmax(-1) == labels).float().mean() == 1.0


def test_test_time_flips_average_the_mirrored_logits():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (8, 1, 6, 6), dtype=torch.uint8)
    model = tiny_net().eval()
    plain = predict_logits(model, images, *NORM, CPU)
    mirrored = predict_logits(model, images.flip(-1), *NORM, CPU)
    torch.testing.assert_close(
        predict_logits(model, images, *NORM, CPU, flips=True), (plain + mirrored) / 2
    )


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(36, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * float("nan")


def test_a_nan_loss_is_a_clear_error():
    images, labels = two_class_images()
    with pytest.raises(NonFiniteLossError, match="epoch 1.*--learning_rate"):
        fit(Exploding(), images, labels, *NORM, Recipe(2, 16, 0.1), CPU, quiet=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "--epochs"),
        ({"learning_rate": 0.0}, "--learning_rate"),
        ({"label_smoothing": 1.0}, "--label_smoothing"),
        ({"warmup_epochs": 5.0}, "--warmup_epochs"),
        ({"schedule": "linear"}, "--schedule"),
    ],
)
def test_recipe_check_names_the_bad_setting(changes, message):
    with pytest.raises(ValueError, match=message):
        Recipe(epochs=2, batch_size=8, learning_rate=0.1).with_overrides(**changes).check()


def test_runtime_defaults_and_bad_precision():
    assert CPU.precision == "fp32" and not CPU.channels_last
    cuda = Runtime.for_device(torch.device("cuda"))
    assert cuda.precision == "bf16" and cuda.channels_last
    with pytest.raises(ValueError, match="--precision"):
        Runtime(torch.device("cpu"), precision="fp16")


def test_fit_reports_every_step_with_the_epoch_and_an_eta(capsys):
    digits = get_images("digits")
    torch.manual_seed(0)
    model = models.get("mlp", num_classes=10, in_channels=1, image_size=8)
    recipe = Recipe(epochs=2, batch_size=512, learning_rate=0.05, crop_padding=0, flip=False)
    fit(
        model,
        digits.x_train,
        digits.y_train,
        digits.mean,
        digits.std,
        recipe,
        CPU,
        description="digits mlp",
        log_interval=0.0,
    )
    captured = capsys.readouterr()
    assert captured.out == ""  # progress goes to stderr
    lines = captured.err.splitlines()
    assert digits.x_train.shape[0] // 512 == 2  # full batches only: 2 steps per epoch
    assert [line.split(": ")[1].split(" ")[0] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert all(line.startswith("digits mlp: ") and " steps " in line for line in lines)
    assert all("ETA " in line and "ETA ?" not in line for line in lines)
    assert lines[0].endswith("epoch 1/2, step 1/2")  # no loss before an epoch ends
    assert "epoch 1/2, step 2/2, loss " in lines[1] and lines[1].endswith("(epoch 1 mean)")
    assert lines[2].endswith("(epoch 1 mean)") and "epoch 2/2, step 1/2" in lines[2]
    assert lines[3].endswith("(epoch 2 mean)") and "(100%)" in lines[3]
