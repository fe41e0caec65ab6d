"""Multi-layer perceptrons: the UCI regression network of Hernandez-Lobato & Adams (2015)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from uqbench.layers.batched_linear import BatchedLinear
from uqbench.layers.mc_dropout import MCDropout


class MLP(nn.Module):
    """ReLU MLP holding ``num_models`` independent networks evaluated as one batched model.

    Input ``(N, in)`` (shared by every model) or ``(B, N, in)`` (one batch per model); output
    ``(B, N, out)``. With ``dropout_rate`` > 0, dropout is applied before every linear layer
    (the input included, as in Gal & Ghahramani's UCI experiments); ``dropout_rate`` may hold one
    rate per model so a grid search trains in one go, and ``noise_groups`` lets consecutive blocks
    of models share their dropout draws (see ``uqbench.layers.mc_dropout.batched_dropout``).
    ``num_models=1`` is an ordinary MLP.
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (50,),
        out_features: int = 1,
        num_models: int = 1,
        dropout_rate: float | Sequence[float] = 0.0,
        noise_groups: int | None = None,
    ) -> None:
        super().__init__()
        rates = [
            float(r)
            for r in (dropout_rate if isinstance(dropout_rate, Sequence) else [dropout_rate])
        ]
        self.config = {
            "in_features": int(in_features),
            "hidden_sizes": [int(h) for h in hidden_sizes],
            "out_features": int(out_features),
            "num_models": int(num_models),
            "dropout_rate": rates if len(rates) > 1 else rates[0],
            "noise_groups": noise_groups,
        }
        self.num_models = num_models
        self.use_dropout = any(r > 0 for r in rates)
        sizes = [in_features, *hidden_sizes, out_features]
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            if self.use_dropout:
                layers.append(
                    MCDropout(num_models, rates if len(rates) > 1 else rates[0], noise_groups)
                )
            layers.append(BatchedLinear(num_models, fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.num_models, -1, -1)
        return self.layers(x)

    def weight_matrices(self) -> list[torch.Tensor]:
        """The weight tensors (not biases), each ``(B, in, out)``: what L2 regularisation acts on."""
        return [m.weight for m in self.modules() if isinstance(m, BatchedLinear)]
