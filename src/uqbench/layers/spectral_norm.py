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
convolution itself can exceed it. :class:`ConvSpectralBound` (``spectral_normalized_conv``,
``spectral_normalize_convs``) bounds the convolution operator on inputs of a given shape instead,
iterating through ``conv2d`` and ``conv_transpose2d`` as edward2's ``SpectralNormalizationConv2D``.
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


class ConvSpectralBound(nn.Module):
    """Parametrization ``W -> W * min(1, c / sigma)`` with ``sigma`` the operator norm of the 2-D
    convolution on inputs of shape ``(C_in, H, W)`` (SNGP, Liu et al. 2020).

    Power iteration runs through the convolution itself: ``v <- conv_transpose2d(u) / |.|``,
    ``u <- conv2d(v) / |.|``, ``sigma = <u, conv2d(v)>``, with ``u`` (output-shaped) and ``v``
    (input-shaped) kept as buffers, as edward2's ``SpectralNormalizationConv2D``. The layer's
    stride, padding, dilation and groups define the operator; the bias is left out (it does not
    change the Lipschitz constant). Iteration, eval behaviour and gradients as :class:`SpectralBound`.
    """

    def __init__(
        self,
        conv: nn.Conv2d,
        input_shape: tuple[int, int, int],
        coefficient: float = CONV_DEFAULT_COEFFICIENT,
        n_power_iterations: int = 1,
        eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"ConvSpectralBound needs an nn.Conv2d, got {type(conv).__name__}")
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ValueError(
                "ConvSpectralBound needs numeric zero padding (padding_mode='zeros'), got "
                f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}"
            )
        if len(input_shape) != 3 or input_shape[0] != conv.in_channels:
            raise ValueError(
                f"input_shape must be (C_in={conv.in_channels}, H, W), got {tuple(input_shape)}"
            )
        if not coefficient > 0:
            raise ValueError(f"coefficient must be positive, got {coefficient!r}")
        if isinstance(n_power_iterations, bool) or n_power_iterations < 1:
            raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations!r}")
        self.coefficient = float(coefficient)
        self.n_power_iterations = int(n_power_iterations)
        self.eps = eps
        self.input_shape = tuple(int(d) for d in input_shape)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        weight = conv.weight.detach()
        v = weight.new_empty(1, *self.input_shape).normal_()
        u = self._conv(v, weight)
        self.register_buffer("_v", v / v.norm().clamp_min(eps))
        self.register_buffer("_u", u / u.norm().clamp_min(eps))
        # conv_transpose2d must give back the input's exact size (strides drop a remainder).
        self.output_padding = tuple(
            size - ((out - 1) * s - 2 * p + d * (k - 1) + 1)
            for size, out, s, p, d, k in zip(
                self.input_shape[1:],
                u.shape[2:],
                self.stride,
                self.padding,
                self.dilation,
                weight.shape[2:],
                strict=True,
            )
        )
        self._power_iteration(weight, 15)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)

    def _conv_transpose(self, y: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(
            y,
            weight,
            None,
            self.stride,
            self.padding,
            self.output_padding,
            self.groups,
            self.dilation,
        )

    @torch.no_grad()
    def _power_iteration(self, weight: torch.Tensor, steps: int) -> None:
        for _ in range(steps):
            v = self._conv_transpose(self._u, weight)
            self._v.copy_(v / v.norm().clamp_min(self.eps))
            u = self._conv(self._v, weight)
            self._u.copy_(u / u.norm().clamp_min(self.eps))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The current estimate ``<u, conv(v)>`` of the convolution's operator norm."""
        return (self._u.clone() * self._conv(self._v.clone(), weight)).sum()

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._power_iteration(weight.detach(), self.n_power_iterations)
        return weight / torch.clamp(self.sigma(weight) / self.coefficient, min=1.0)

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        """Store an assigned weight as is: exact for weights within the bound."""
        return value

    def extra_repr(self) -> str:
        return (
            f"input_shape={self.input_shape}, coefficient={self.coefficient}, "
            f"n_power_iterations={self.n_power_iterations}"
        )


def spectral_normalized_conv(
    conv: nn.Conv2d,
    input_shape: tuple[int, int, int],
    coefficient: float = CONV_DEFAULT_COEFFICIENT,
    n_power_iterations: int = 1,
) -> nn.Conv2d:
    """Bound the operator norm of ``conv`` on ``(C_in, H, W)`` inputs by ``coefficient``; returns
    the same module (:class:`ConvSpectralBound`; the default ``c = 6`` is UB's SNGP WRN bound)."""
    bound = ConvSpectralBound(conv, input_shape, coefficient, n_power_iterations)
    parametrize.register_parametrization(conv, "weight", bound)
    return conv


def spectral_normalize_convs(
    model: nn.Module,
    example: torch.Tensor,
    coefficient: float = CONV_DEFAULT_COEFFICIENT,
    n_power_iterations: int = 1,
) -> nn.Module:
    """Bound every ``nn.Conv2d`` of ``model`` (SNGP: each convolution of a residual network, as
    Uncertainty Baselines' ``wide_resnet_sngp``); each layer's input shape comes from one forward
    pass of ``example`` (a batch of inputs) in eval mode. Returns ``model``."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d to normalise")
    shapes: dict[nn.Module, tuple[int, int, int]] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        shapes.setdefault(module, tuple(args[0].shape[1:]))

    hooks = [conv.register_forward_pre_hook(record) for conv in convs]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    for conv in convs:
        if conv in shapes:
            spectral_normalized_conv(conv, shapes[conv], coefficient, n_power_iterations)
    return model


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
