"""TextCNN (Kim 2014): word embeddings, convolutions of several widths, max over time.

``(B, L)`` token ids in, ``(B, K)`` logits out. Each convolution spans ``width`` tokens and the
whole embedding, as in the paper: an ``nn.Conv2d`` with the embedding dimensions as input
channels and a ``(1, width)`` kernel over a ``(B, D, 1, L)`` input, so the BatchEnsemble and
spectral-normalisation layers of ``uqbench.layers`` apply to it unchanged. (The paper's layout, one
input channel and a ``(width, D)`` kernel, computes the same function but trains 1.8x slower
on a CPU with oneDNN.) Dropout sits before the output layer ``fc`` (Kim's 0.5).

Padding never changes a prediction: the sequence is right-padded with zero embeddings by
``max(widths) - 1`` positions, so every window that starts on a token exists whatever the
batch's width, and windows that start on padding are left out of the max (zeroed after the
ReLU, whose outputs are >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from uqbench.models._common import check_dropout_rate, positive_int, positive_ints


class TextCNN(nn.Module):
    """Kim's (2014) convolutional sentence classifier, trained from scratch: embeddings of
    ``embed_dim``, ``num_filters`` filters of each of ``kernel_sizes`` widths, ReLU, max over
    time, dropout and a linear output layer ``fc``."""

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        num_filters: int = 100,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        dropout_rate: float = 0.5,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        widths = positive_ints("kernel_sizes", list(kernel_sizes))
        self.config = {
            "vocab_size": positive_int("vocab_size", vocab_size),
            "num_classes": positive_int("num_classes", num_classes),
            "embed_dim": positive_int("embed_dim", embed_dim),
            "num_filters": positive_int("num_filters", num_filters),
            "kernel_sizes": widths,
            "dropout_rate": check_dropout_rate(dropout_rate),
            "pad_id": int(pad_id),
        }
        self.pad_id = int(pad_id)
        self.widths = widths
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.convs = nn.ModuleList(nn.Conv2d(embed_dim, num_filters, (1, w)) for w in widths)
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(num_filters * len(widths), num_classes)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The max-pooled convolution features ``(B, num_filters * len(kernel_sizes))``."""
        if ids.dim() != 2:
            raise ValueError(f"TextCNN takes token ids (B, L), got shape {tuple(ids.shape)}")
        width = ids.shape[1]
        lengths = (ids != self.pad_id).sum(dim=1).clamp_min(1)
        starts = torch.arange(width, device=ids.device) < lengths.unsqueeze(1)  # (B, L)
        x = self.embedding(ids).transpose(1, 2)  # (B, D, L)
        x = F.pad(x, (0, max(self.widths) - 1)).unsqueeze(2)  # (B, D, 1, L + w - 1)
        pooled = []
        for conv in self.convs:
            h = F.relu(conv(x)).squeeze(2)[..., :width]  # (B, F, L): windows from each start
            pooled.append((h * starts.unsqueeze(1)).amax(dim=-1))
        return torch.cat(pooled, dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(ids)))
