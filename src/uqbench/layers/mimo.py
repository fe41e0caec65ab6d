"""MIMO: M subnetworks trained inside one network (Havasi et al. 2021, "Training independent
subnetworks for robust prediction").

One network sees M images at once, stacked on the channel axis, and gives M predictions: its
first layer takes ``M * C`` channels and its last linear layer ``M * K`` logits, member ``m``'s
being ``[m*K, (m+1)*K)``. In training member ``m``'s image and label come from its own shuffle
of the batch (:class:`MIMOBatches`), so nothing ties one input to another head and the network
learns M independent subnetworks; at test every member gets the same image and their softmax
outputs are averaged. As in Uncertainty Baselines' ``wide_resnet_mimo.py``, the stacked input's
channel ``c * M + m`` is channel ``c`` of member ``m``'s image.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn


def _leaves_with_parameters(network: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, module)
        for name, module in network.named_modules()
        if next(module.parameters(recurse=False), None) is not None
    ]


class MIMO(nn.Module):
    """M subnetworks in one ``network`` whose first layer (a ``Conv2d``, or a ``Linear`` on the
    flattened image) reads M stacked images and whose last layer (a ``Linear``) gives M heads.

    Build ``network`` for ``M * C`` input channels and ``M * K`` classes (e.g.
    ``models.get(name, num_classes=M * K, in_channels=M * C)``). ``forward`` takes one image
    per member, ``(M, B, C, H, W)``, or one image for all, ``(B, C, H, W)`` (repeated M times,
    the test-time input), and returns logits ``(M, B, K)``.
    """

    def __init__(self, network: nn.Module, num_members: int) -> None:
        super().__init__()
        if isinstance(num_members, bool) or not isinstance(num_members, int) or num_members < 1:
            raise ValueError(f"num_members must be a positive integer, got {num_members!r}")
        layers = _leaves_with_parameters(network)
        if not layers:
            raise ValueError("MIMO needs a network with parameters")
        (stem_name, stem), (head_name, head) = layers[0], layers[-1]
        kind = type(network).__name__
        if not isinstance(stem, nn.Conv2d | nn.Linear):
            raise ValueError(
                f"MIMO stacks the members' images on the channel axis of the network's first "
                f"layer, which must be a Conv2d (or a Linear on the flattened image); {kind}'s "
                f"first layer {stem_name!r} is a {type(stem).__name__}"
            )
        width = stem.in_channels if isinstance(stem, nn.Conv2d) else stem.in_features
        if width % num_members:
            raise ValueError(
                f"{kind}'s first layer {stem_name!r} takes {width} inputs, not a multiple of "
                f"num_members={num_members}: build the network for num_members * C channels"
            )
        if not isinstance(head, nn.Linear) or head.out_features % num_members:
            what = (
                f"a Linear with {head.out_features} outputs"
                if isinstance(head, nn.Linear)
                else f"a {type(head).__name__}"
            )
            raise ValueError(
                f"MIMO splits the network's last layer into num_members={num_members} heads: it "
                f"must be a Linear with num_members * K outputs; {kind}'s {head_name!r} is {what}"
            )
        self.network = network
        self.num_members = num_members
        self.num_classes = head.out_features // num_members
        self._stem = stem

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """``(M, B, C, H, W)`` -> ``(B, C * M, H, W)``: channel ``c * M + m`` is member ``m``'s
        channel ``c`` (Uncertainty Baselines' Permute + Reshape)."""
        members, batch, channels, *space = x.shape
        return x.permute(1, 2, 0, 3, 4).reshape(batch, channels * members, *space)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(M, B, K)``: member ``m``'s head on the stacked inputs."""
        m = self.num_members
        if x.dim() == 4:
            x = x.unsqueeze(0).expand(m, *x.shape)
        if x.dim() != 5 or x.shape[0] != m:
            raise ValueError(
                f"MIMO with {m} members takes images (B, C, H, W) or one batch per member "
                f"({m}, B, C, H, W), got {tuple(x.shape)}"
            )
        stem = self._stem
        per_image = stem.in_channels if isinstance(stem, nn.Conv2d) else stem.in_features
        given = x.shape[2] if isinstance(stem, nn.Conv2d) else math.prod(x.shape[2:])
        if given * m != per_image:
            raise ValueError(
                f"the network's first layer takes {per_image} = {m} members x "
                f"{per_image // m} inputs per image, got images of shape {tuple(x.shape[2:])}"
            )
        logits = self.network(self.stack(x))
        return logits.reshape(x.shape[1], m, self.num_classes).transpose(0, 1)


@dataclass(frozen=True)
class MIMOBatches:
    """MIMO's training batches, as Uncertainty Baselines' ``cifar/mimo.py``: each step takes
    ``batch_size // batch_repetitions`` new examples, tiles them ``batch_repetitions`` times and
    shuffles; each member then reshuffles the first ``(1 - input_repetition)`` of that order on
    its own, the rest being the same image for every member."""

    num_members: int
    batch_repetitions: int = 1
    input_repetition: float = 0.0

    def __post_init__(self) -> None:
        if self.num_members < 1:
            raise ValueError(f"--num_members must be at least 1, got {self.num_members}")
        if self.batch_repetitions < 1:
            raise ValueError(f"--batch_repetition must be at least 1, got {self.batch_repetitions}")
        if not 0.0 <= self.input_repetition <= 1.0:
            raise ValueError(f"--input_repetition must be in [0, 1], got {self.input_repetition}")

    def new_examples(self, n: int, batch_size: int) -> int:
        """How many new examples a step takes (at most ``n``)."""
        if batch_size < self.batch_repetitions:
            raise ValueError(
                f"--batch_size ({batch_size}) must be at least --batch_repetition "
                f"({self.batch_repetitions}): a step takes batch_size // batch_repetition new "
                "examples"
            )
        return min(batch_size // self.batch_repetitions, n)

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        """Steps per pass over ``n`` examples (UB: ``N // (batch_size // batch_repetitions)``)."""
        return max(1, n // self.new_examples(n, batch_size))

    def indices(
        self, n: int, batch_size: int, generator: torch.Generator
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch of ``(new, arrangement)``: the step's new examples ``(b,)`` (indices into
        the data) and ``(M, b * batch_repetitions)`` indices into ``new``, one row per member."""
        b = self.new_examples(n, batch_size)
        device = generator.device
        order = torch.argsort(torch.rand(n, generator=generator, device=device))
        tiled = torch.arange(b, device=device).repeat(self.batch_repetitions)
        shuffled = int(tiled.numel() * (1.0 - self.input_repetition))
        for start in range(0, n - b + 1, b):
            main = tiled[
                torch.argsort(torch.rand(tiled.numel(), generator=generator, device=device))
            ]
            keys = torch.rand(self.num_members, shuffled, generator=generator, device=device)
            own = main[:shuffled][torch.argsort(keys, dim=1)]
            shared = main[shuffled:].expand(self.num_members, -1)
            yield order[start : start + b], torch.cat([own, shared], dim=1)
