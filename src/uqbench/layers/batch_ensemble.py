"""BatchEnsemble (Wen, Tran & Ba 2020): an ensemble whose members share one weight matrix.

Member ``e`` uses the rank-1 modulated weight ``W_e = W * outer(s_e, r_e)``; applying it as
``((x * r_e) @ W^T) * s_e`` costs one shared matmul plus two elementwise scalings, so ``E``
members cost little more than one network in parameters and time. The ``E`` members see their
own copy of the batch, stacked members-major: input row ``e * B + i`` is example ``i`` for
member ``e`` (:func:`tile_members` builds that layout, :func:`member_mean` averages it back).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

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

    def fast_weights(self, examples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(r, s)`` as ``(E, 1, in)`` and ``(E, 1, out)``: one value per member, shared by its
        ``examples`` rows (a subclass may return one per example, ``(E, examples, ...)``)."""
        return self.r.unsqueeze(1), self.s.unsqueeze(1)

    def _scale_output(self, members: torch.Tensor, s: torch.Tensor, trailing: int) -> torch.Tensor:
        """``y * s + b_e`` on ``(E, B, ...)`` outputs, flattened back to ``(E * B, ...)``;
        ``trailing`` singleton dimensions put ``s`` and ``b`` on the output channels."""
        y = members * _expand(s, trailing)
        if self.bias is not None:
            y = y + _expand(self.bias.unsqueeze(1), trailing)
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
        r, s = self.fast_weights(members.shape[1])
        # (E, B|1, in) -> (E, B|1, 1, ..., in): the extra dimensions sit before the features.
        extra = members.dim() - 3
        r, s = (t.view(*t.shape[:2], *([1] * extra), -1) for t in (r, s))
        bias_shape = (self.ensemble_size, 1, *([1] * extra), -1)
        y = F.linear(members * r, self.weight) * s
        if self.bias is not None:
            y = y + self.bias.view(bias_shape)
        return y.flatten(0, 1)

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
        members = split_members(x, self.ensemble_size)
        r, s = self.fast_weights(members.shape[1])
        scaled = (members * _expand(r, 2)).flatten(0, 1)
        y = F.conv2d(scaled, self.weight, None, self.stride, self.padding, self.dilation)
        return self._scale_output(split_members(y, self.ensemble_size), s, 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"ensemble_size={self.ensemble_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, bias={self.bias is not None}, "
            f"fast_weight_init={self.fast_weight_init!r}"
        )


def _expand(t: torch.Tensor, trailing: int) -> torch.Tensor:
    """``t`` with ``trailing`` singleton dimensions appended (channels before height, width)."""
    return t.view(*t.shape, *([1] * trailing))


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


class BatchEnsembleModel(nn.Module):
    """A network whose ``nn.Conv2d``/``nn.Linear`` layers are BatchEnsemble layers (Wen et al.
    2020): ``(B, ...)`` images in, ``(E, B, K)`` member outputs out.

    Every member sees the whole batch (the input is tiled ``E`` times, as Uncertainty Baselines'
    ``batchensemble.py`` does in training and at test); everything else (batch norm, pooling,
    activations) is shared by the members, as in UB's ``wide_resnet_batchensemble.py``, and batch
    norm normalises over all ``E * B`` rows.
    """

    def __init__(self, network: nn.Module, ensemble_size: int) -> None:
        super().__init__()
        self.network = network
        self.ensemble_size = ensemble_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return split_members(self.network(tile_members(x, self.ensemble_size)), self.ensemble_size)


def batch_ensemble_model(
    model: nn.Module,
    ensemble_size: int,
    fast_weight_init: str = "random_sign",
    layer_factory: Callable[[nn.Module, int, str], nn.Module] | None = None,
) -> BatchEnsembleModel:
    """``model`` as a BatchEnsemble of ``ensemble_size`` members (Wen et al. 2020).

    A copy of ``model`` has every ``nn.Conv2d`` and ``nn.Linear`` replaced by its BatchEnsemble
    twin, which shares the original's weight (every member starts from it) and gives each member
    the original's bias; fast weights start as ``fast_weight_init``. With ``"ones"`` every member
    computes exactly what ``model`` computes. ``layer_factory(layer, E, init)`` builds the twin
    (default: :func:`batch_ensemble_layer`). ``model`` itself is left unchanged.
    """
    _check_positive("ensemble_size", ensemble_size)
    _check_fast_weight_init(fast_weight_init)
    factory = layer_factory or batch_ensemble_layer
    network = copy.deepcopy(model)
    replaced = _replace_layers(
        network, lambda layer: factory(layer, ensemble_size, fast_weight_init)
    )
    if not replaced:
        raise ValueError(
            f"{type(model).__name__} has no nn.Conv2d or nn.Linear layer to turn into a "
            "BatchEnsemble layer"
        )
    return BatchEnsembleModel(network, ensemble_size)


def batch_ensemble_layer(layer: nn.Module, ensemble_size: int, fast_weight_init: str) -> nn.Module:
    """The BatchEnsemble twin of an ``nn.Linear`` or ``nn.Conv2d``: same shapes and options, its
    weight copied, its bias copied into every member's bias."""
    if isinstance(layer, nn.Linear):
        twin: _RankOneEnsemble = BatchEnsembleLinear(
            layer.in_features,
            layer.out_features,
            ensemble_size,
            bias=layer.bias is not None,
            fast_weight_init=fast_weight_init,
        )
    else:
        twin = BatchEnsembleConv2d(
            **conv_arguments(layer), ensemble_size=ensemble_size, fast_weight_init=fast_weight_init
        )
    copy_base_weights_(twin, layer)
    return twin


def conv_arguments(layer: nn.Conv2d) -> dict:
    """The constructor arguments of a BatchEnsemble/rank-1 twin of ``layer``; grouped
    convolutions and padding modes other than zeros are refused."""
    if layer.groups != 1 or layer.padding_mode != "zeros":
        raise ValueError(
            f"{layer} cannot become an ensemble layer: only groups=1 and zero padding are supported"
        )
    return {
        "in_channels": layer.in_channels,
        "out_channels": layer.out_channels,
        "kernel_size": tuple(layer.kernel_size),
        "stride": tuple(layer.stride),
        "padding": layer.padding if isinstance(layer.padding, str) else tuple(layer.padding),
        "dilation": tuple(layer.dilation),
        "bias": layer.bias is not None,
    }


@torch.no_grad()
def copy_base_weights_(twin: nn.Module, layer: nn.Module) -> None:
    """Share ``layer``'s weight with ``twin`` and give every member ``layer``'s bias."""
    twin.weight.copy_(layer.weight)
    if layer.bias is not None:
        twin.bias.copy_(layer.bias.expand_as(twin.bias))
    twin.to(device=layer.weight.device, dtype=layer.weight.dtype)


def _replace_layers(module: nn.Module, make: Callable[[nn.Module], nn.Module]) -> int:
    """Replace every ``nn.Linear``/``nn.Conv2d`` below ``module`` in place; returns how many."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d)) and child.weight.requires_grad:
            setattr(module, name, make(child))
            count += 1
        else:
            count += _replace_layers(child, make)
    return count


FAST_WEIGHT_NAMES = ("r", "s")


def parameter_groups(model: nn.Module, fast_lr_multiplier: float = 1.0) -> list[dict[str, object]]:
    """Optimiser groups for an ensemble of rank-1 layers, as UB's ``batchensemble.py`` trains
    it: weight decay on the shared weights, batch norm and biases only, never on the fast
    weights ``r``/``s`` (nor a rank-1 posterior's scales); the fast weights and the members'
    biases learn at ``fast_lr_multiplier`` times the rate.

    Each group is ``{"params", "weight_decay_scale", "lr_scale", "name"}`` (scales 0 or 1 of the
    recipe's weight decay, multipliers of its rate).
    """
    groups: dict[str, dict[str, object]] = {
        "shared": {"params": [], "weight_decay_scale": 1.0, "lr_scale": 1.0},
        "member_bias": {"params": [], "weight_decay_scale": 1.0, "lr_scale": fast_lr_multiplier},
        "fast": {"params": [], "weight_decay_scale": 0.0, "lr_scale": fast_lr_multiplier},
    }
    for module in model.modules():
        rank_one = isinstance(module, _RankOneEnsemble)
        for name, parameter in module.named_parameters(recurse=False):
            if not rank_one or name == "weight":
                kind = "shared"
            elif name == "bias":
                kind = "member_bias"
            else:
                kind = "fast"
            groups[kind]["params"].append(parameter)
    return [{"name": k, **g} for k, g in groups.items() if g["params"]]
