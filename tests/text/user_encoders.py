"""Encoders of a user's own, imported by dotted path in the text tests."""

from __future__ import annotations

import torch
from torch import nn


class MeanEmbedding(nn.Module):
    """The mean of the non-padding token embeddings: ids ``(B, L)`` -> ``(B, width)``."""

    def __init__(self, vocab_size: int, pad_id: int, width: int = 12) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = (ids != self.pad_id).unsqueeze(-1).float()
        return (self.embedding(ids) * mask).sum(1) / mask.sum(1).clamp_min(1)


def mean_encoder(vocab_size: int, max_length: int, pad_id: int) -> nn.Module:
    return MeanEmbedding(vocab_size, pad_id)


def not_a_module(vocab_size: int, max_length: int, pad_id: int) -> object:
    return "an encoder"


def wrong_shape(vocab_size: int, max_length: int, pad_id: int) -> nn.Module:
    return nn.Embedding(vocab_size, 4)  # (B, L, 4): one vector per token, not per query
