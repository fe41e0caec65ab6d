"""A fully connected classifier on flattened images (the MNIST MLP of the dropout literature)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from uqbench.models._common import check_dropout_rate, dropout, positive_int, positive_ints


class MLPClassifier(nn.Module):
    """Flatten ``(N, C, H, W)`` images, then ReLU hidden layers, then a linear layer to logits.

    ``image_size`` and ``in_channels`` fix the input width ``C * image_size**2`` (square images).
    Dropout (``dropout_rate`` > 0) follows every hidden ReLU, as in Srivastava et al. (2014) and
    Gal & Ghahramani (2016); the input and the logits are not dropped. The default
    ``hidden_sizes=(256, 256)`` is a small network that reaches about 98% on MNIST.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = {
            "num_classes": positive_int("num_classes", num_classes),
            "in_channels": positive_int("in_channels", in_channels),
            "image_size": positive_int("image_size", image_size),
            "hidden_sizes": positive_ints("hidden_sizes", list(hidden_sizes)),
            "dropout_rate": check_dropout_rate(dropout_rate),
        }
        width = in_channels * image_size * image_size
        layers: list[nn.Module] = [nn.Flatten()]
        for hidden in self.config["hidden_sizes"]:
            layers += [nn.Linear(width, hidden), nn.ReLU(), dropout(self.config["dropout_rate"])]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.layers = nn.Sequential(*layers)
        self.input_shape = (in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for images ``(N, C, H, W)`` of the configured shape."""
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"MLPClassifier was built for images of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"got {tuple(x.shape)}; set in_channels and image_size to the data's"
            )
        return self.layers(x)
