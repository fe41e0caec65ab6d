"""Data sets: one registry (``get``, ``names``, ``describe``, ``num_splits``) over the UCI
regression files, scikit-learn's bundled sets, synthetic data and image sets.

    from uqbench import data
    s = data.get("boston", split=0, data_dir="../shared/data", validation_fraction=0.2)
    s.x_train, s.y_train, s.x_val, s.x_test  # float32, standardised with training statistics
    mean, var = s.to_original(pred_mean, pred_var)  # back to target units

    d = data.get_images("cifar10", data_dir="../shared/data", validation_fraction=0.1)
    d.x_train, d.y_train  # uint8 (N, C, H, W) and int64 tensors; d.mean / d.std per channel

    t = data.get_text("clinc150", data_dir="../shared/data")  # token ids, OOD sets oos_val/test

See ``registry.get`` and ``splits`` for the conventions, ``images`` for image sets, ``ood`` for
out-of-distribution sets, ``text`` for text sets and ``tokenize`` for their tokenizer, ``shift`` for the CIFAR-10-C corruptions (``from uqbench.data import
shift``) and ``augment`` for augmentation on the device. The image parts need
torch, so they are imported on first use: ``import uqbench.data`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import Any

from uqbench.data.paths import DataError, resolve_data_dir
from uqbench.data.registry import describe, get, names, num_splits
from uqbench.data.splits import RegressionSplit
from uqbench.data.tabular import ClassificationSplit
from uqbench.data.uci import download_uci

# name -> (module, attribute), imported on first access (they import torch)
_LAZY = {
    "ImageDataset": ("uqbench.data.images", "ImageDataset"),
    "get_images": ("uqbench.data.images", "load_images"),
    "OODSet": ("uqbench.data.ood", "OODSet"),
    "hold_out_classes": ("uqbench.data.ood", "hold_out_classes"),
    "resolve_ood": ("uqbench.data.ood", "resolve_ood"),
    "TextDataset": ("uqbench.data.text", "TextDataset"),
    "get_text": ("uqbench.data.text", "load_text"),
}

__all__ = [
    "ClassificationSplit",
    "DataError",
    "ImageDataset",
    "OODSet",
    "RegressionSplit",
    "TextDataset",
    "describe",
    "download_uci",
    "get",
    "get_images",
    "get_text",
    "hold_out_classes",
    "names",
    "num_splits",
    "resolve_data_dir",
    "resolve_ood",
]


def __getattr__(name: str) -> Any:
    """Import the torch-based image API on first use (PEP 562)."""
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'uqbench.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
