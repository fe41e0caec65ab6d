"""Wide residual networks (Zagoruyko & Komodakis 2016), as Uncertainty Baselines builds them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, dropout, positive_int


def blocks_per_group(depth: int) -> int:
    """The number of blocks per group, ``(depth - 4) / 6``, of a WRN of this depth (16, 22, 28, 40, ...)."""
    depth = positive_int("depth", depth)
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(
            f"a Wide ResNet has depth 6n+4 with n >= 1 (10, 16, 22, 28, 40, ...); got depth {depth}"
        )
    return (depth - 4) // 6


class WideBlock(nn.Module):
    """Pre-activation basic block: ``BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3``, plus the shortcut.

    Dropout (elementwise) right after the first convolution, before the second batch norm, as
    Uncertainty Baselines' ``wide_resnet_dropout`` places it with its default
    ``residual_dropout=True`` (the WRN paper's Torch code drops after the second ReLU instead).
    When the shape changes, the shortcut is a strided 1x1 convolution of the block's raw input
    (as in UB's ``wide_resnet``; the original Torch code projects the pre-activated input).
    """

    def __init__(
        self, in_channels: int, out_channels: int, stride: int = 1, dropout_rate: float = 0.0
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.dropout = dropout(dropout_rate)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``branch(x) + shortcut(x)``, with no activation after the sum (pre-activation)."""
        y = self.dropout(self.conv1(F.relu(self.bn1(x))))
        y = self.conv2(F.relu(self.bn2(y)))
        return y + self.shortcut(x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen_factor``: a 3x3 stem of 16 channels, three groups of wide blocks.

    The groups have ``(depth - 4) / 6`` blocks of ``16k``, ``32k`` and ``64k`` channels
    (``k = widen_factor``) at strides 1, 2, 2; then batch norm, ReLU, global average pooling and
    a linear layer. WRN-28-10 has 36,479,194 parameters for 10 classes (36.5M in Table 1 of the
    paper), WRN-16-4 2,748,890. Convolutions and the output layer are He-normal initialised, as
    in Uncertainty Baselines. Dropout (``dropout_rate`` > 0): in each block only (none after the
    stem), see :class:`WideBlock`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        depth: int = 28,
        widen_factor: int = 10,
        in_channels: int = 3,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "depth": positive_int("depth", depth),
            "widen_factor": positive_int("widen_factor", widen_factor),
            "in_channels": positive_int("in_channels", in_channels),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        n = blocks_per_group(depth)
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        groups = []
        previous = 16
        for index, width in enumerate((16 * widen_factor, 32 * widen_factor, 64 * widen_factor)):
            blocks = []
            for block in range(n):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(WideBlock(previous, width, stride, dropout_rate))
                previous = width
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.Sequential(*groups)
        self.bn = nn.BatchNorm2d(previous)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(previous, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)``."""
        features = F.relu(self.bn(self.groups(self.stem(x))))
        return self.fc(torch.flatten(self.pool(features), 1))
