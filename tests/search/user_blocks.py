"""A user's own blocks, plugged into search spaces by dotted path in the tests."""

from __future__ import annotations

import torch
from torch import nn


class Exploding(nn.Module):
    """Passes its input through with an infinite gain: training gets a NaN loss."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(float("inf")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain


def exploding(in_shape: tuple[int, ...]) -> tuple[nn.Module, tuple[int, ...]]:
    """A block builder: the module and its output shape (the input's)."""
    return Exploding(), tuple(in_shape)
