"""Residual networks of basic blocks (He et al. 2016): the CIFAR ResNets and ResNet-18.

``cifar_resnet(depth)`` builds ResNet-20/32/44/56/110 (any depth 6n+2) of Section 4.2 of the
paper, ``resnet18()`` the common CIFAR ResNet-18; both are instances of :class:`ResNet`, whose
constructor arguments (``blocks``, ``widths``, ...) are what a checkpoint records.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, choice, dropout, positive_int, positive_ints

STEMS = ("cifar", "imagenet")
SHORTCUTS = ("A", "B")
SMALL_IMAGE_MAX = 64


def stem_for(image_size: int) -> str:
    """The stem for an image side: ``cifar`` up to 64 pixels, ``imagenet`` above.

    The ImageNet stem divides the resolution by 4 before the first block, which loses too much of
    a 32x32 image; the CIFAR stem keeps it, which would be slow on large images.
    """
    return "cifar" if positive_int("image_size", image_size) <= SMALL_IMAGE_MAX else "imagenet"


def make_stem(in_channels: int, out_channels: int, kind: str) -> nn.Sequential:
    """The layers before the first residual block, for ``kind`` in :data:`STEMS`.

    ``cifar``: a 3x3 convolution, batch norm and ReLU at full resolution (He et al. 2016, Sec.
    4.2). ``imagenet``: a 7x7 stride-2 convolution, batch norm, ReLU and a 3x3 stride-2 max-pool
    (Table 1 of the paper).
    """
    choice("stem", kind, STEMS)
    if kind == "cifar":
        conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        return nn.Sequential(conv, nn.BatchNorm2d(out_channels), nn.ReLU())
    conv = nn.Conv2d(in_channels, out_channels, 7, stride=2, padding=3, bias=False)
    return nn.Sequential(
        conv, nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1)
    )


def init_weights(model: nn.Module) -> None:
    """He-normal convolutions (fan-out, as torchvision's ResNets), unit-scale zero-shift batch norm."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class ZeroPadShortcut(nn.Module):
    """The parameter-free shortcut of option A (He et al. 2016): subsample, then add zero channels.

    Takes every ``stride``-th pixel (the same grid as a stride-``stride`` 3x3 convolution with
    padding 1, odd sides included) and appends ``out_channels - in_channels`` channels of zeros.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(
                f"a zero-padding (option A) shortcut cannot go from {in_channels} to "
                f"{out_channels} channels; use shortcut='B' (projection) for narrowing stages"
            )
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` subsampled by ``stride`` with ``extra_channels`` zero channels appended."""
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut, ReLU after the sum (post-activation).

    ``conv-BN-ReLU-dropout-conv-BN``, plus the input, then ReLU. Dropout sits between the two
    convolutions, where the Wide ResNet paper (Zagoruyko & Komodakis 2016) puts it. The shortcut
    is the identity unless the shape changes; then option ``A`` zero-pads (no parameters) and
    option ``B`` projects with a strided 1x1 convolution and batch norm.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        shortcut: str = "A",
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.dropout = dropout(dropout_rate)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "A":
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(branch(x) + shortcut(x))``."""
        y = self.dropout(F.relu(self.bn1(self.conv1(x))))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, stages of :class:`BasicBlock` s, global average pooling and a linear layer.

    Stage ``i`` has ``blocks[i]`` blocks of ``widths[i]`` channels; every stage after the first
    starts with a stride-2 block. The CIFAR ResNets of He et al. (2016) are ``blocks=(n, n, n)``,
    ``widths=(16, 32, 64)``, shortcut ``A``, stem ``cifar`` (see :func:`cifar_resnet`); the CIFAR
    ResNet-18 is ``blocks=(2, 2, 2, 2)``, ``widths=(64, 128, 256, 512)``, shortcut ``B`` (see
    :func:`resnet18`). With the ``imagenet`` stem and 1000 classes, ResNet-18 is torchvision's.
    Dropout (``dropout_rate`` > 0) is applied between the two convolutions of every block.
    """

    def __init__(
        self,
        num_classes: int = 10,
        blocks: Sequence[int] = (3, 3, 3),
        widths: Sequence[int] = (16, 32, 64),
        in_channels: int = 3,
        shortcut: str = "A",
        stem: str = "cifar",
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        blocks = positive_ints("blocks", list(blocks))
        widths = positive_ints("widths", list(widths), length=len(blocks))
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "blocks": blocks,
            "widths": widths,
            "in_channels": positive_int("in_channels", in_channels),
            "shortcut": choice("shortcut", shortcut, SHORTCUTS),
            "stem": choice("stem", stem, STEMS),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        if shortcut == "A" and widths != sorted(widths):
            raise ValueError(
                f"shortcut 'A' zero-pads channels, so widths must not decrease; got {widths}"
            )
        self.stem = make_stem(in_channels, widths[0], stem)
        stages = []
        previous = widths[0]
        for index, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            stage = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(BasicBlock(previous, width, stride, shortcut, dropout_rate))
                previous = width
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        features = self.pool(self.stages(self.stem(x)))
        return self.fc(torch.flatten(features, 1))


def cifar_resnet(
    depth: int = 20,
    num_classes: int = 10,
    width: int = 16,
    in_channels: int = 3,
    shortcut: str = "A",
    dropout_rate: float = 0.0,
) -> ResNet:
    """The CIFAR ResNet of depth ``6n + 2`` (He et al. 2016, Sec. 4.2): 3 stages of n blocks.

    ``width`` is the first stage's channels (16 in the paper; the stages have width, 2 width and
    4 width). Option ``A`` (zero-padding) shortcuts as in the paper: ResNet-20 has 0.27M
    parameters, ResNet-56 0.85M, ResNet-110 1.7M (Table 6). ``B`` gives projection shortcuts.
    """
    depth = positive_int("depth", depth)
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"a CIFAR ResNet has depth 6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, ...); "
            f"got depth {depth}"
        )
    n = (depth - 2) // 6
    width = positive_int("width", width)
    return ResNet(
        num_classes=num_classes,
        blocks=(n, n, n),
        widths=(width, 2 * width, 4 * width),
        in_channels=in_channels,
        shortcut=shortcut,
        stem="cifar",
        dropout_rate=dropout_rate,
    )


def resnet18(
    num_classes: int = 10,
    in_channels: int = 3,
    stem: str = "cifar",
    width: int = 64,
    dropout_rate: float = 0.0,
) -> ResNet:
    """ResNet-18: 4 stages of 2 blocks, widths 64-128-256-512, projection (B) shortcuts.

    With the ``cifar`` stem (3x3 convolution, no max-pool) it is the common CIFAR ResNet-18
    (11,173,962 parameters for 10 classes); with the ``imagenet`` stem, He et al.'s ResNet-18.
    ``width`` scales all four stages (64 by default).
    """
    width = positive_int("width", width)
    return ResNet(
        num_classes=num_classes,
        blocks=(2, 2, 2, 2),
        widths=(width, 2 * width, 4 * width, 8 * width),
        in_channels=in_channels,
        shortcut="B",
        stem=stem,
        dropout_rate=dropout_rate,
    )
