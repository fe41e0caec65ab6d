"""Factories for ``--model=user_models_for_tests:<name>`` in the tests (a user's own networks)."""

from __future__ import annotations

from torch import nn


def small_cnn(num_classes: int, in_channels: int, image_size: int, dropout_rate: float = 0.0):
    """A two-layer CNN ending in an nn.Linear (so every image baseline can use it)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(dropout_rate),
        nn.Flatten(),
        nn.Linear(8 * image_size * image_size, num_classes),
    )


def no_dropout(num_classes: int, in_channels: int, image_size: int):
    """A linear classifier without a dropout_rate argument."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes))


def wrong_width(num_classes: int, in_channels: int, image_size: int):
    """Returns one logit too many."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, num_classes + 1))


def not_a_module(num_classes: int, in_channels: int, image_size: int):
    """Returns a function, not an nn.Module."""
    return lambda x: x


def fails(num_classes: int, in_channels: int, image_size: int):
    """A network for 3x3 images only."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 9, num_classes))


NOT_CALLABLE = 3


class _Scaled(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return 2 * self.inner(x)


def scaled_logits(num_classes: int, in_channels: int, image_size: int):
    """Doubles its output layer's logits (so a heteroscedastic head cannot replace that layer)."""
    return _Scaled(no_dropout(num_classes, in_channels, image_size))
