"""Text classification sets with out-of-scope queries: :func:`load_text` (exported as
``uqbench.data.get_text``) gives a :class:`TextDataset` of token-id tensors.

    from uqbench import data
    d = data.get_text("clinc150", data_dir="../shared/data")   # DIR/clinc150/data_full.json
    d = data.get_text("my_intents.json")   # the same JSON layout, by path
    d = data.get_text("my_intents.csv")    # text,label[,split] rows

Layouts:

- **JSON** (CLINC150's published ``data_full.json``): an object whose ``train`` and ``test``
  (required) and ``val`` (optional) are lists of ``[text, label]`` pairs of in-scope queries,
  and whose ``oos_val`` / ``oos_test`` (optional) are the out-of-scope queries, the OOD sets
  (``oos_val`` for choices made on validation data, ``oos_test`` for the reported numbers);
  ``oos_train`` is not used (no method here trains on out-of-scope queries). A ``domains.json``
  beside the file (domain -> intents) is read when present.
- **CSV** with a header naming ``text`` and ``label`` and optionally ``split`` (one of the JSON
  keys above). Without ``split``, rows labelled ``oos`` are the out-of-scope queries (split in
  halves, ``oos_val`` and ``oos_test``) and the other rows are split 80/20 into train and test,
  stratified by label, with a generator seeded by 0 (the same split every time).

A set given by path is named by its file's stem (by its folder for a file called
``data_full.json``). Without a ``val`` part, ``validation_fraction`` of the training part is carved out, stratified
by label and seeded by ``seed``. The tokenizer (``uqbench.data.tokenize``) is built from the
training texts, or loaded from a ``tokenizer.json``. Refused with a :class:`DataError` before
anything trains: a file without the required keys or columns, an entry that is not a
``[text, label]`` pair of strings, an empty text, fewer than two classes, and validation or
test labels that the training part never has.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from uqbench.data import tokenize
from uqbench.data.images import stratified_validation
from uqbench.data.paths import DataError, resolve_data_dir
from uqbench.data.text_paths import REGISTERED, is_text_file

IN_SCOPE_PARTS = ("train", "val", "test")
OOD_PARTS = ("oos_val", "oos_test")
KNOWN_PARTS = (*IN_SCOPE_PARTS, "oos_train", *OOD_PARTS)
OOS_LABEL = "oos"
CSV_TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False, repr=False)
class TextOODSet:
    """Out-of-scope queries as token ids ``inputs`` (int64 ``(N, L)``, padded) under a
    file-name-safe ``name``, with a one-line ``description``."""

    name: str
    inputs: torch.Tensor
    description: str

    def __len__(self) -> int:
        """How many queries."""
        return int(self.inputs.shape[0])

    def to(self, device: torch.device | str) -> TextOODSet:
        """The same queries on ``device``."""
        return dataclasses.replace(self, inputs=self.inputs.to(device))

    def __repr__(self) -> str:
        return f"TextOODSet(name={self.name!r}, queries={len(self)}, {self.description!r})"


@dataclass(frozen=True, eq=False, repr=False)
class TextDataset:
    """A text classification set as token ids: ``x_*`` int64 ``(N, L)`` right-padded with
    ``pad_id``, ``y_*`` int64 labels in ``[0, num_classes)``; ``ood_val`` / ``ood_test`` the
    out-of-scope sets (None where the file has none). ``tokenizer`` maps text to ids;
    ``data_hash`` is the SHA-256 of the file read; ``validation_fraction`` the share of the
    training part carved out as validation (0 when the file has a val part)."""

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    ood_val: TextOODSet | None
    ood_test: TextOODSet | None
    class_names: tuple[str, ...]
    tokenizer: Tokenizer
    pad_id: int
    max_length: int
    data_hash: str
    domains: Mapping[str, tuple[str, ...]] | None = None
    validation_fraction: float = 0.0

    @property
    def num_classes(self) -> int:
        """How many classes (intents)."""
        return len(self.class_names)

    @property
    def vocab_size(self) -> int:
        """Entries of the tokenizer's vocabulary (the embedding table's rows)."""
        return int(self.tokenizer.get_vocab_size())

    @property
    def device(self) -> torch.device:
        """Where the tensors are."""
        return self.x_train.device

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Token ids of new ``texts``, as the set's were made (on the CPU)."""
        return tokenize.encode(self.tokenizer, texts, self.max_length)

    def to(self, device: torch.device | str) -> TextDataset:
        """The same data with every tensor on ``device``."""
        device = torch.device(device)
        if self.device == device:
            return self
        moved: dict[str, Any] = {
            f"{kind}_{part}": getattr(self, f"{kind}_{part}").to(device)
            for kind in ("x", "y")
            for part in IN_SCOPE_PARTS
        }
        for part in ("ood_val", "ood_test"):
            ood = getattr(self, part)
            moved[part] = ood.to(device) if ood is not None else None
        return dataclasses.replace(self, **moved)

    def __repr__(self) -> str:
        return (
            f"TextDataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, classes={self.num_classes}, vocab={self.vocab_size}, "
            f"oos_val={len(self.ood_val or ())}, oos_test={len(self.ood_test or ())}, "
            f"device={self.device}, data_hash={self.data_hash[:12]}…)"
        )


Pairs = list[tuple[str, str]]


def resolve_path(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None) -> Path:
    """The file of a registered text set (under the data directory) or of a path."""
    text = os.fspath(name_or_path)
    if text.lower() in REGISTERED:
        path = resolve_data_dir(data_dir) / REGISTERED[text.lower()][0]
        if not path.is_file():
            raise DataError(
                f"{text}: {path} not found. Put CLINC150's data_full.json (and domains.json) "
                f"from github.com/clinc/oos-eval (folder data/) in {path.parent}, or pass "
                "--data_dir"
            )
        return path
    path = Path(text).expanduser()
    if not path.exists() and (path.suffix.lower() in (".json", ".csv") or os.sep in text):
        raise DataError(f"{path} does not exist (give a .json or .csv text set, or clinc150)")
    if not path.exists():
        raise DataError(
            f"unknown text set {text!r}: give {', '.join(REGISTERED)} or the path of a JSON file "
            "in CLINC150's layout or of a CSV file with text,label columns"
        )
    if not is_text_file(path):
        raise DataError(
            f"{path} is not a text set: give a .json file in CLINC150's layout (train, test, "
            "optional val, oos_val, oos_test: lists of [text, label]) or a .csv file with "
            "text,label columns (and optionally split)"
        )
    return path


def _pairs(part: str, rows: Any, source: str) -> Pairs:
    """Check one part's ``[text, label]`` rows; returns them as tuples of stripped strings."""
    if not isinstance(rows, list):
        raise DataError(f"{source}: {part!r} must be a list of [text, label] pairs")
    pairs = []
    for i, row in enumerate(rows):
        if (
            not isinstance(row, list | tuple)
            or len(row) != 2
            or not all(isinstance(v, str) for v in row)
        ):
            raise DataError(
                f"{source}: {part}[{i}] is {row!r}, not a [text, label] pair of strings"
            )
        text, label = row[0].strip(), row[1].strip()
        if not text:
            raise DataError(f"{source}: {part}[{i}] has an empty text (label {label!r})")
        if not label:
            raise DataError(f"{source}: {part}[{i}] has an empty label ({text!r})")
        pairs.append((text, label))
    return pairs


def read_json(path: Path) -> dict[str, Pairs]:
    """The parts of a JSON file in CLINC150's layout, checked."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(content, dict):
        raise DataError(
            f"{path}: expected a JSON object with keys train, test (and optionally val, "
            f"oos_val, oos_test), got a {type(content).__name__}"
        )
    missing = [k for k in ("train", "test") if k not in content]
    if missing:
        raise DataError(
            f"{path} has no {' or '.join(missing)}: a text set in CLINC150's layout needs "
            f"train and test (optionally val, oos_val, oos_test), lists of [text, label]; "
            f"found keys {sorted(content)}"
        )
    return {k: _pairs(k, content[k], str(path)) for k in KNOWN_PARTS if k in content}


def read_csv(path: Path) -> dict[str, Pairs]:
    """The parts of a ``text,label[,split]`` CSV file (see the module docstring), checked."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = {(c or "").strip().lower(): c for c in reader.fieldnames or []}
        if not {"text", "label"} <= set(columns):
            raise DataError(
                f"{path}: a text CSV needs a header with text and label columns (and optionally "
                f"split), got {reader.fieldnames}"
            )
        rows = [
            (
                (r.get(columns["text"]) or ""),
                (r.get(columns["label"]) or ""),
                (r.get(columns["split"]) or "").strip() if "split" in columns else "",
            )
            for r in reader
        ]
    parts: dict[str, list[list[str]]] = {}
    if "split" in columns:
        for line, (text, label, split) in enumerate(rows, start=2):
            if split not in KNOWN_PARTS:
                raise DataError(
                    f"{path}, line {line}: split {split!r} is not one of {', '.join(KNOWN_PARTS)}"
                )
            parts.setdefault(split, []).append([text, label])
    else:
        parts = _split_csv_rows([[t, lab] for t, lab, _ in rows])
    for required in ("train", "test"):
        if required not in parts:
            raise DataError(f"{path} has no {required} rows (its split column never says so)")
    return {k: _pairs(k, v, str(path)) for k, v in parts.items()}


def _split_csv_rows(rows: list[list[str]]) -> dict[str, list[list[str]]]:
    """In-scope rows 80/20 into train/test (stratified), ``oos`` rows in halves into
    oos_val/oos_test, all with a generator seeded by 0."""
    in_scope = [r for r in rows if r[1].strip() != OOS_LABEL]
    oos = [r for r in rows if r[1].strip() == OOS_LABEL]
    labels = np.array([r[1].strip() for r in in_scope])
    train, test = stratified_validation(labels, CSV_TEST_FRACTION, 0) if len(labels) else ([], [])
    parts = {"train": [in_scope[i] for i in train], "test": [in_scope[i] for i in test]}
    if oos:
        order = np.random.default_rng(0).permutation(len(oos))
        half = len(oos) // 2
        parts["oos_val"] = [oos[i] for i in sorted(order[:half])]
        parts["oos_test"] = [oos[i] for i in sorted(order[half:])]
    return parts


def _read_domains(path: Path) -> dict[str, tuple[str, ...]] | None:
    """``domains.json`` beside a JSON set (domain -> list of intents), if there is one."""
    file = path.parent / "domains.json"
    if path.suffix.lower() != ".json" or not file.is_file():
        return None
    try:
        content = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{file} is not valid JSON: {err}") from None
    if not isinstance(content, dict) or not all(isinstance(v, list) for v in content.values()):
        raise DataError(f"{file}: expected an object mapping each domain to a list of intents")
    return {str(k): tuple(map(str, v)) for k, v in content.items()}


def _check_labels(parts: Mapping[str, Pairs], source: str) -> tuple[str, ...]:
    """The class names (sorted training labels); validation and test labels must be among
    them, and there must be at least two."""
    classes = tuple(sorted({label for _, label in parts["train"]}))
    if len(classes) < 2:
        raise DataError(
            f"{source}: the training part has {len(classes)} label(s) ({', '.join(classes)}); "
            "a classifier needs at least two"
        )
    known = set(classes)
    for part in ("val", "test"):
        unseen = sorted({label for _, label in parts.get(part, []) if label not in known})
        if unseen:
            shown = ", ".join(unseen[:5]) + (
                f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""
            )
            raise DataError(
                f"{source}: the {part} part has label(s) the training part never has: {shown}; "
                "every evaluated label needs training examples (out-of-scope queries belong in "
                "oos_val / oos_test)"
            )
    return classes


def _name_of(path: Path) -> str:
    """A set given by path is named by its file's stem, or by its folder for CLINC150's file
    name ``data_full.json`` (``.../clinc150/data_full.json`` is ``clinc150``)."""
    return path.parent.resolve().name if path.name == "data_full.json" else path.stem


def load_text(
    name_or_path: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.1,
    seed: int = 0,
    vocab_size: int = tokenize.DEFAULT_VOCAB_SIZE,
    max_length: int = tokenize.DEFAULT_MAX_LENGTH,
    tokenizer: str | os.PathLike | Tokenizer | None = None,
) -> TextDataset:
    """Text set ``name_or_path`` (``clinc150``, or a JSON / CSV file) as a
    :class:`TextDataset` on the CPU.

    ``validation_fraction`` is carved out of the training part (stratified, seeded by
    ``seed``) only when the file has no ``val`` part. The vocabulary is built from the training
    texts with at most ``vocab_size`` entries, unless ``tokenizer`` (a ``tokenizer.json`` path
    or a ``tokenizers.Tokenizer``) is given; sequences are cut at ``max_length`` tokens.
    Every problem raises a :class:`DataError` saying what to do.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    path = resolve_path(name_or_path, data_dir)
    source = os.fspath(name_or_path)
    parts = read_json(path) if path.suffix.lower() == ".json" else read_csv(path)
    classes = _check_labels(parts, str(path))
    train, carved_fraction = parts["train"], 0.0
    if parts.get("val"):
        val = parts["val"]
    else:
        carved_fraction = float(validation_fraction)
        labels = np.array([label for _, label in train])
        kept, carved = stratified_validation(labels, validation_fraction, seed)
        train, val = [train[i] for i in kept], [train[i] for i in carved]
    if isinstance(tokenizer, Tokenizer):
        chosen = tokenizer
    elif tokenizer is not None:
        chosen = tokenize.load_tokenizer(tokenizer)
    else:
        chosen = tokenize.build_tokenizer([text for text, _ in train], vocab_size)
    index = {c: i for i, c in enumerate(classes)}

    def ids(texts: list[str], part: str) -> torch.Tensor:
        if not texts:
            return torch.full((0, 1), tokenize.pad_id(chosen), dtype=torch.int64)
        try:
            return tokenize.encode(chosen, texts, max_length)
        except DataError as err:
            raise DataError(f"{path}: {part}: {err}") from None

    def encode(pairs: Pairs, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.tensor([index[label] for _, label in pairs], dtype=torch.int64)
        return ids([t for t, _ in pairs], part), labels

    def ood(part: str) -> TextOODSet | None:
        if not parts.get(part):
            return None
        queries = ids([t for t, _ in parts[part]], part)
        of = "" if source.lower() in REGISTERED else f" of {path.name}"
        return TextOODSet(part, queries, f"out-of-scope queries{of} ({len(queries):,}, {part})")

    x_train, y_train = encode(train, "train")
    x_val, y_val = encode(val, "val")
    x_test, y_test = encode(parts["test"], "test")
    name = source.lower() if source.lower() in REGISTERED else _name_of(path)
    return TextDataset(
        name=name,
        source=source,
        x_train=x_train,
        y_train=y_train,
        x_val=x_val,
        y_val=y_val,
        x_test=x_test,
        y_test=y_test,
        ood_val=ood("oos_val"),
        ood_test=ood("oos_test"),
        class_names=classes,
        tokenizer=chosen,
        pad_id=tokenize.pad_id(chosen),
        max_length=max_length,
        data_hash=hashlib.sha256(path.read_bytes()).hexdigest(),
        domains=_read_domains(path),
        validation_fraction=carved_fraction,
    )
