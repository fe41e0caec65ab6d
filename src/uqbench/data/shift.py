"""Distribution shift by corruption: the 15 CIFAR-10-C corruptions of Hendrycks & Dietterich
(ICLR 2019, ``make_cifar_c.py``) at severities 1-5, and a reader for the published CIFAR-10-C
(or CIFAR-100-C) files.

    from uqbench.data import shift
    shift.CORRUPTIONS                      # the 15 names, in the benchmark's order
    x_c = shift.corrupt(x, "fog", 3, seed=0)   # uint8 (N, C, H, W) in, same shape/device out
    x_c, y = shift.read_cifar_c("~/data/CIFAR-10-C", "fog", 3)   # the published images

Conventions:

- Input and output are uint8 ``(N, C, H, W)`` tensors with ``C`` 1 or 3; the work is batched
  torch on the input's device (JPEG goes through Pillow on the CPU). Internally images are
  float in [0, 1]; results are stored as uint8 the way the reference stores them (truncated,
  except motion blur's ImageMagick rounding and the Pillow-made JPEG/pixelate).
- **Determinism**: every random number is drawn on the CPU from a ``torch.Generator`` seeded
  from ``(seed, name, severity)`` and then moved to the device, so a result depends only on
  those, the images and their batch shape, never on the device. :func:`draw_noise` returns
  those draws; ``corrupt(..., noise=...)`` uses given draws instead (tests, custom noise).
- Spatial parameters (blur radii, elastic and motion lengths, snow, frost) are the published
  32x32 ones times ``min(H, W) / 32``, so 8x8 digits and 28x28 MNIST work. Greyscale images
  are corrupted as the grey RGB image they stand for (brightness in HSV included), except that
  frost's texture is turned grey.
- Every difference from ``make_cifar_c.py`` is listed, with its reason, in
  ``docs/corruptions.md`` (frost's texture is procedural; there are no frost photos here).
"""

from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from uqbench.data.paths import DataError
from uqbench.data.shift_types import TYPES, Noise

CORRUPTIONS: tuple[str, ...] = tuple(TYPES)
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)
MIN_SIDE = 4
CIFAR_C_LAYOUT = (
    "a CIFAR-10-C / CIFAR-100-C folder holds <corruption>.npy, uint8 of shape (5 * n, H, W, 3): "
    "severities 1..5 stacked, n images each (n = 10000 as published), and labels.npy of shape "
    "(5 * n,)"
)


def corruption_names() -> list[str]:
    """The 15 corruption names, in the canonical CIFAR-10-C order."""
    return list(CORRUPTIONS)


def corrupt(
    images: torch.Tensor,
    name: str,
    severity: int,
    *,
    seed: int = 0,
    noise: Noise | None = None,
) -> torch.Tensor:
    """Corrupt uint8 ``(N, C, H, W)`` images with corruption ``name`` at ``severity`` (1-5);
    ``noise`` (as :func:`draw_noise` returns) replaces the seeded draws."""
    _check(images, name, severity)
    if images.shape[0] == 0:
        return images.clone()
    if noise is None:
        noise = draw_noise(images, name, severity, seed=seed)
    x = images.to(torch.float32) / 255
    return TYPES[name].apply(x, int(severity), noise)


def draw_noise(images: torch.Tensor, name: str, severity: int, *, seed: int = 0) -> Noise:
    """Every random number ``corrupt`` would use for these images, drawn on the CPU (a dict of
    tensors; empty for the deterministic corruptions)."""
    _check(images, name, severity)
    key = hashlib.sha256(f"{seed}/{name}/{severity}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") >> 1)
    return TYPES[name].draw(images, int(severity), generator)


def read_cifar_c(
    folder: str | os.PathLike, name: str, severity: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The published corrupted images of ``name`` at ``severity`` from a CIFAR-10-C folder, as
    uint8 ``(n, C, H, W)`` images and int64 labels (the ``.npy`` files are memory-mapped)."""
    known = CORRUPTIONS + EXTRA_CORRUPTIONS
    _check_name(name, known)
    _check_severity(severity)
    folder = Path(folder).expanduser()
    images = _load_npy(folder / f"{name}.npy")
    labels = _load_npy(folder / "labels.npy")
    if images.ndim != 4 or images.shape[3] not in (1, 3) or images.shape[0] % 5:
        raise DataError(f"{folder / f'{name}.npy'} has shape {images.shape}; {CIFAR_C_LAYOUT}")
    if labels.shape != images.shape[:1]:
        raise DataError(
            f"{folder / 'labels.npy'} has shape {labels.shape}, but {name}.npy holds "
            f"{images.shape[0]} images; {CIFAR_C_LAYOUT}"
        )
    n = images.shape[0] // 5
    part = slice((severity - 1) * n, severity * n)
    x = torch.from_numpy(np.ascontiguousarray(images[part].transpose(0, 3, 1, 2), np.uint8))
    return x, torch.from_numpy(np.asarray(labels[part], dtype=np.int64))


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path} is missing; {CIFAR_C_LAYOUT}")
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as error:
        raise DataError(f"{path} is not a NumPy .npy array ({error}); {CIFAR_C_LAYOUT}") from None


def _check(images: torch.Tensor, name: str, severity: int) -> None:
    _check_name(name, CORRUPTIONS)
    _check_severity(severity)
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        kind = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"corrupt takes a uint8 torch tensor of images (0..255), got {kind}")
    if images.ndim != 4 or images.shape[1] not in (1, 3) or min(images.shape[2:]) < MIN_SIDE:
        raise DataError(
            f"corrupt takes images of shape (N, C, H, W) with C 1 or 3 and H, W >= {MIN_SIDE}, "
            f"got {tuple(images.shape)}"
        )


def _check_name(name: str, known: tuple[str, ...]) -> None:
    if name in known:
        return
    close = difflib.get_close_matches(str(name), known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise DataError(f"unknown corruption {name!r}.{hint} Known: {', '.join(known)}")


def _check_severity(severity: int) -> None:
    integer = isinstance(severity, (int, np.integer)) and not isinstance(severity, bool)
    if not integer or severity not in SEVERITIES:
        raise DataError(f"severity must be an integer from 1 to 5, got {severity!r}")
