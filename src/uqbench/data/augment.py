"""Image augmentation as batched tensor operations on whatever device the batch is on: no
per-image Python loop, so a whole batch of CIFAR images is augmented in one gather on the GPU.

Batches are ``(N, C, H, W)`` tensors, uint8 or floating point. Random choices are drawn with the
optional ``torch.Generator`` on the generator's device (then moved to the batch's), so a seeded
CPU generator gives the same augmentation wherever the batch is. :func:`random_crop` draws
``(2, N)`` offsets with ``torch.randint`` and :func:`random_flip` ``N`` uniforms with
``torch.rand``; :func:`crop_and_flip` draws both in that order and does one gather, so it
equals ``random_flip(random_crop(x, padding, g), p, g)`` for the same generator state.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check_batch(images: torch.Tensor, what: str) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{what} needs a batch of images (N, C, H, W), got {shape}")


def _check_padding(padding: int) -> int:
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer (pixels), got {padding!r}")
    return padding


def _check_probability(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"the flip probability p must be a number in [0, 1], got {p!r}")
    return float(p)


def _draw_offsets(
    n: int, padding: int, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """``(2, n)`` int64 (row, column) window offsets, each uniform on ``0..2 * padding``."""
    where = generator.device if generator is not None else device
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=where)
    return offsets.to(device)


def _draw_flips(
    n: int, p: float, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """``(n,)`` booleans, each True with probability ``p``."""
    where = generator.device if generator is not None else device
    return (torch.rand(n, generator=generator, device=where) < p).to(device)


def _window(
    images: torch.Tensor, padding: int, offsets: torch.Tensor | None, flips: torch.Tensor | None
) -> torch.Tensor:
    """Each image's ``H x W`` window of the zero-padded batch at its offset, mirrored left to
    right where ``flips`` says, as one ``torch.gather`` over the flattened pixels."""
    n, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding)) if padding else images
    padded_width = width + 2 * padding
    rows = torch.arange(height, device=images.device).expand(n, height)
    cols = torch.arange(width, device=images.device).expand(n, width)
    if flips is not None:
        cols = torch.where(flips[:, None], width - 1 - cols, cols)
    if offsets is not None:
        rows = rows + offsets[0][:, None]
        cols = cols + offsets[1][:, None]
    index = (rows[:, :, None] * padded_width + cols[:, None, :]).reshape(n, 1, height * width)
    flat = padded.reshape(n, channels, -1)
    out = torch.gather(flat, 2, index.expand(n, channels, height * width))
    return out.view(n, channels, height, width)


def random_crop(
    images: torch.Tensor, padding: int = 4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Pad every image with ``padding`` zeros on each side, then cut out a window of the
    original size at an offset drawn for each image independently, uniform on
    ``0..2 * padding`` in each direction (the standard CIFAR augmentation). Same dtype, shape
    and device as ``images``."""
    _check_batch(images, "random_crop")
    padding = _check_padding(padding)
    if padding == 0 or images.shape[0] == 0:
        return images.clone()
    offsets = _draw_offsets(images.shape[0], padding, images.device, generator)
    return _window(images, padding, offsets, None)


def random_flip(
    images: torch.Tensor, p: float = 0.5, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Mirror each image left to right with probability ``p``, independently. Same dtype,
    shape and device as ``images``."""
    _check_batch(images, "random_flip")
    p = _check_probability(p)
    if images.shape[0] == 0:
        return images.clone()
    flips = _draw_flips(images.shape[0], p, images.device, generator)
    return _window(images, 0, None, flips)


def crop_and_flip(
    images: torch.Tensor,
    padding: int = 4,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`random_crop` then :func:`random_flip` in one gather (one pass over the batch);
    the same result as the two calls in turn with the same generator."""
    _check_batch(images, "crop_and_flip")
    padding, p = _check_padding(padding), _check_probability(p)
    n = images.shape[0]
    if n == 0:
        return images.clone()
    offsets = _draw_offsets(n, padding, images.device, generator) if padding else None
    flips = _draw_flips(n, p, images.device, generator)
    return _window(images, padding, offsets, flips)


def normalize(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 images -> ``(x / 255 - mean) / std`` per channel, as ``dtype`` (computed in float32
    and cast, so a bfloat16 result is the rounded float32 value). ``mean``/``std`` are in units
    of pixel value / 255, as ``ImageDataset.mean``/``std``; the memory format of ``images``
    (e.g. channels-last) is kept."""
    _check_batch(images, "normalize")
    if images.dtype != torch.uint8:
        raise ValueError(f"normalize takes uint8 images (0..255), got {images.dtype}")
    if not dtype.is_floating_point:
        raise ValueError(f"normalize gives floating-point images; dtype={dtype} is not")
    channels = images.shape[1]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(
            f"normalize needs one mean and one std per channel ({channels}), got "
            f"{len(mean)} and {len(std)}"
        )
    if not all(s > 0 for s in std):
        raise ValueError(f"every std must be positive, got {tuple(std)}")
    mean_t = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    # (x / 255 - mean) / std as one multiply-add: x * (1 / (255 std)) + (-mean / std)
    x = torch.addcmul(-mean_t / std_t, images.to(torch.float32), 1.0 / (255.0 * std_t))
    return x if dtype == torch.float32 else x.to(dtype)
