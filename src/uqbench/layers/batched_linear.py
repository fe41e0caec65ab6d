"""A linear layer holding the weights of many independent models, applied with one batched matmul.

Training ``B`` small networks (ensemble members, data splits, grid points) as one module is what
makes small-model baselines fast on a CPU: one ``baddbmm`` costs about the same as one ``addmm``
when the matrices are small, so ``B`` models train in roughly the time of one.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class BatchedLinear(nn.Module):
    """``num_models`` independent affine maps: ``(B, N, in) -> (B, N, out)``.

    Each model ``b`` has its own weight ``W[b]`` of shape ``(in, out)`` and bias ``c[b]``,
    initialised like ``nn.Linear`` (uniform in ``+-1/sqrt(in)``) independently per model.
    A 2-D input ``(N, in)`` is shared by all models.
    """

    def __init__(self, num_models: int, in_features: int, out_features: int) -> None:
        super().__init__()
        if num_models < 1 or in_features < 1 or out_features < 1:
            raise ValueError(
                f"BatchedLinear needs positive sizes, got num_models={num_models}, "
                f"in_features={in_features}, out_features={out_features}"
            )
        self.num_models = num_models
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(num_models, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(num_models, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.num_models, -1, -1)
        if x.dim() != 3 or x.shape[0] != self.num_models or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BatchedLinear expects input (N, {self.in_features}) or "
                f"({self.num_models}, N, {self.in_features}), got {tuple(x.shape)}"
            )
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"num_models={self.num_models}, in={self.in_features}, out={self.out_features}"
