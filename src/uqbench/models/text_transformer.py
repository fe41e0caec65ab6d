"""A small transformer encoder for text classification, trained from scratch.

``(B, L)`` token ids in, ``(B, K)`` logits out: token plus learned position embeddings,
``depth`` pre-norm blocks (multi-head self-attention that ignores padding, then a GELU MLP),
a final layer norm, the mean over the non-padding positions, dropout and the output layer
``fc``. Every projection is an ``nn.Linear`` (attention included), so the ensemble and
spectral-normalisation layers of ``uqbench.layers`` can replace them. Padding never changes a
prediction: padded keys are masked out of attention and padded positions out of the mean.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, positive_int


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention over the positions that ``mask`` keeps."""

    def __init__(self, dim: int, heads: int, dropout_rate: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.dropout_rate = dropout_rate
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        q, k, v = (
            t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)
            for t in self.qkv(x).split(dim, dim=-1)
        )
        keep = mask[:, None, None, :]  # (B, 1, 1, L): True where a key is a token
        drop = self.dropout_rate if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=drop)
        return self.out(y.transpose(1, 2).reshape(batch, length, dim))


class EncoderBlock(nn.Module):
    """``x + attention(norm(x))``, then ``x + mlp(norm(x))`` (pre-norm), with dropout."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout_rate: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp_in = nn.Linear(dim, mlp_dim)
        self.mlp_out = nn.Linear(mlp_dim, dim)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.norm1(x), mask))
        return x + self.dropout(self.mlp_out(F.gelu(self.mlp_in(self.norm2(x)))))


class TextTransformer(nn.Module):
    """A ``depth``-block transformer encoder of width ``dim`` over at most ``max_length``
    tokens, mean-pooled, with a linear output layer ``fc``."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_length: int = 64,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_dim: int = 256,
        dropout_rate: float = 0.1,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.config = {
            "vocab_size": positive_int("vocab_size", vocab_size),
            "num_classes": positive_int("num_classes", num_classes),
            "max_length": positive_int("max_length", max_length),
            "dim": positive_int("dim", dim),
            "depth": positive_int("depth", depth),
            "heads": positive_int("heads", heads),
            "mlp_dim": positive_int("mlp_dim", mlp_dim),
            "dropout_rate": check_dropout_rate(dropout_rate),
            "pad_id": int(pad_id),
        }
        self.pad_id = int(pad_id)
        self.max_length = max_length
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.position = nn.Embedding(max_length, dim)
        self.blocks = nn.ModuleList(
            EncoderBlock(dim, heads, mlp_dim, dropout_rate) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(dim, num_classes)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The mean of the final token representations over the non-padding positions."""
        if ids.dim() != 2 or ids.shape[1] > self.max_length:
            raise ValueError(
                f"TextTransformer takes token ids (B, L) with L <= {self.max_length}, got "
                f"shape {tuple(ids.shape)}"
            )
        mask = ids != self.pad_id
        mask[:, 0] = True  # an all-padding row still has one position to attend to
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embedding(ids) + self.position(positions)
        for block in self.blocks:
            x = block(x, mask)
        weights = mask.unsqueeze(-1).to(x.dtype)
        return (self.norm(x) * weights).sum(dim=1) / weights.sum(dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(ids)))
