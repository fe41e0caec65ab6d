"""Tokenisation of text sets with Hugging Face ``tokenizers``: a vocabulary built from the
training split, or a pretrained ``tokenizer.json`` of the user's.

The vocabulary (:func:`build_tokenizer`) is ``[PAD]`` (id 0), ``[UNK]`` (id 1), every character
of the training split (alone and as a ``##`` continuation), then the training split's words by
frequency (ties alphabetical) up to ``vocab_size`` entries (:data:`DEFAULT_VOCAB_SIZE`; CLINC150
fills it); text is lower-cased and accents are stripped (BERT's uncased normalisation and
pre-tokenisation). It is applied by the library's WordPiece model, so a word the training split
never used (out-of-scope queries often have them) becomes known pieces down to characters
rather than one ``[UNK]``. Why not the library's WordPiece trainer: it breaks ties between
equally frequent merges in hash-map order, so two trainings on the same text gave different
vocabularies (823 of 4,096 ids differed on CLINC150); this one depends on the text alone. Why
the library at all: pretrained encoders ship their vocabularies as its ``tokenizer.json``, so a
user's encoder brings its own (:func:`load_tokenizer`).

Token ids are int64 tensors ``(N, L)``, right-padded with the pad id to the longest sequence of
the set (at most ``max_length``; longer sequences are cut); the training and prediction code
trims each batch to its own longest sequence on the device (:func:`trim_padding`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
from tokenizers.models import WordPiece

from uqbench.data.paths import DataError

DEFAULT_VOCAB_SIZE = 4096
DEFAULT_MAX_LENGTH = 64
PAD, UNK = "[PAD]", "[UNK]"
PAD_NAMES = (PAD, "<pad>")


def build_tokenizer(texts: Sequence[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> Tokenizer:
    """A WordPiece tokenizer whose vocabulary comes from ``texts`` (see the module docstring):
    ``[PAD]`` = 0, ``[UNK]`` = 1, the characters, then the most frequent words, at most
    ``vocab_size`` entries."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 16:
        raise DataError(f"vocab_size must be an integer of at least 16, got {vocab_size!r}")
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    characters = sorted({c for word in counts for c in word})
    tokens = [PAD, UNK, *characters, *(f"##{c}" for c in characters)]
    if len(tokens) > vocab_size:
        raise DataError(
            f"vocab_size={vocab_size} is too small for the {len(characters)} characters of the "
            f"training texts (they need {len(tokens)} entries); give a larger --vocab_size"
        )
    known = set(tokens)
    words = [w for w in sorted(counts, key=lambda w: (-counts[w], w)) if w not in known]
    tokens += words[: vocab_size - len(tokens)]
    model = WordPiece({t: i for i, t in enumerate(tokens)}, unk_token=UNK)
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.WordPiece()
    return tokenizer


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """A pretrained tokenizer from a Hugging Face ``tokenizer.json`` file; it must have a pad
    token (``[PAD]`` or ``<pad>``)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"tokenizer file {path} does not exist (give a tokenizer.json)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # the Rust library raises its own exception type
        raise DataError(f"{path} is not a Hugging Face tokenizer.json: {err}") from None
    pad_id(tokenizer, source=str(path))
    return tokenizer


def tokenizer_from_json(text: str) -> Tokenizer:
    """A tokenizer saved with ``tokenizer.to_str()`` (as checkpoints keep it)."""
    return Tokenizer.from_str(text)


def pad_id(tokenizer: Tokenizer, source: str = "the tokenizer") -> int:
    """The id of the tokenizer's pad token (``[PAD]`` or ``<pad>``)."""
    for name in PAD_NAMES:
        found = tokenizer.token_to_id(name)
        if found is not None:
            return int(found)
    raise DataError(f"{source} has no pad token ({' or '.join(PAD_NAMES)}); add one")


def encode(
    tokenizer: Tokenizer, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH
) -> torch.Tensor:
    """Token ids of ``texts`` as int64 ``(N, L)``, cut at ``max_length`` tokens and right-padded
    with the pad id to the longest (``L`` >= 1). A text that gives no token is an error."""
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise DataError(f"max_length must be a positive integer, got {max_length!r}")
    pad = pad_id(tokenizer)
    rows = [e.ids[:max_length] for e in tokenizer.encode_batch(list(texts))]
    empty = [i for i, row in enumerate(rows) if not row]
    if empty:
        raise DataError(
            f"text {empty[0]} ({texts[empty[0]]!r}) gives no token after normalisation; "
            f"{len(empty)} such text(s) in all"
        )
    width = max((len(row) for row in rows), default=1)
    ids = np.full((len(rows), width), pad, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return torch.from_numpy(ids)


def trim_padding(ids: torch.Tensor, pad: int) -> torch.Tensor:
    """``ids`` (``(..., L)``) without the trailing columns that are padding in every row (at
    least one column is kept); runs on the tensor's device."""
    used = (ids != pad).reshape(-1, ids.shape[-1]).any(dim=0)
    width = int(used.nonzero().max()) + 1 if bool(used.any()) else 1
    return ids[..., :width]
