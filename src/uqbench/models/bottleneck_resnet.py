"""Bottleneck residual networks (He et al. 2016): ResNet-50 and its relatives."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, choice, dropout, positive_int, positive_ints
from uqbench.models.resnet import STEMS, init_weights, make_stem, stem_for

EXPANSION = 4


class Bottleneck(nn.Module):
    """``1x1 (width) - 3x3 (width, stride) - 1x1 (4 width)`` convolutions with batch norm, plus a shortcut.

    The stride sits on the 3x3 convolution ("ResNet v1.5", as in torchvision and Uncertainty
    Baselines). The shortcut is the identity unless the shape changes, then a strided 1x1
    convolution with batch norm (option B). ReLU follows the sum. Dropout (``dropout_rate`` > 0)
    follows Uncertainty Baselines' ``resnet50_dropout``: after the ReLU of the first two
    convolutions and on the projection shortcut's output.
    """

    def __init__(
        self, in_channels: int, width: int, stride: int = 1, dropout_rate: float = 0.0
    ) -> None:
        super().__init__()
        out_channels = EXPANSION * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.dropout1 = dropout(dropout_rate)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.dropout2 = dropout(dropout_rate)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
                dropout(dropout_rate),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(branch(x) + shortcut(x))``."""
        y = self.dropout1(F.relu(self.bn1(self.conv1(x))))
        y = self.dropout2(F.relu(self.bn2(self.conv2(y))))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class BottleneckResNet(nn.Module):
    """A stem, four stages of :class:`Bottleneck` blocks, global average pooling, a linear layer.

    Stage ``i`` has ``blocks[i]`` blocks with inner width ``width * 2**i`` and output width four
    times that; stages after the first start with a stride-2 block. ``blocks=(3, 4, 6, 3)`` is
    ResNet-50 (see :func:`resnet50`): 25,557,032 parameters with the ``imagenet`` stem and 1000
    classes (torchvision's count), 23,520,842 with the ``cifar`` stem and 10 classes.
    Dropout (``dropout_rate`` > 0): after the stem and inside each block (see :class:`Bottleneck`),
    as in Uncertainty Baselines' ``resnet50_dropout`` (which drops before the stem's max-pool
    rather than after it).
    """

    def __init__(
        self,
        num_classes: int = 10,
        blocks: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        in_channels: int = 3,
        stem: str = "cifar",
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        blocks = positive_ints("blocks", list(blocks))
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "blocks": blocks,
            "width": positive_int("width", width),
            "in_channels": positive_int("in_channels", in_channels),
            "stem": choice("stem", stem, STEMS),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        self.stem = make_stem(in_channels, width, stem)
        self.stem_dropout = dropout(dropout_rate)
        stages = []
        previous = width
        for index, count in enumerate(blocks):
            inner = width * 2**index
            stage = []
            for block in range(count):
                stride = 2 if index > 0 and block == 0 else 1
                stage.append(Bottleneck(previous, inner, stride, dropout_rate))
                previous = EXPANSION * inner
            stages.append(nn.Sequential(*stage))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        features = self.stages(self.stem_dropout(self.stem(x)))
        return self.fc(torch.flatten(self.pool(features), 1))


def resnet50(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    width: int = 64,
    dropout_rate: float = 0.0,
) -> BottleneckResNet:
    """ResNet-50 with the stem that suits ``image_size``: CIFAR's up to 64 pixels, else ImageNet's.

    See :func:`uqbench.models.resnet.stem_for`; the chosen stem is recorded in ``config``.
    """
    return BottleneckResNet(
        num_classes=num_classes,
        blocks=(3, 4, 6, 3),
        width=width,
        in_channels=in_channels,
        stem=stem_for(image_size),
        dropout_rate=dropout_rate,
    )
