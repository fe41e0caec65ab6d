"""BatchEnsemble (Wen, Tran & Ba 2020): an ensemble whose members share one weight matrix.

Member ``e`` uses the rank-1 modulated weight ``W_e = W * outer(s_e, r_e)``; applying it as
``((x * r_e) @ W^T) * s_e`` costs one shared matmul plus two elementwise scalings, so ``E``
members cost little more than one network in parameters and time. The ``E`` members see their
own copy of the batch, stacked members-major: input row ``e * B + i`` is example ``i`` for
member ``e`` (:func:`tile_members` builds that layout, :func:`member_mean` averages it back).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

FAST_WEIGHT_INITS = ("random_sign", "normal", "ones")


def split_members(y: torch.Tensor, ensemble_size: int) -> torch.Tensor:
    """``(E * B, ...) -> (E, B, ...)``: member ``e`` gets rows ``e * B : (e + 1) * B``."""
    _check_positive("ensemble_size", ensemble_size)
    if y.dim() < 1 or y.shape[0] % ensemble_size:
        rows = y.shape[0] if y.dim() else 0
        raise ValueError(
            f"a batch of {rows} rows is not divisible by ensemble_size={ensemble_size}: "
            f"BatchEnsemble inputs stack the members' batches, (E * B, ...); build them with "
            f"tile_members(x, {ensemble_size})"
        )
    return y.unflatten(0, (ensemble_size, -1))


def tile_members(x: torch.Tensor, ensemble_size: int) -> torch.Tensor:
    """``(B, ...) -> (E * B, ...)``: every member sees the whole batch, members-major."""
    _check_positive("ensemble_size", ensemble_size)
    return x.repeat(ensemble_size, *([1] * (x.dim() - 1)))


def member_mean(y: torch.Tensor, ensemble_size: int) -> torch.Tensor:
    """``(E * B, ...) -> (B, ...)``: the mean over members of a members-major output.

    Average probabilities, not logits, for an ensemble's predictive distribution:
    ``member_mean(logits.softmax(-1), E)``.
    """
    return split_members(y, ensemble_size).mean(0)


class _RankOneEnsemble(nn.Module):
    """What both layers share: the shared weight, the fast weights ``r`` (``E x in``) and ``s``
    (``E x out``), the per-member bias (``E x out``), and their initialisation."""

    def _make_parameters(
        self,
        weight_shape: tuple[int, ...],
        ensemble_size: int,
        bias: bool,
        fast_weight_init: str,
    ) -> None:
        _check_fast_weight_init(fast_weight_init)
        out_size, in_size = weight_shape[:2]
        self.ensemble_size = ensemble_size
        self.fast_weight_init = fast_weight_init
        self.weight = nn.Parameter(torch.empty(*weight_shape))
        self.r = nn.Parameter(torch.empty(ensemble_size, in_size))
        self.s = nn.Parameter(torch.empty(ensemble_size, out_size))
        self.bias = nn.Parameter(torch.empty(ensemble_size, out_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``W`` as ``nn.Linear``/``nn.Conv2d`` initialise it, ``r`` and ``s`` as
        ``fast_weight_init`` says, the biases at zero."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        _init_fast_weight_(self.r, self.fast_weight_init)
        _init_fast_weight_(self.s, self.fast_weight_init)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _scale_output(self, members: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """``y * s_e + b_e`` on ``(E, B, ...)`` outputs, flattened back to ``(E * B, ...)``
        (``shape`` views ``s`` and ``b`` so they broadcast over the output channels)."""
        y = members * self.s.view(shape)
        if self.bias is not None:
            y = y + self.bias.view(shape)
        return y.flatten(0, 1)


class BatchEnsembleLinear(_RankOneEnsemble):
    """``E`` affine maps sharing ``W``: ``y = ((x * r_e) @ W^T) * s_e + b_e`` on member ``e``'s rows.

    Input ``(E * B, ..., in)``, output ``(E * B, ..., out)``. ``W`` (``out x in``) is initialised
    as in ``nn.Linear``, the per-member biases ``b`` (``E x out``) at zero as in edward2. The fast
    weights ``r`` (``E x in``) and ``s`` (``E x out``) start as ``fast_weight_init``:
    ``"random_sign"`` (each entry +-1 with equal probability, the paper's random-sign init, which
    makes members differ from the first step), ``"normal"`` (N(1, 0.5^2), the default of
    Uncertainty Baselines' CIFAR scripts, ``random_sign_init=-0.5``) or ``"ones"`` (every member
    starts as the same network; edward2's layer default).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        ensemble_size: int,
        bias: bool = True,
        fast_weight_init: str = "random_sign",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_features", in_features),
            ("out_features", out_features),
            ("ensemble_size", ensemble_size),
        ):
            _check_positive(name, value)
        self.in_features = in_features
        self.out_features = out_features
        self.config = {
            "in_features": in_features,
            "out_features": out_features,
            "ensemble_size": ensemble_size,
            "bias": bias,
            "fast_weight_init": fast_weight_init,
        }
        self._make_parameters((out_features, in_features), ensemble_size, bias, fast_weight_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 2 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"BatchEnsembleLinear expects input (E * B, ..., {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        members = split_members(x, self.ensemble_size)
        shape = (self.ensemble_size, *([1] * (members.dim() - 2)), -1)
        return self._scale_output(F.linear(members * self.r.view(shape), self.weight), shape)

    def extra_repr(self) -> str:
        return (
            f"in={self.in_features}, out={self.out_features}, "
            f"ensemble_size={self.ensemble_size}, bias={self.bias is not None}, "
            f"fast_weight_init={self.fast_weight_init!r}"
        )


class BatchEnsembleConv2d(_RankOneEnsemble):
    """``E`` convolutions sharing kernel ``W``: ``y = conv(x * r_e, W) * s_e + b_e`` per member.

    Input ``(E * B, C_in, H, W)``; ``r`` (``E x C_in``) scales input channels, ``s`` and the bias
    (``E x C_out``) output channels, so member ``e``'s kernel is
    ``W[o, i] * s_e[o] * r_e[i]``. Initialisation as in :class:`BatchEnsembleLinear` (``W`` as
    ``nn.Conv2d`` initialises it). ``padding`` may be an int, a pair or ``"same"``/``"valid"``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        ensemble_size: int,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] | str = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
        fast_weight_init: str = "random_sign",
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("ensemble_size", ensemble_size),
        ):
            _check_positive(name, value)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = padding if isinstance(padding, str) else _pair("padding", padding, 0)
        self.dilation = _pair("dilation", dilation)
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "kernel_size": kernel_size,
            "ensemble_size": ensemble_size,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "bias": bias,
            "fast_weight_init": fast_weight_init,
        }
        weight_shape = (out_channels, in_channels, *self.kernel_size)
        self._make_parameters(weight_shape, ensemble_size, bias, fast_weight_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"BatchEnsembleConv2d expects input (E * B, {self.in_channels}, H, W), "
                f"got {tuple(x.shape)}"
            )
        shape = (self.ensemble_size, 1, -1, 1, 1)
        scaled = (split_members(x, self.ensemble_size) * self.r.view(shape)).flatten(0, 1)
        y = F.conv2d(scaled, self.weight, None, self.stride, self.padding, self.dilation)
        return self._scale_output(split_members(y, self.ensemble_size), shape)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"ensemble_size={self.ensemble_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, bias={self.bias is not None}, "
            f"fast_weight_init={self.fast_weight_init!r}"
        )


def _init_fast_weight_(tensor: torch.Tensor, init: str) -> None:
    with torch.no_grad():
        if init == "random_sign":
            tensor.copy_(torch.randint_like(tensor, 2) * 2 - 1)
        elif init == "normal":
            tensor.normal_(1.0, 0.5)
        else:
            tensor.fill_(1.0)


def _check_fast_weight_init(init: str) -> None:
    if init not in FAST_WEIGHT_INITS:
        raise ValueError(f"fast_weight_init must be one of {FAST_WEIGHT_INITS}, got {init!r}")


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _pair(name: str, value: int | tuple[int, int], low: int = 1) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= low for v in pair):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {value!r}")
    return pair
