"""Text classifiers by name: ``textcnn`` (Kim 2014), ``transformer`` (a small encoder), or your
own encoder as ``package.module:factory``.

The factory is imported and called with ``vocab_size``, ``max_length`` and ``pad_id`` as
keywords (plus ``dropout_rate`` if it takes it) and returns an ``nn.Module`` mapping token ids
``(B, L)`` to one vector per query ``(B, D)``; :class:`UserTextClassifier` puts dropout and a
linear output layer ``fc`` on top, checked on a probe batch. A pretrained encoder loads its own
weights in the factory, and its vocabulary comes with ``--tokenizer=tokenizer.json``. Checkpoints
record the dotted path, so loading one imports and runs that module again: load only
checkpoints whose code you trust.
"""

from __future__ import annotations

import difflib
from typing import Any

import torch
from torch import nn

from uqbench.models._common import check_dropout_rate, positive_int
from uqbench.models.registry import register_model_class
from uqbench.models.text_transformer import TextTransformer
from uqbench.models.textcnn import TextCNN
from uqbench.models.user_factory import is_factory_path, resolve_factory, takes

TEXT_MODELS = {
    "textcnn": (
        TextCNN,
        "Kim (2014) CNN: 128-d embeddings, 100 filters each of widths 3, 4, 5, max over time, "
        "dropout 0.5 (0.72M parameters with 4,096 tokens and 150 classes)",
    ),
    "transformer": (
        TextTransformer,
        "2 pre-norm transformer blocks of width 128 (4 heads, MLP 256), learned positions, mean "
        "pooling, dropout 0.1, trained from scratch (0.82M parameters with 4,096 tokens, 150 classes)",
    ),
}


class UserTextClassifier(nn.Module):
    """Your encoder (``package.module:factory``: ids ``(B, L)`` -> vectors ``(B, D)``) with
    dropout and a linear output layer ``fc``."""

    def __init__(
        self,
        factory: str,
        vocab_size: int,
        num_classes: int,
        max_length: int = 64,
        dropout_rate: float = 0.0,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.config = {
            "factory": factory,
            "vocab_size": positive_int("vocab_size", vocab_size),
            "num_classes": positive_int("num_classes", num_classes),
            "max_length": positive_int("max_length", max_length),
            "dropout_rate": check_dropout_rate(dropout_rate),
            "pad_id": int(pad_id),
        }
        build = resolve_factory(factory)
        arguments: dict[str, Any] = {
            "vocab_size": vocab_size,
            "max_length": max_length,
            "pad_id": pad_id,
        }
        if takes(build, "dropout_rate"):
            arguments["dropout_rate"] = dropout_rate
        try:
            encoder = build(**arguments)
        except TypeError as err:
            raise ValueError(
                f"--model={factory} must accept vocab_size, max_length and pad_id as keywords: "
                f"{err}"
            ) from err
        if not isinstance(encoder, nn.Module):
            raise ValueError(
                f"--model={factory} must return an nn.Module, got {type(encoder).__name__}"
            )
        self.encoder = encoder
        width = self._probe(min(8, max_length))
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(width, num_classes)

    def _probe(self, length: int) -> int:
        """The encoder's output width, from two queries of ``length`` non-padding ids."""
        vocab, pad = self.config["vocab_size"], self.config["pad_id"]
        ids = torch.tensor([[(pad + 1 + i) % vocab for i in range(length)]] * 2)
        first = next(iter(self.encoder.parameters()), None)
        training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                out = self.encoder(ids.to(first.device if first is not None else "cpu"))
        except Exception as err:  # any failure of the user's code, reported as such
            raise ValueError(
                f"--model={self.config['factory']} fails on a probe batch of token ids of shape "
                f"{tuple(ids.shape)}: {type(err).__name__}: {err}"
            ) from err
        finally:
            self.encoder.train(training)
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"--model={self.config['factory']} must map token ids (2, {length}) to vectors "
                f"(2, D), got {got}"
            )
        return int(out.shape[1])

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The encoder's vector of each query."""
        return self.encoder(ids)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.encoder(ids)))


for _cls in (TextCNN, TextTransformer, UserTextClassifier):
    register_model_class(_cls)


def names() -> list[str]:
    """The text model names :func:`get_text_model` accepts (besides a dotted path)."""
    return sorted(TEXT_MODELS)


def describe() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every text model, for ``uqbench list``."""
    return [(name, text) for name, (_, text) in TEXT_MODELS.items()]


def check_text_model(name: str) -> None:
    """A ``ValueError`` (with close matches) unless ``name`` is a text model or an importable
    ``package.module:factory``; cheap, so a flag is checked before any data loads."""
    if is_factory_path(name):
        resolve_factory(name)
        return
    if not isinstance(name, str) or name.strip().lower() not in TEXT_MODELS:
        close = difflib.get_close_matches(str(name).lower(), TEXT_MODELS, n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown text model {name!r}.{hint} Known: {', '.join(names())}, or your own "
            "encoder as package.module:factory"
        )


def get_text_model(
    name: str,
    vocab_size: int,
    num_classes: int,
    max_length: int = 64,
    pad_id: int = 0,
    dropout_rate: float | None = None,
    **options: Any,
) -> nn.Module:
    """A freshly initialised text classifier ``name`` (ids ``(B, L)`` -> logits ``(B, K)``);
    ``dropout_rate`` None keeps the model's default; ``options`` are its other constructor
    arguments (e.g. ``embed_dim``, ``depth``)."""
    check_text_model(name)
    extra = {} if dropout_rate is None else {"dropout_rate": dropout_rate}
    if is_factory_path(name):
        if options:
            raise ValueError(f"model {name!r} is built by its factory alone; got {options}")
        return UserTextClassifier(name, vocab_size, num_classes, max_length, pad_id=pad_id, **extra)
    cls = TEXT_MODELS[name.strip().lower()][0]
    if cls is TextTransformer:
        options["max_length"] = max_length
    try:
        return cls(vocab_size, num_classes, pad_id=pad_id, **extra, **options)
    except TypeError as err:
        raise ValueError(f"text model {name!r}: {err}") from None
