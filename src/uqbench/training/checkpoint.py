"""Checkpoints as safetensors files whose metadata records how to rebuild the model."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

METADATA_KEY = "uqbench"


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or lacks the metadata uqbench writes."""


def save_checkpoint(
    path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]
) -> None:
    """Write ``tensors`` and JSON ``metadata`` (e.g. the model's constructor arguments) atomically;
    tensors that share memory (a member repeated in an ensemble) are stored as copies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous, storages = {}, set()
    for key, value in tensors.items():
        tensor = value.detach().cpu().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in storages:  # e.g. one network twice in an ensemble: safetensors needs copies
            tensor = tensor.clone()
            storage = tensor.untyped_storage().data_ptr()
        storages.add(storage)
        contiguous[key] = tensor
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(contiguous, tmp, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(tensors, metadata)``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no checkpoint at {path}: pass the checkpoint.safetensors of a run directory"
        )
    try:
        tensors = load_file(path)

        with safe_open(path, framework="pt") as handle:
            raw = (handle.metadata() or {}).get(METADATA_KEY)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable safetensors file ({err}); it may be truncated"
        ) from err
    if raw is None:
        raise CheckpointError(
            f"{path} has no '{METADATA_KEY}' metadata: it was not written by uqbench"
        )
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} has corrupt uqbench metadata: {err}") from err
    return tensors, metadata
