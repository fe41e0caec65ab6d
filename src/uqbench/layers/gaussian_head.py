"""Split a regression output into a Gaussian mean and variance (Nix & Weigend 1994)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gaussian_mean_variance(
    output: torch.Tensor, min_variance: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a ``(..., 2)`` network output into a mean and a positive variance.

    ``variance = softplus(raw) + min_variance`` as in Lakshminarayanan et al. (2017): softplus keeps
    gradients alive for large and small variances alike and the floor avoids a zero variance.
    """
    if output.shape[-1] != 2:
        raise ValueError(f"expected a last dimension of 2 (mean, raw variance), got {output.shape}")
    mean, raw = output.unbind(-1)
    return mean, F.softplus(raw) + min_variance
