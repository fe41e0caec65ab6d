"""LeNet-5 (LeCun et al. 1998) in its common modern form, for small grey or colour images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from uqbench.models._common import check_dropout_rate, dropout, positive_int, positive_ints

KERNEL = 5


def _layout(image_size: int) -> tuple[int, int, int]:
    """``(padding of conv1, padding of conv2, side of the final feature map)`` for an image side.

    The 1998 network reads 32x32 images with unpadded 5x5 convolutions (32 -> 28 -> 14 -> 10 ->
    5). Smaller images are padded the way LeCun et al. centred 28x28 MNIST digits in a 32x32
    field: conv1 pads by 2 below 32 pixels (28 -> 28 -> 14 -> 10 -> 5, the usual MNIST LeNet),
    and conv2 also pads by 2 when its input is under 10 pixels (8x8 digits: 8 -> 8 -> 4 -> 4 -> 2).
    """
    pad1 = 2 if image_size < 32 else 0
    side = (image_size + 2 * pad1 - KERNEL + 1) // 2
    pad2 = 2 if side < 10 else 0
    return pad1, pad2, (side + 2 * pad2 - KERNEL + 1) // 2


def min_image_size() -> int:
    """The smallest image side LeNet-5 accepts (its final feature map must be at least 1x1)."""
    return next(size for size in range(1, 33) if _layout(size)[2] >= 1)


def _conv_block(in_channels: int, out_channels: int, padding: int, batch_norm: bool) -> list:
    """``conv5x5 -> [BN ->] ReLU -> maxpool2``."""
    conv = nn.Conv2d(in_channels, out_channels, KERNEL, padding=padding, bias=not batch_norm)
    norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
    return [conv, *norm, nn.ReLU(), nn.MaxPool2d(2)]


class LeNet5(nn.Module):
    """LeNet-5: two 5x5 convolutions (6 and 16 maps) with 2x2 max-pooling, then 120 -> 84 -> classes.

    The modern variant used throughout the uncertainty literature: ReLU and max-pooling instead
    of the scaled tanh and trainable sub-sampling, full connections between the convolutions, and
    a linear output instead of RBF units (61,706 parameters for 32x32 grey images and 10 classes,
    against about 60,000 in the 1998 network). Images of any side from :func:`min_image_size`
    work; see :func:`_layout` for the padding. Dropout (``dropout_rate`` > 0) follows every
    hidden layer, after each pooled convolution and each hidden fully connected layer: the
    "lenet-all" placement that Gal & Ghahramani (2016, Bayesian CNNs with Bernoulli approximate
    variational inference) found gives better MC-dropout predictions than dropping only before
    the classifier.

    ``channels`` and ``hidden`` change the widths of the convolutions and the hidden fully
    connected layers; ``batch_norm=True`` normalises each convolution's output before its ReLU
    (the convolutions then have no bias). ``lenet_bn`` is LeNet-5 with batch norm; ``lenet_wide``
    (channels 12 and 32, one hidden layer of 192, batch norm; 166k parameters) is the ``cpu32``
    protocol's network for CIFAR-10 on a CPU, chosen on validation NLL
    (docs/results/cpu32_protocol.md).
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        dropout_rate: float = 0.0,
        batch_norm: bool = False,
        channels: Sequence[int] = (6, 16),
        hidden: Sequence[int] = (120, 84),
    ) -> None:
        super().__init__()
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "in_channels": positive_int("in_channels", in_channels),
            "image_size": positive_int("image_size", image_size),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        # Only what differs from LeNet-5 is recorded, so LeNet-5's checkpoints read as before.
        channels = positive_ints("channels", list(channels), length=2)
        hidden = [positive_int("hidden", h) for h in hidden]
        if batch_norm:
            self.config["batch_norm"] = True
        if channels != [6, 16]:
            self.config["channels"] = channels
        if hidden != [120, 84]:
            self.config["hidden"] = hidden
        if image_size < min_image_size():
            raise ValueError(
                f"LeNet-5 needs images of at least {min_image_size()}x{min_image_size()} pixels, "
                f"got image_size={image_size}; use the mlp model for smaller inputs"
            )
        pad1, pad2, side = _layout(image_size)
        rate = self.config["dropout_rate"]
        c1, c2 = channels
        self.features = nn.Sequential(
            *_conv_block(in_channels, c1, pad1, batch_norm),
            dropout(rate),
            *_conv_block(c1, c2, pad2, batch_norm),
            dropout(rate),
        )
        layers: list[nn.Module] = [nn.Flatten()]
        width = c2 * side * side
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), dropout(rate)]
            width = h
        self.classifier = nn.Sequential(*layers, nn.Linear(width, num_classes))
        self.input_shape = (in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)`` of the configured shape."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"LeNet5 was built for images of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}; set in_channels and image_size to the data's"
            )
        return self.classifier(self.features(x))
