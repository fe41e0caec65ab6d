"""Spectral normalisation as SNGP uses it (Liu et al. 2020): a soft bound on each layer's norm.

``W <- W * min(1, c / sigma(W))`` rescales a weight only when its largest singular value
``sigma`` exceeds the bound ``c``, unlike Miyato et al.'s ``W / sigma`` which always sets it to 1.
With every residual branch ``g`` kept ``c``-Lipschitz for ``c < 1``, a residual map
``f(x) = x + g(x)`` is bi-Lipschitz: ``(1 - c) |x - y| <= |f(x) - f(y)| <= (1 + c) |x - y|``,
so distances in input space survive into the hidden representation, which is what lets SNGP's
distance-aware output layer tell far-away inputs from near ones.

``sigma`` is estimated by power iteration on the weight reshaped to ``(out, -1)``, as
``torch.nn.utils.parametrizations.spectral_norm`` does: vectors ``u`` and ``v`` are kept as
buffers, advanced ``n_power_iterations`` steps per forward pass in training mode only, and
``sigma = u^T W v``. For a convolution that matrix norm is a proxy: the operator norm of the
convolution itself can exceed it (edward2's SNGP convolutions iterate through the convolution).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

DEFAULT_COEFFICIENT = 0.95
CONV_DEFAULT_COEFFICIENT = 6.0


class SpectralBound(nn.Module):
    """Parametrization ``W -> W * min(1, c / sigma(W))``, ``sigma`` from power iteration.

    ``u`` and ``v`` start from 15 power iterations on the initial weight (as in torch) and move
    ``n_power_iterations`` steps per call in training mode; in ``eval()`` they stay fixed, so
    evaluation is deterministic. ``sigma = u^T W v`` never overestimates the true norm, so the
    bound holds up to how far the iteration has converged. Gradients flow through ``sigma`` with
    ``u`` and ``v`` held constant.
    """

    def __init__(
        self,
        weight: torch.Tensor,
        coefficient: float = DEFAULT_COEFFICIENT,
        n_power_iterations: int = 1,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if weight.dim() < 2:
            raise ValueError(
                f"spectral normalisation needs a weight of 2 or more dimensions, got shape "
                f"{tuple(weight.shape)}"
            )
        if not coefficient > 0:
            raise ValueError(f"coefficient must be positive, got {coefficient!r}")
        if isinstance(n_power_iterations, bool) or n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations!r}")
        self.coefficient = float(coefficient)
        self.n_power_iterations = int(n_power_iterations)
        self.eps = eps
        matrix = weight.detach().flatten(1)
        u = F.normalize(matrix.new_empty(matrix.shape[0]).normal_(), dim=0, eps=eps)
        v = F.normalize(matrix.new_empty(matrix.shape[1]).normal_(), dim=0, eps=eps)
        self.register_buffer("_u", u)
        self.register_buffer("_v", v)
        self._power_iteration(matrix, 15)

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor, steps: int) -> None:
        """``u <- W v / |W v|``, ``v <- W^T u / |W^T u|``, in place (keeps buffers shared)."""
        for _ in range(steps):
            self._u.copy_(F.normalize(torch.mv(matrix, self._v), dim=0, eps=self.eps))
            self._v.copy_(F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=self.eps))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The current estimate ``u^T W v`` of the largest singular value of ``weight``."""
        matrix = weight.flatten(1)
        return torch.dot(self._u.clone(), torch.mv(matrix, self._v.clone()))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_iteration(weight.flatten(1), self.n_power_iterations)
        return weight / torch.clamp(self.sigma(weight) / self.coefficient, min=1.0)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        """Store an assigned weight as is: exact for weights within the bound."""
        return value

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}, n_power_iterations={self.n_power_iterations}"


def spectral_normalized(
    module: nn.Module,
    coefficient: float = DEFAULT_COEFFICIENT,
    n_power_iterations: int = 1,
    name: str = "weight",
) -> nn.Module:
    """Bound ``module.<name>``'s spectral norm by ``coefficient``; returns the same module.

    Works for ``nn.Linear``, ``nn.Conv*d`` and any module with a parameter of 2 or more
    dimensions whose first axis is the output (e.g. the BatchEnsemble layers' shared weight).
    The raw weight is stored as ``parametrizations.<name>.original``; load a state dict into a
    module that was wrapped the same way. The default ``c = 0.95`` keeps a residual branch
    contractive (see the module docstring); it is Uncertainty Baselines' bound for SNGP-BERT.
    """
    weight = getattr(module, name, None)
    if not isinstance(weight, nn.Parameter):
        raise ValueError(f"{type(module).__name__} has no parameter {name!r} to normalise")
    bound = SpectralBound(weight, coefficient, n_power_iterations)
    parametrize.register_parametrization(module, name, bound)
    return module


class SpectralResidualBlock(nn.Module):
    """``f(x) = x + g(x)`` on vectors, with a spectrally normalised branch ``g``.

    Without ``hidden``: ``g(x) = dropout(relu(SN-Linear(x)))`` (the layer of the residual MLP in
    the SNGP tutorial). With ``hidden``: ``g(x) = SN-Linear(dropout(relu(SN-Linear(x))))`` through
    ``hidden`` units. ReLU is 1-Lipschitz, so ``g`` is ``c``-Lipschitz (``c^2`` with ``hidden``)
    and ``f`` bi-Lipschitz for ``c < 1``; dropout's ``1 / (1 - p)`` rescaling loosens this in
    training only.
    """

    def __init__(
        self,
        features: int,
        hidden: int | None = None,
        coefficient: float = DEFAULT_COEFFICIENT,
        dropout: float = 0.0,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        _check_positive("features", features)
        if hidden is not None:
            _check_positive("hidden", hidden)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.config = {
            "features": features,
            "hidden": hidden,
            "coefficient": coefficient,
            "dropout": dropout,
            "n_power_iterations": n_power_iterations,
        }
        width = features if hidden is None else hidden
        self.linear = spectral_normalized(
            nn.Linear(features, width), coefficient, n_power_iterations
        )
        self.dropout = nn.Dropout(dropout)
        self.output = (
            None
            if hidden is None
            else spectral_normalized(nn.Linear(hidden, features), coefficient, n_power_iterations)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.dropout(F.relu(self.linear(x)))
        if self.output is not None:
            branch = self.output(branch)
        return x + branch


class SpectralConvResidualBlock(nn.Module):
    """Pre-activation residual block on images with spectrally normalised 3x3 convolutions.

    ``f(x) = x + conv2(relu(bn2(conv1(relu(bn1(x))))))`` with ``channels`` in and out, stride 1,
    as in the wide ResNet of SNGP's CIFAR experiments. Batch norm rescales activations, so ``c``
    gives no exact Lipschitz bound here; the default ``c = 6`` follows ``spec_norm_bound`` of Uncertainty
    Baselines' SNGP wide ResNet on CIFAR, a loose bound that limits each layer's expansion.
    """

    def __init__(
        self,
        channels: int,
        coefficient: float = CONV_DEFAULT_COEFFICIENT,
        n_power_iterations: int = 1,
    ) -> None:
        super().__init__()
        _check_positive("channels", channels)
        self.config = {
            "channels": channels,
            "coefficient": coefficient,
            "n_power_iterations": n_power_iterations,
        }
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv1 = spectral_normalized(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            coefficient,
            n_power_iterations,
        )
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = spectral_normalized(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            coefficient,
            n_power_iterations,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv1(F.relu(self.bn1(x)))
        return x + self.conv2(F.relu(self.bn2(branch)))


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
