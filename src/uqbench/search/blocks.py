"""Search blocks: a registry of named building blocks, shape inference, and :class:`SearchNet`.

A block is a concrete, parameter-free choice (``conv3x3_32``, ``max_pool``, ``fc_256``) as in
Model Search's ``FIXED_CHANNEL_CONVOLUTION_32``; an architecture is a sequence of block names.
A shape is a tuple without the batch dimension: ``(C, H, W)`` for images, ``(D,)`` for vectors.

Every block has a builder ``builder(in_shape) -> (nn.Module, out_shape)`` and a kind:

- ``conv`` blocks need an image; one after a vector output is a :class:`ShapeError`.
- ``fc`` blocks need a vector; an image output is first turned into one: flattened when it has
  at most :data:`FLATTEN_LIMIT` values (small images such as 8x8 digits keep where things
  are), else global-average-pooled (so ``fc_256`` after a wide convolution stays small).
- ``any`` blocks receive the previous output as it is (user blocks by default).

Blocks of your own plug in two ways: ``@register_block("name", kind=..., description=...)`` on a
builder in code that runs before the search, or a dotted path ``package.module:factory`` in the
architecture or search space (see :func:`get_block`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.layers.batch_ensemble import BatchEnsembleLinear, member_mean, tile_members
from uqbench.layers.spectral_norm import (
    CONV_DEFAULT_COEFFICIENT,
    DEFAULT_COEFFICIENT,
    SpectralConvResidualBlock,
    SpectralResidualBlock,
    spectral_normalized,
)
from uqbench.models._common import choice, positive_int
from uqbench.models.bottleneck_resnet import EXPANSION, Bottleneck
from uqbench.models.registry import register_model_class
from uqbench.models.resnet import BasicBlock, init_weights

Shape = tuple[int, ...]
Builder = Callable[[Shape], tuple[nn.Module, Shape]]

KINDS = ("conv", "fc", "any")
HEADS = ("linear", "dropout_linear", "mlp")
HEAD_DROPOUT = 0.2
HEAD_HIDDEN = 256
BATCHENSEMBLE_MEMBERS = 4
FLATTEN_LIMIT = 4096
SE_REDUCTION = 4


class ShapeError(ValueError):
    """A block cannot take the shape its predecessor (or the input) gives it."""


@dataclass(frozen=True)
class BlockSpec:
    """A registered block: its ``name``, ``kind`` (one of :data:`KINDS`), ``builder`` and a
    one-line ``description`` (what ``uqbench search blocks`` prints)."""

    name: str
    kind: str
    builder: Builder
    description: str


_REGISTRY: dict[str, BlockSpec] = {}


def register_block(
    name: str, kind: str = "any", description: str = "", *, replace: bool = False
) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder(in_shape) -> (module, out_shape)`` as block ``name``.

    Registering a name twice is a ``ValueError`` unless ``replace=True`` (so two plug-ins cannot
    silently shadow each other). The decorated builder is returned unchanged.
    """
    if not isinstance(name, str) or not name or ":" in name or name != name.strip():
        raise ValueError(
            f"a block name must be a non-empty string without ':' or surrounding spaces, "
            f"got {name!r} (':' marks a dotted path package.module:factory)"
        )
    choice("kind", kind, KINDS)

    def decorate(builder: Builder) -> Builder:
        if not callable(builder):
            raise ValueError(f"block {name!r}: the builder must be callable, got {builder!r}")
        if name in _REGISTRY and not replace:
            raise ValueError(
                f"block {name!r} is already registered ({_REGISTRY[name].description}); "
                "pass replace=True to replace it"
            )
        _REGISTRY[name] = BlockSpec(name, kind, builder, description)
        return builder

    return decorate


def get_block(name: str) -> BlockSpec:
    """The block ``name``: a registered name, or a user's factory as ``package.module:factory``.

    A factory is imported and called with the input shape. It may be a builder returning
    ``(module, out_shape)``, or return a plain ``nn.Module``, whose output shape is then inferred
    by one forward pass of a zero tensor of batch 2 (in eval mode, without gradients). Its kind is
    the factory's ``kind`` attribute if it has one, else ``any``; its description its
    ``description`` attribute or the first line of its docstring.
    """
    if not isinstance(name, str):
        raise ValueError(f"a block name must be a string, got {name!r}")
    if ":" in name:
        return _user_block(name)
    spec = _REGISTRY.get(name)
    if spec is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown block {name!r}.{hint} `uqbench search blocks` lists the registered blocks; "
            "a block of your own is a dotted path 'package.module:factory'"
        )
    return spec


def block_names(kind: str | None = None) -> list[str]:
    """Registered block names in registration order, only those of ``kind`` if given."""
    if kind is not None:
        choice("kind", kind, KINDS)
    return [name for name, spec in _REGISTRY.items() if kind is None or spec.kind == kind]


def describe() -> list[tuple[str, str, str]]:
    """``(name, kind, description)`` of every registered block, for ``uqbench search blocks``."""
    return [(spec.name, spec.kind, spec.description) for spec in _REGISTRY.values()]


def _user_block(path: str) -> BlockSpec:
    """The :class:`BlockSpec` of a factory given by its dotted path ``package.module:factory``."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"a user block is 'package.module:factory', got {path!r}")
    try:
        factory: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import {module_name!r} for the block {path!r}: {err}") from err
    try:
        for part in attribute.split("."):
            factory = getattr(factory, part)
    except AttributeError:
        raise ValueError(f"module {module_name!r} has no {attribute!r} (block {path!r})") from None
    if not callable(factory):
        raise ValueError(f"block {path!r} is not callable: {factory!r}")
    kind = getattr(factory, "kind", "any")
    if kind not in KINDS:
        raise ValueError(f"block {path!r} has kind {kind!r}; a kind is one of {', '.join(KINDS)}")
    description = getattr(factory, "description", None)
    if not isinstance(description, str):
        doc = (getattr(factory, "__doc__", None) or "").strip()
        description = doc.splitlines()[0] if doc else f"user block {path}"
    return BlockSpec(path, kind, partial(_call_factory, factory, path), description)


def _call_factory(
    factory: Callable[..., Any], path: str, in_shape: Shape
) -> tuple[nn.Module, Shape]:
    """Call a user's factory; a bare module's output shape comes from a forward pass."""
    result = factory(in_shape)
    if isinstance(result, nn.Module):
        return result, _forward_shape(result, in_shape, path)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], nn.Module):
        return result[0], tuple(result[1])
    raise ValueError(
        f"block {path!r} must return an nn.Module or (nn.Module, out_shape), "
        f"got {type(result).__name__}"
    )


def _forward_shape(module: nn.Module, in_shape: Shape, path: str) -> Shape:
    """The output shape (no batch) of ``module`` on a zero batch of two inputs of ``in_shape``."""
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(torch.zeros(2, *in_shape))
    except RuntimeError as err:
        raise ShapeError(f"fails on inputs of shape {in_shape} ({path}): {err}") from err
    finally:
        module.train(training)
    if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[0] != 2:
        raise ShapeError(
            f"must map a batch (2, *{in_shape}) to a tensor of batch 2 ({path}), got "
            f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}"
        )
    return tuple(out.shape[1:])


# Shapes ---------------------------------------------------------------------------------------


def check_shape(shape: object, what: str = "the input shape") -> Shape:
    """``shape`` as a tuple of positive ints, of length 1 (a vector) or 3 (an image), else a
    :class:`ShapeError`."""
    valid = (
        isinstance(shape, Sequence)
        and not isinstance(shape, str)
        and len(shape) in (1, 3)
        and all(isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in shape)
    )
    if not valid:
        raise ShapeError(
            f"{what} must be (C, H, W) for images or (D,) for vectors, in positive integers; "
            f"got {shape!r}"
        )
    return tuple(int(v) for v in shape)  # type: ignore[union-attr]


def _image(shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ShapeError(f"needs an image (C, H, W) input, got {shape}")
    return shape[0], shape[1], shape[2]


def _vector(shape: Shape) -> int:
    if len(shape) != 1:
        raise ShapeError(f"needs a vector (D,) input, got {shape}")
    return shape[0]


def _downsampled(shape: Shape) -> tuple[int, int, int]:
    """An image shape that can be halved (both sides at least 2)."""
    channels, height, width = _image(shape)
    if min(height, width) < 2:
        raise ShapeError(f"cannot downsample a {height}x{width} image: both sides must be >= 2")
    return channels, height, width


def vector_mode(shape: Shape) -> str:
    """How an image output of ``shape`` becomes a vector: ``flatten`` (at most
    :data:`FLATTEN_LIMIT` values) or ``pool`` (global average pooling)."""
    channels, height, width = shape
    return "flatten" if channels * height * width <= FLATTEN_LIMIT else "pool"


def _vector_shape(shape: Shape, mode: str) -> Shape:
    return (shape[0] * shape[1] * shape[2],) if mode == "flatten" else (shape[0],)


def _to_vector(x: torch.Tensor, mode: str | None) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C*H*W)`` (``flatten``) or ``(N, C)`` (``pool``); else ``x``."""
    if mode == "flatten":
        return x.flatten(start_dim=-3)
    if mode == "pool":
        return x.mean(dim=(-2, -1))
    return x


# Modules --------------------------------------------------------------------------------------


def conv_bn_relu(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """Convolution (same padding for stride 1), batch norm, ReLU."""
    padding = dilation * (kernel - 1) // 2
    conv = nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())


def separable_conv(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    """Depthwise ``kernel x kernel`` then pointwise 1x1 convolution, batch norm (Xception's op)."""
    return nn.Sequential(
        nn.Conv2d(
            in_channels, in_channels, kernel, padding=kernel // 2, groups=in_channels, bias=False
        ),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    )


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): ``x * sigmoid(W2 relu(W1 mean(x)))`` per channel."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with each channel scaled by its gate in (0, 1)."""
        gates = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(-2, -1))))))
        return x * gates[..., None, None]


class SEBasicBlock(BasicBlock):
    """A ResNet basic block whose residual branch is gated by squeeze-and-excitation before the
    sum (the SE-ResNet block of Hu et al. 2018); projection shortcut when channels change."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__(in_channels, out_channels, stride=1, shortcut="B")
        self.se = SqueezeExcitation(out_channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(se(branch(x)) + shortcut(x))``."""
        y = self.dropout(F.relu(self.bn1(self.conv1(x))))
        y = self.se(self.bn2(self.conv2(y)))
        return F.relu(y + self.shortcut(x))


class NASACell(nn.Module):
    """A simplified NASNet-A normal cell (Zoph et al. 2018) on one input.

    The input is projected to ``channels`` by a 1x1 convolution and batch norm; the cell outputs
    the sum of four branches of that projection: ReLU-separable 3x3, ReLU-separable 5x5, 3x3
    average pooling and the identity. (NASNet-A's cell also reads the previous cell's output,
    applies each separable op twice and concatenates five pairwise sums; a sum of single ops keeps
    the width fixed and the cell usable as one block.)
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.preprocess = nn.Sequential(
            nn.Conv2d(in_channels, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )
        self.sep3 = nn.Sequential(nn.ReLU(), separable_conv(channels, channels, 3))
        self.sep5 = nn.Sequential(nn.ReLU(), separable_conv(channels, channels, 5))
        self.pool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``sep3(h) + sep5(h) + avg_pool(h) + h`` with ``h`` the projected input."""
        h = self.preprocess(x)
        return self.sep3(h) + self.sep5(h) + self.pool(h) + h


class ResidualLinear(nn.Module):
    """``relu(W2 relu(W1 x) + shortcut(x))``: identity shortcut, or a bias-free linear projection
    when the input width differs."""

    def __init__(self, in_features: int, features: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, features)
        self.fc2 = nn.Linear(features, features)
        self.shortcut: nn.Module = (
            nn.Identity()
            if in_features == features
            else nn.Linear(in_features, features, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual sum, then ReLU."""
        return F.relu(self.fc2(F.relu(self.fc1(x))) + self.shortcut(x))


class BatchEnsembleDense(nn.Module):
    """A BatchEnsemble dense layer (Wen et al. 2020) used as one block: ``(N, in)`` -> ``(N, out)``.

    The input is tiled to ``ensemble_size`` members (members-major, ``(E*N, in)``), each member
    applies its rank-1-modulated weights and ReLU, and the members' outputs are averaged back to
    ``(N, out)``, so the block composes with any other block.
    """

    def __init__(self, in_features: int, out_features: int, ensemble_size: int) -> None:
        super().__init__()
        self.ensemble_size = ensemble_size
        self.linear = BatchEnsembleLinear(in_features, out_features, ensemble_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The members' mean of ``relu(linear(tile(x)))``."""
        y = F.relu(self.linear(tile_members(x, self.ensemble_size)))
        return member_mean(y, self.ensemble_size)


# Builders ---------------------------------------------------------------------------------------


def _conv(in_shape: Shape, width: int, kernel: int, dilation: int = 1) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = conv_bn_relu(channels, width, kernel, dilation=dilation)
    init_weights(module)
    return module, (width, height, size)


def _downsample_conv(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _downsampled(in_shape)
    module = conv_bn_relu(channels, width, 3, stride=2)
    init_weights(module)
    return module, (width, (height + 1) // 2, (size + 1) // 2)


def _pool(in_shape: Shape, pool: type[nn.Module]) -> tuple[nn.Module, Shape]:
    channels, height, size = _downsampled(in_shape)
    return pool(2, stride=2), (channels, height // 2, size // 2)


def _resnet_basic(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = BasicBlock(channels, width, stride=1, shortcut="B")
    init_weights(module)
    return module, (width, height, size)


def _resnet_bottleneck(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = Bottleneck(channels, width // EXPANSION)
    init_weights(module)
    return module, (width, height, size)


def _sepconv(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = nn.Sequential(separable_conv(channels, width, 3), nn.ReLU())
    init_weights(module)
    return module, (width, height, size)


def _se(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = SEBasicBlock(channels, width)
    init_weights(module)
    return module, (width, height, size)


def _nasa_cell(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    module = NASACell(channels, width)
    init_weights(module)
    return module, (width, height, size)


def _fc(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    return nn.Sequential(nn.Linear(_vector(in_shape), width), nn.ReLU()), (width,)


def _fc_residual(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    return ResidualLinear(_vector(in_shape), width), (width,)


def _sn_residual(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    channels, height, size = _image(in_shape)
    block = SpectralConvResidualBlock(width, CONV_DEFAULT_COEFFICIENT)
    if channels == width:
        return block, (width, height, size)
    conv = nn.Conv2d(channels, width, 1, bias=False)
    project = spectral_normalized(conv, CONV_DEFAULT_COEFFICIENT)
    return nn.Sequential(project, block), (width, height, size)


def _sn_fc_residual(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    features = _vector(in_shape)
    block = SpectralResidualBlock(width, coefficient=DEFAULT_COEFFICIENT)
    if features == width:
        return block, (width,)
    project = spectral_normalized(nn.Linear(features, width), DEFAULT_COEFFICIENT)
    return nn.Sequential(project, block), (width,)


def _batchensemble_fc(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    return BatchEnsembleDense(_vector(in_shape), width, BATCHENSEMBLE_MEMBERS), (width,)


def _dropout(in_shape: Shape, width: int) -> tuple[nn.Module, Shape]:
    features = _vector(in_shape)
    return nn.Dropout(width / 100), (features,)


def _layer_norm(in_shape: Shape) -> tuple[nn.Module, Shape]:
    features = _vector(in_shape)
    return nn.LayerNorm(features), (features,)


def _batch_norm(in_shape: Shape) -> tuple[nn.Module, Shape]:
    features = _vector(in_shape)
    return nn.BatchNorm1d(features), (features,)


def _register_family(
    pattern: str,
    sizes: Sequence[int],
    kind: str,
    description: str,
    build: Callable[..., tuple[nn.Module, Shape]],
) -> None:
    """Register ``pattern.format(size)`` for each size, built by ``build(in_shape, width=size)``."""
    for size in sizes:
        register_block(pattern.format(size), kind, description.format(size))(
            partial(build, width=size)
        )


_register_family(
    "conv3x3_{}",
    (16, 32, 64, 128),
    "conv",
    "3x3 conv to {} channels, BN, ReLU",
    partial(_conv, kernel=3),
)
_register_family(
    "conv5x5_{}",
    (16, 32, 64, 128),
    "conv",
    "5x5 conv to {} channels, BN, ReLU",
    partial(_conv, kernel=5),
)
_register_family(
    "dilconv3x3_{}",
    (32, 64),
    "conv",
    "3x3 conv with dilation 2 (5x5 receptive field) to {} channels, BN, ReLU",
    partial(_conv, kernel=3, dilation=2),
)
_register_family(
    "downsample_conv_{}",
    (32, 64, 128),
    "conv",
    "3x3 stride-2 conv to {} channels, BN, ReLU: halves height and width",
    _downsample_conv,
)
register_block("max_pool", "conv", "2x2 max pooling, stride 2: halves height and width")(
    partial(_pool, pool=nn.MaxPool2d)
)
register_block("avg_pool", "conv", "2x2 average pooling, stride 2: halves height and width")(
    partial(_pool, pool=nn.AvgPool2d)
)
_register_family(
    "resnet_basic_{}",
    (16, 32, 64, 128),
    "conv",
    "ResNet basic block (two 3x3 convs) of {} channels, projection shortcut if channels change",
    _resnet_basic,
)
_register_family(
    "resnet_bottleneck_{}",
    (64, 128),
    "conv",
    "ResNet bottleneck block (1x1-3x3-1x1, inner width a quarter) of {} channels",
    _resnet_bottleneck,
)
_register_family(
    "sepconv3x3_{}",
    (32, 64, 128),
    "conv",
    "depthwise-separable 3x3 conv to {} channels, BN, ReLU",
    _sepconv,
)
_register_family(
    "se_{}",
    (32, 64, 128),
    "conv",
    "SE-ResNet basic block of {} channels (squeeze-and-excitation on the residual branch)",
    _se,
)
_register_family(
    "nasa_cell_{}",
    (32, 64),
    "conv",
    "simplified NASNet-A normal cell of {} channels (sum of sep3x3, sep5x5, avg pool, identity)",
    _nasa_cell,
)
_register_family("fc_{}", (32, 64, 128, 256, 512, 1024), "fc", "dense layer of {} units, ReLU", _fc)
_register_family(
    "fc_residual_{}",
    (128, 256, 512),
    "fc",
    "residual block of two dense layers of {} units, projection shortcut if widths differ",
    _fc_residual,
)
_register_family(
    "sn_residual_{}",
    (64, 128),
    "conv",
    "spectral-normalised residual conv block of {} channels (SNGP), SN 1x1 projection if needed",
    _sn_residual,
)
_register_family(
    "sn_fc_residual_{}",
    (128, 256),
    "fc",
    "spectral-normalised residual dense block of {} units (SNGP), SN projection if needed",
    _sn_fc_residual,
)
_register_family(
    "batchensemble_fc_{}",
    (128, 256),
    "fc",
    "BatchEnsemble dense layer of {} units, ReLU, over 4 members averaged back to one output",
    _batchensemble_fc,
)

_register_family(
    "dropout_{}",
    (10, 30),
    "fc",
    "dropout of {}% of the features (sampled by Monte-Carlo dropout), width unchanged",
    _dropout,
)
register_block("layer_norm", "fc", "layer normalisation of the features, width unchanged")(
    _layer_norm
)
register_block("batch_norm", "fc", "batch normalisation of the features, width unchanged")(
    _batch_norm
)

# For small images (8x8 digits to 32x32 CIFAR): plain, wide, residual and separable convolutions,
# two ways to halve the resolution, and dense layers to finish on.
DEFAULT_BLOCKS: tuple[str, ...] = (
    "conv3x3_32",
    "conv3x3_64",
    "conv5x5_32",
    "resnet_basic_32",
    "resnet_basic_64",
    "sepconv3x3_64",
    "se_64",
    "downsample_conv_64",
    "max_pool",
    "fc_128",
    "fc_256",
)

# For tables: dense, residual dense and BatchEnsemble layers, dropout and normalisation.
DEFAULT_TABLE_BLOCKS: tuple[str, ...] = (
    "fc_32",
    "fc_64",
    "fc_128",
    "fc_256",
    "fc_residual_128",
    "batchensemble_fc_128",
    "dropout_10",
    "dropout_30",
    "layer_norm",
    "batch_norm",
)


# Networks ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Built:
    """One block of a network: how its input becomes a vector first (``None``: it does not), the
    module, and its output shape."""

    to_vector: str | None
    module: nn.Module
    out_shape: Shape


def _check_architecture(architecture: object) -> list[str]:
    if isinstance(architecture, str) or not isinstance(architecture, Sequence):
        raise ValueError(f"an architecture is a sequence of block names, got {architecture!r}")
    names = list(architecture)
    for name in names:
        if not isinstance(name, str):
            raise ValueError(f"an architecture is a sequence of block names, got {name!r} in it")
    return names


def _build_blocks(architecture: Sequence[str], in_shape: Shape) -> list[_Built]:
    """Build every block in order, checking that each can follow its predecessor."""
    built: list[_Built] = []
    shape = in_shape
    for index, name in enumerate(architecture, start=1):
        spec = get_block(name)
        here = f"{name} (block {index})"
        if index == 1:
            before, follow = f"the input is {shape}", f"cannot take the input {shape}"
        else:
            previous = f"{architecture[index - 2]} (block {index - 1})"
            before = f"{previous} outputs {shape}"
            follow = f"cannot follow {previous}, which outputs {shape}"
        if spec.kind == "conv" and len(shape) != 3:
            raise ShapeError(f"{here} needs an image (C, H, W) input but {before}")
        to_vector = vector_mode(shape) if spec.kind == "fc" and len(shape) == 3 else None
        if to_vector is not None:
            shape = _vector_shape(shape, to_vector)
        try:
            module, out_shape = spec.builder(shape)
        except ShapeError as err:
            raise ShapeError(f"{here} {follow}: it {err}") from None
        built.append(_Built(to_vector, module, check_shape(out_shape, f"the output of {here}")))
        shape = built[-1].out_shape
    return built


def infer_shapes(architecture: Sequence[str], in_shape: Sequence[int]) -> list[Shape]:
    """The output shape after each block of ``architecture`` on inputs of ``in_shape``.

    Builds the blocks (cheap; the global random state is left as it was) and raises
    :class:`ShapeError` naming both blocks when one cannot follow the other. An empty
    architecture is valid (the network is just the head) and gives ``[]``.
    """
    names = _check_architecture(architecture)
    with torch.random.fork_rng(devices=[]):
        return [b.out_shape for b in _build_blocks(names, check_shape(in_shape))]


class SearchNet(nn.Module):
    """The network of an architecture: its blocks in order, then the head.

    An ``fc`` block that follows an image output sees it as a vector (flattened when small, else
    global-average-pooled: :func:`vector_mode`); the ``linear`` head turns an image output into a
    vector the same way and applies ``nn.Linear`` to ``num_classes`` logits. ``config`` holds the constructor arguments (JSON-able), so
    ``uqbench.models.from_config("uqbench.search.blocks.SearchNet", config)`` rebuilds it once
    this module is imported. The flattening lives in ``forward``, so block ``i``'s parameters are
    ``blocks.<i>.*`` whatever precedes it. Made of plain modules with ordinary batch norm, as
    ``uqbench.models`` are, so it runs under ``torch.func.vmap`` as a
    :class:`uqbench.training.ensembles.VectorizedEnsemble` member (user blocks must allow that too).
    """

    def __init__(
        self,
        architecture: Sequence[str],
        in_shape: Sequence[int],
        num_classes: int,
        head: str = "linear",
    ) -> None:
        super().__init__()
        names = _check_architecture(architecture)
        shape = check_shape(in_shape)
        self.config = {
            "architecture": names,
            "in_shape": list(shape),
            "num_classes": positive_int("num_classes", num_classes),
            "head": choice("head", head, HEADS),
        }
        built = _build_blocks(names, shape)
        self.blocks = nn.ModuleList(b.module for b in built)
        self.to_vector = tuple(b.to_vector for b in built)
        self.shapes = tuple(b.out_shape for b in built)
        features = self.shapes[-1] if built else shape
        self.head_to_vector = vector_mode(features) if len(features) == 3 else None
        if self.head_to_vector is not None:
            features = _vector_shape(features, self.head_to_vector)
        self.head = make_head(head, features[0], num_classes)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SearchNet:
        """Rebuild a network from its ``config``."""
        return cls(**config)

    @property
    def depth(self) -> int:
        """The number of blocks (the head not counted)."""
        return len(self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for inputs ``(N, *in_shape)``."""
        for to_vector, block in zip(self.to_vector, self.blocks, strict=True):
            x = block(_to_vector(x, to_vector))
        return self.head(_to_vector(x, self.head_to_vector))


def make_head(head: str, features: int, num_classes: int) -> nn.Module:
    """The classifier on top of the blocks: ``linear``; ``dropout_linear`` (dropout
    :data:`HEAD_DROPOUT` first, so ``uqbench.layers.mc_dropout`` can sample it); ``mlp``
    (a :data:`HEAD_HIDDEN`-unit ReLU layer, then linear)."""
    if head == "dropout_linear":
        return nn.Sequential(nn.Dropout(HEAD_DROPOUT), nn.Linear(features, num_classes))
    if head == "mlp":
        return nn.Sequential(
            nn.Linear(features, HEAD_HIDDEN), nn.ReLU(), nn.Linear(HEAD_HIDDEN, num_classes)
        )
    return nn.Linear(features, num_classes)


def build_network(
    architecture: Sequence[str], in_shape: Sequence[int], num_classes: int, head: str = "linear"
) -> SearchNet:
    """A freshly initialised :class:`SearchNet` (``ShapeError`` if the blocks do not fit)."""
    return SearchNet(architecture, in_shape, num_classes, head)


register_model_class(SearchNet)
