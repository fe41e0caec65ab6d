"""The OOD images an OOD objective scores on validation, and their test counterpart.

- ``{ held_out_classes = [...] }``: the classes leave training, validation and test; their
  validation images are the validation OOD set, their test images the test OOD set
  (``holdout``, recorded once per trial).
- ``uniform_noise`` / ``gaussian_noise``: as many noise images as the validation split, seed 1;
  the test record gets its own draw (seed 2).
- another image set (a name or a path): its test images, even positions for validation, odd
  positions for the test record, so no image scores both.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import torch

from uqbench.data import ood
from uqbench.data.images import ImageDataset
from uqbench.data.paths import DataError

VALIDATION_SEED, TEST_SEED = 1, 2


def prepare(
    images: ImageDataset, space: Any, settings: Mapping[str, Any]
) -> tuple[ImageDataset, torch.Tensor | None, ood.OODSet | None]:
    """``(in-distribution data, validation OOD images, test OOD set)`` for the space's
    ``[objective] ood`` (the data unchanged and two ``None`` without one)."""
    spec = space.ood
    if spec is None:
        return images, None, None
    if isinstance(spec, Mapping):
        held = ood._class_indices(images, spec["held_out_classes"])
        mask = torch.isin(images.y_val, torch.tensor(held, device=images.y_val.device))
        val_ood = images.x_val[mask].contiguous()
        if len(val_ood) == 0:
            raise DataError(
                f"the held-out classes {held} have no validation images: raise "
                "--validation_fraction or hold out other classes"
            )
        remaining, test_ood = ood.hold_out_classes(images, held)
        return remaining, val_ood, test_ood
    key = spec.lower()
    if key in ood.NOISE_SPECS:
        kind = ood.NOISE_SPECS[key]
        val = ood.noise_images(images, kind, num_images=len(images.x_val), seed=VALIDATION_SEED)
        test = ood.noise_images(images, kind, seed=TEST_SEED)
        return images, val.images, test
    data_dir: str | os.PathLike | None = settings.get("data_dir")
    whole = ood.ood_from_images(spec, images, data_dir=data_dir)
    if len(whole) < 2:
        raise DataError(f"the OOD set {spec} has fewer than 2 images: nothing to split")
    test = dataclasses.replace(
        whole,
        images=whole.images[1::2].contiguous(),
        description=whole.description + " (odd positions; the even ones score validation)",
    )
    return images, whole.images[0::2].contiguous(), test
