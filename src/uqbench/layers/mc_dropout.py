"""Dropout that can stay on at test time (Monte-Carlo dropout, Gal & Ghahramani 2016)."""

from __future__ import annotations

import torch
from torch import nn


def batched_dropout(x: torch.Tensor, rate: torch.Tensor, active: bool) -> torch.Tensor:
    """Inverted dropout with one rate per model: ``x`` is ``(B, N, F)``, ``rate`` is ``(B,)``.

    Each unit is kept with probability ``1 - rate[b]`` and scaled by ``1 / (1 - rate[b])`` so the
    expected activation is unchanged; when ``active`` is false the input passes through.
    """
    if not active or not bool((rate > 0).any()):
        return x
    if x.dim() < 2 or x.shape[0] != rate.numel():
        raise ValueError(f"expected input (B={rate.numel()}, ...), got {tuple(x.shape)}")
    keep = (1.0 - rate).view(-1, *([1] * (x.dim() - 1)))
    mask = torch.rand_like(x) < keep
    return x * mask / keep


class MCDropout(nn.Module):
    """Dropout with a per-model rate that is on in training and, if ``mc`` is set, at test too.

    ``rate`` is a float (all models) or a sequence with one rate per model, so a grid search over
    dropout rates trains as one batched network. Set ``module.mc = True`` to draw Monte-Carlo
    samples in ``eval()`` mode.
    """

    def __init__(self, num_models: int, rate: float | list[float] | torch.Tensor = 0.0) -> None:
        super().__init__()
        rates = torch.as_tensor(rate, dtype=torch.float32).flatten()
        if rates.numel() == 1:
            rates = rates.expand(num_models).clone()
        if rates.numel() != num_models:
            raise ValueError(f"MCDropout got {rates.numel()} rates for {num_models} models")
        if bool(((rates < 0) | (rates >= 1)).any()):
            raise ValueError(f"dropout rates must be in [0, 1), got {rates.tolist()}")
        self.register_buffer("rate", rates)
        self.mc = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return batched_dropout(x, self.rate, active=self.training or self.mc)

    def extra_repr(self) -> str:
        return f"rate={[round(r, 6) for r in self.rate.tolist()]}, mc={self.mc}"
