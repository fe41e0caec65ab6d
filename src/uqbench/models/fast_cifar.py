"""A small convolutional network built for training speed on CIFAR-10 (the "fast protocol").

The design follows the fastest published CIFAR-10 training runs:

- David Page, "How to train your ResNet" (Myrtle.ai, 2018; DAWNBench): a 9-layer network of
  conv-BN-ReLU blocks with max-pooling, a final pooling and a linear layer whose output is
  scaled down (by 1/8); later posts of the series whiten the first layer's input patches.
- Keller Jordan's airbench (``airbench94.py``, 2024; descended from tysam-code's hlb-CIFAR10):
  a fixed 2x2 patch-whitening convolution with a learned bias, GELU, three groups of
  ``conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU`` with widths 64/256/256, batch
  norm with a learned shift but no learned scale (momentum 0.4 in PyTorch's convention,
  epsilon 1e-12), convolutions initialised as the identity on their first input channels
  (Dirac), a 3x3 max-pool, a bias-free linear layer and logits scaled by 1/9. With its recipe it
  reaches 94.0% test accuracy in about 10 epochs (3.8 s on an A100).

:class:`FastCifarNet` is that network written as a plain module (its global max-pool equals the
3x3 pool on 32x32 inputs and also accepts other sizes). The training recipe (optimiser,
schedule, augmentation, test-time augmentation) belongs to the training code; see the class
docstring for what the published runs used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, dropout, positive_int, positive_ints

BATCHNORM_EPS = 1e-12
POOLINGS = 3


def min_image_size(whiten_kernel_size: int = 2) -> int:
    """The smallest image side the network accepts: the whitening layer must leave 8 pixels for
    the three 2x2 max-pools."""
    return 2**POOLINGS + positive_int("whiten_kernel_size", whiten_kernel_size) - 1


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class ShiftBatchNorm(nn.BatchNorm2d):
    """Batch norm with a learned shift (``bias``) but no learned scale.

    The normalised activations keep unit scale; only ``bias`` is a parameter. Built as
    ``nn.BatchNorm2d(affine=False)`` plus a ``bias`` parameter, which ``F.batch_norm`` applies
    (so it compiles and vectorises like ordinary batch norm).
    """

    def __init__(self, num_features: int, momentum: float, eps: float = BATCHNORM_EPS) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))


class PatchWhitening(nn.Module):
    """A fixed ``k x k`` convolution that whitens image patches, with a learned bias.

    It has ``2 * C * k * k`` output channels: one filter per eigenvector ``v`` of the patches'
    second-moment matrix, scaled by ``1 / sqrt(eigenvalue + eps)``, and its negation (so a
    following GELU keeps both signs). The filters are a buffer, set by :meth:`fit` from training
    images and never trained; until then they assume already white patches (the eigenvectors are
    the unit vectors), i.e. each filter passes one patch pixel, or its negation, through.
    """

    def __init__(self, in_channels: int = 3, kernel_size: int = 2) -> None:
        super().__init__()
        self.in_channels = positive_int("in_channels", in_channels)
        self.kernel_size = positive_int("whiten_kernel_size", kernel_size)
        dim = in_channels * kernel_size * kernel_size
        eye = torch.eye(dim).view(dim, in_channels, kernel_size, kernel_size)
        self.register_buffer("weight", torch.cat([eye, -eye]))
        self.bias = nn.Parameter(torch.zeros(2 * dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The whitened patches, ``(N, 2 C k k, H - k + 1, W - k + 1)``."""
        return F.conv2d(x, self.weight, self.bias)

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float = 5e-4, chunk: int = 256) -> None:
        """Set the filters from ``images`` ``(N, C, H, W)``, normalised as the model will see them.

        Uses every ``k x k`` patch of every image (Page 2018; airbench uses 5,000 training
        images). ``eps`` keeps directions of tiny variance from being blown up. The second moment
        is accumulated ``chunk`` images at a time, so memory stays small for any ``N``.
        """
        k = self.kernel_size
        if not isinstance(images, torch.Tensor) or images.dim() != 4:
            raise ValueError(
                f"images must be a tensor (N, C, H, W), got {getattr(images, 'shape', type(images))}"
            )
        if images.shape[1] != self.in_channels or min(images.shape[2:]) < k or not len(images):
            raise ValueError(
                f"images must be (N >= 1, {self.in_channels}, H >= {k}, W >= {k}) to fit "
                f"{k}x{k} whitening filters, got {tuple(images.shape)}"
            )
        if not images.is_floating_point() or not bool(torch.isfinite(images).all()):
            raise ValueError("images must be finite floating-point values (normalise them first)")
        if not _is_number(eps) or eps <= 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        dim = self.in_channels * k * k
        moment = torch.zeros(dim, dim, dtype=torch.float64)
        count = 0
        for part in images.split(chunk):
            columns = F.unfold(part.float(), k)  # (n, C k k, patches), in the filters' layout
            moment += torch.einsum("ndl,nel->de", columns, columns).double().cpu()
            count += columns.shape[0] * columns.shape[2]
        eigenvalues, eigenvectors = torch.linalg.eigh(moment / count)
        order = eigenvalues.argsort(descending=True)
        scaled = eigenvectors[:, order].T / torch.sqrt(eigenvalues[order, None] + eps)
        filters = scaled.view(dim, self.in_channels, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight))


class ConvGroup(nn.Module):
    """``conv3x3 -> maxpool2 -> BN -> GELU -> dropout -> conv3x3 -> BN -> GELU``, halving the side."""

    def __init__(
        self, in_channels: int, out_channels: int, momentum: float, dropout_rate: float
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = ShiftBatchNorm(out_channels, momentum)
        self.dropout = dropout(dropout_rate)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = ShiftBatchNorm(out_channels, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The group's output, at half the input's height and width."""
        x = self.dropout(F.gelu(self.norm1(self.pool(self.conv1(x)))))
        return F.gelu(self.norm2(self.conv2(x)))


class FastCifarNet(nn.Module):
    """Patch whitening, GELU, three :class:`ConvGroup` s, global max-pool, scaled linear logits.

    About 1.97M parameters with the default widths (64, 256, 256). Call :meth:`init_from_images`
    with (a few thousand) normalised training images before training; without it the first layer
    passes raw patches through. Dropout (``dropout_rate`` > 0) sits between the two convolutions
    of each group (the published runs use none).

    The published recipe (airbench94: 94.0% in 9.9 epochs), for the training code to follow:
    batch 1024; the cross-entropy with label smoothing 0.2, summed (not averaged) over the
    batch; Nesterov SGD with momentum 0.85, ``lr = 11.5 / s`` and decoupled weight decay
    ``wd = 0.0153 * 1024 / s`` where ``s = 1024 * (1 + 1 / (1 - 0.85))`` (i.e.
    ``torch.optim.SGD(lr=lr, weight_decay=wd / lr, momentum=0.85, nesterov=True)``), and the
    batch-norm biases in a group with 64x the learning rate and the same decay step
    (``weight_decay = wd / (64 lr)``); a piecewise-linear schedule rising from 0.2x to 1x at 23%
    of the steps and falling to 0.07x at the end; the whitening bias trained for the first 3
    epochs only, then frozen; horizontal flips (each image flipped on alternate epochs) and random
    translations by up to 2 pixels (reflection padding); an exponential moving average of the
    weights copied back every 5 steps from epoch 3 ("lookahead"); test-time augmentation
    averaging the logits of the image and its mirror image, and of both translated by one pixel
    up-left and down-right (weights 1/4, 1/4, 1/8 x 4). Page's ResNet-9 recipe (94% in 24 epochs)
    is simpler: batch 512, Nesterov SGD with momentum 0.9 and weight decay 5e-4 x 512 on the
    summed loss, learning rate rising linearly to 0.4 at epoch 5 and falling to 0 at epoch 24
    (divided by 512), label smoothing 0.2, flip + pad-4 random crop + 8x8 cutout, flip
    test-time augmentation.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        widths: Sequence[int] = (64, 256, 256),
        whiten_kernel_size: int = 2,
        output_scale: float = 1 / 9,
        batchnorm_momentum: float = 0.4,
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        widths = positive_ints("widths", list(widths), length=POOLINGS)
        if not _is_number(output_scale) or output_scale <= 0:
            raise ValueError(f"output_scale must be a positive number, got {output_scale!r}")
        if not _is_number(batchnorm_momentum) or not 0 < batchnorm_momentum <= 1:
            raise ValueError(
                f"batchnorm_momentum (PyTorch's convention: the weight of each new batch's "
                f"statistics) must be in (0, 1], got {batchnorm_momentum!r}"
            )
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "in_channels": positive_int("in_channels", in_channels),
            "widths": widths,
            "whiten_kernel_size": positive_int("whiten_kernel_size", whiten_kernel_size),
            "output_scale": float(output_scale),
            "batchnorm_momentum": float(batchnorm_momentum),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        self.whiten = PatchWhitening(in_channels, whiten_kernel_size)
        previous = self.whiten.weight.shape[0]
        groups = []
        for width in widths:
            groups.append(ConvGroup(previous, width, batchnorm_momentum, dropout_rate))
            previous = width
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(previous, num_classes, bias=False)
        self.output_scale = float(output_scale)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.dirac_(module.weight[: module.in_channels])

    def init_from_images(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the whitening filters from normalised training images ``(N, C, H, W)``.

        See :meth:`PatchWhitening.fit`; the published runs use 5,000 training images.
        """
        self.whiten.fit(images, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)`` of side at least
        :func:`min_image_size`."""
        x = self.groups(F.gelu(self.whiten(x)))
        return self.fc(torch.flatten(self.pool(x), 1)) * self.output_scale
