"""The 15 CIFAR-10-C corruptions, each a ``draw`` (every random number it uses, drawn on the CPU
from a ``torch.Generator``) and an ``apply`` (deterministic, on the images' device), with the
parameters of Hendrycks & Dietterich's ``make_cifar_c.py`` per severity. ``shift`` is the API;
``docs/corruptions.md`` lists where these differ from the reference.

``apply`` takes float images in [0, 1] ``(N, C, H, W)`` and returns uint8. Spatial parameters are
given for 32x32 images and multiplied by ``scale = min(H, W) / 32``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from uqbench.data import shift_ops as ops

Noise = dict[str, torch.Tensor]
LUMA = (0.299, 0.587, 0.114)  # cv2's RGB2GRAY weights, also used to make greyscale textures


@dataclass(frozen=True)
class Corruption:
    """One corruption: ``draw(images, severity, generator) -> noise`` on the CPU and
    ``apply(x, severity, noise) -> uint8 images``."""

    draw: Callable[[torch.Tensor, int, torch.Generator], Noise]
    apply: Callable[[torch.Tensor, int, Noise], torch.Tensor]


def _scale(x: torch.Tensor | tuple[int, ...]) -> float:
    shape = x.shape if isinstance(x, torch.Tensor) else x
    return min(shape[-2], shape[-1]) / 32


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True)


def _no_noise(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    return {}


# ----------------------------------------------------------------------------- noise

GAUSSIAN_SIGMA = (0.04, 0.06, 0.08, 0.09, 0.10)
SHOT_LAMBDA = (500, 250, 100, 75, 50)
IMPULSE_AMOUNT = (0.01, 0.02, 0.03, 0.05, 0.07)


def _draw_normal(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    return {"normal": torch.randn(images.shape, generator=generator)}


def _gaussian_noise(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    return ops.to_uint8(x + GAUSSIAN_SIGMA[severity - 1] * noise["normal"].to(x))


def _draw_shot(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    rate = images.cpu().double() / 255 * SHOT_LAMBDA[severity - 1]
    return {"counts": torch.poisson(rate, generator=generator).float()}


def _shot_noise(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    return ops.to_uint8(noise["counts"].to(x) / SHOT_LAMBDA[severity - 1])


def _draw_impulse(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    flip = torch.rand(images.shape, generator=generator)
    salt = torch.rand(images.shape, generator=generator)
    return {"flip": flip, "salt": salt}


def _impulse_noise(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    """skimage ``random_noise(mode='s&p')``: each value flipped with probability ``amount``, to 1
    or 0 with equal chance."""
    flipped = noise["flip"].to(x.device) <= IMPULSE_AMOUNT[severity - 1]
    salt = (noise["salt"].to(x.device) <= 0.5).to(x.dtype)
    return ops.to_uint8(torch.where(flipped, salt, x))


# ----------------------------------------------------------------------------- blur

DEFOCUS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))  # disk radius, alias blur
GLASS = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))  # sigma, delta, its
MOTION = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # radius, sigma
ZOOM_END = (1.06, 1.11, 1.16, 1.21, 1.26)


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """``make_cifar_c.disk``: the pixels within ``radius`` on a 17x17 grid (wider for larger
    radii), normalised, smoothed by a 3x3 (5x5) Gaussian of sigma ``alias_blur`` with OpenCV's
    reflect-101 border; cropped to where it is non-zero."""
    side = np.arange(-8, 9) if radius <= 8 else np.arange(-radius, radius + 1)
    size = 3 if radius <= 8 else 5
    xx, yy = np.meshgrid(side, side)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = np.arange(size) - size // 2
    gauss = np.exp(-(taps**2) / (2 * max(alias_blur, 1e-12) ** 2))
    gauss /= gauss.sum()
    padded = np.pad(disk, size // 2, mode="reflect")
    blurred = sum(g * padded[i : i + disk.shape[0], :] for i, g in enumerate(gauss))
    blurred = sum(g * blurred[:, i : i + disk.shape[1]] for i, g in enumerate(gauss))
    return ops.crop_zeros(blurred)


def _defocus_blur(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    radius, alias = DEFOCUS[severity - 1]
    kernel = disk_kernel(radius * _scale(x), alias * _scale(x))
    return ops.to_uint8(ops.filter_2d(x, kernel, "reflect101"))


def _glass_steps(shape: tuple[int, ...], severity: int) -> tuple[int, int, list[int]]:
    """Glass blur's max shift, iterations and the flat pixel positions visited per iteration
    (rows then columns, both from the bottom-right end, as the reference's loops)."""
    h, w = shape[-2:]
    delta = max(1, round(GLASS[severity - 1][1] * _scale(shape)))
    positions = [
        r * w + q for r in range(h - delta, delta, -1) for q in range(w - delta, delta, -1)
    ]
    return delta, GLASS[severity - 1][2], positions


def _draw_glass(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    delta, iterations, positions = _glass_steps(tuple(images.shape), severity)
    size = (iterations * len(positions), images.shape[0], 2)  # (dx, dy) like the reference
    return {"shifts": torch.randint(-delta, delta, size, generator=generator)}


def _glass_blur(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    """Blur, store as uint8, swap each pixel with a neighbour in the reference's sequential order
    (batched over images, exact), blur again."""
    kernel = ops.scipy_gaussian_kernel(GLASS[severity - 1][0] * _scale(x))
    blurred = ops.to_uint8(ops.filter_separable(x, kernel, "nearest")).to(x.dtype) / 255
    n, c, h, w = x.shape
    _, iterations, positions = _glass_steps(tuple(x.shape), severity)
    shifts = noise["shifts"].to(x.device)
    partner = torch.tensor(positions * iterations, device=x.device)[:, None]
    partner = partner + shifts[..., 1] * w + shifts[..., 0]
    perm = torch.arange(h * w, device=x.device).repeat(n, 1)
    for step, pos in enumerate(positions * iterations):
        other = partner[step].unsqueeze(1)
        here = perm[:, pos].clone()
        perm[:, pos] = perm.gather(1, other).squeeze(1)
        perm.scatter_(1, other, here.unsqueeze(1))
    index = perm.unsqueeze(1).expand(n, c, h * w)
    swapped = blurred.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    return ops.to_uint8(ops.filter_separable(swapped, kernel, "nearest"))


def _draw_angle(low: float, high: float) -> Callable[[torch.Tensor, int, torch.Generator], Noise]:
    def draw(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
        u = torch.rand(images.shape[0], generator=generator, dtype=torch.float64)
        return {"angle": low + (high - low) * u}

    return draw


def _motion_blur(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    radius, sigma = MOTION[severity - 1]
    blurred = ops.motion_blur(x, radius * _scale(x), sigma * _scale(x), noise["angle"])
    return ops.to_uint8(blurred, rounding="round")


def zoom_factors(severity: int) -> np.ndarray:
    """The reference's ``np.arange(1, end, 0.01)`` (7 factors at severity 1: float round-off)."""
    return np.arange(1, ZOOM_END[severity - 1], 0.01)


def _zoom_blur(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    factors = zoom_factors(severity)
    total = x.clone()
    for zoom in factors:
        total += ops.clipped_zoom(x, float(zoom))
    return ops.to_uint8(total / (len(factors) + 1))


# ----------------------------------------------------------------------------- weather

SNOW = (
    (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)  # mean, std, zoom, threshold, blur radius, blur sigma, blend
FROST = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # image, frost weight
FOG = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))  # strength, wibble decay
FROST_TEXTURES = 5  # the reference draws from its first 5 frost photos


def _draw_snow(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    n, _, h, w = images.shape
    normal = torch.randn((n, 1, h, w), generator=generator)
    angle = _draw_angle(-135, -45)(images, severity, generator)["angle"]
    return {"normal": normal, "angle": angle}


def _snow(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    """A snow layer of thresholded, zoomed Gaussian noise, motion-blurred (stored as uint8 like
    the reference's PNG round trip), added twice (once turned 180 degrees) to a whitened image."""
    mean, std, zoom, threshold, radius, sigma, blend = SNOW[severity - 1]
    layer = ops.clipped_zoom(mean + std * noise["normal"].to(x), zoom)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    layer = ops.to_uint8(layer).to(x.dtype) / 255
    layer = ops.motion_blur(layer, radius * _scale(x), sigma * _scale(x), noise["angle"])
    layer = ops.to_uint8(layer, rounding="round").to(x.dtype) / 255
    x = blend * x + (1 - blend) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return ops.to_uint8(x + layer + layer.flip(2, 3))


def frost_textures(count: int, side: int, generator: torch.Generator) -> torch.Tensor:
    """Procedural stand-ins for the reference's frost photos: ``count`` RGB textures
    ``(count, 3, 4*side, 4*side)`` in [0, 1] of long thin ice needles (sparse bright seeds
    motion-blurred along a few directions) over a blue-grey plasma haze."""
    size = 4 * side
    scale = side / 32
    haze = ops.plasma_fractal(count, 1 << max(size - 1, 1).bit_length(), 2.0, generator)
    haze = haze[:, None, :size, :size].float()
    needles = torch.zeros(count, 1, size, size)
    for _ in range(4):
        seeds = (torch.rand((count, 1, size, size), generator=generator) < 0.03).float()
        seeds *= torch.rand((count, 1, size, size), generator=generator)
        angle = torch.rand(count, generator=generator, dtype=torch.float64) * 360
        streak = ops.motion_blur(seeds, 6 * scale, 3 * scale, angle)
        needles = torch.maximum(needles, streak)
    needles = needles / needles.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    bright = (0.25 + 0.35 * haze + 0.9 * needles.sqrt()).clamp(0, 1)
    tint = torch.tensor([0.82, 0.9, 1.0]).view(1, 3, 1, 1)
    return bright * tint


def _draw_frost(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    n, c, h, w = images.shape
    textures = frost_textures(FROST_TEXTURES, max(h, w), generator)
    if c == 1:
        textures = _gray(textures)
    which = torch.randint(0, FROST_TEXTURES, (n,), generator=generator)
    top = torch.randint(0, textures.shape[2] - h + 1, (n,), generator=generator)
    left = torch.randint(0, textures.shape[3] - w + 1, (n,), generator=generator)
    rows = (top[:, None] + torch.arange(h)).view(n, h, 1)
    cols = (left[:, None] + torch.arange(w)).view(n, 1, w)
    picked = textures[which]  # (n, c, T, T)
    index = (rows * textures.shape[3] + cols).view(n, 1, h * w).expand(n, c, h * w)
    return {"frost": picked.flatten(2).gather(2, index).view(n, c, h, w)}


def _frost(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    image_weight, frost_weight = FROST[severity - 1]
    return ops.to_uint8(image_weight * x + frost_weight * noise["frost"].to(x))


def _draw_fog(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    h, w = images.shape[-2:]
    mapsize = 1 << (max(h, w) - 1).bit_length()
    plasma = ops.plasma_fractal(images.shape[0], mapsize, FOG[severity - 1][1], generator)
    return {"plasma": plasma[:, None, :h, :w].float()}


def _fog(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    strength = FOG[severity - 1][0]
    peak = x.amax(dim=(1, 2, 3), keepdim=True)
    x = x + strength * noise["plasma"].to(x)
    return ops.to_uint8(x * peak / (peak + strength))


# ----------------------------------------------------------------------------- digital

BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)
ELASTIC = (
    (0, 0, 0.08),
    (0.05, 0.2, 0.07),
    (0.08, 0.06, 0.06),
    (0.1, 0.04, 0.05),
    (0.1, 0.03, 0.03),
)  # alpha, sigma, affine shift; times the image side
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)
JPEG_QUALITY = (80, 65, 58, 50, 40)


def _brightness(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    """Add to HSV value and convert back: hue and saturation fixed, so the pixel is scaled by
    ``v' / v`` (``v = max`` over channels); a black pixel becomes grey ``v'``."""
    value = x.amax(dim=1, keepdim=True)
    new = (value + BRIGHTNESS[severity - 1]).clamp(max=1)
    scaled = x * new / value.clamp_min(1e-12)
    return ops.to_uint8(torch.where(value > 0, scaled, new.expand_as(x)))


def _contrast(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    means = x.mean(dim=(2, 3), keepdim=True)
    return ops.to_uint8((x - means) * CONTRAST[severity - 1] + means)


def _draw_elastic(images: torch.Tensor, severity: int, generator: torch.Generator) -> Noise:
    n, _, h, w = images.shape
    affine = torch.rand((n, 3, 2), generator=generator, dtype=torch.float64) * 2 - 1
    field = torch.rand((n, 2, h, w), generator=generator, dtype=torch.float64) * 2 - 1
    return {"affine": affine, "field": field}


def _elastic_transform(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    """A random affine warp (cv2.warpAffine, reflect-101 border) then a smooth random
    displacement (scipy map_coordinates, symmetric border), both bilinear."""
    n, _, h, w = x.shape
    side = min(h, w)
    alpha, sigma, shift = (side * v for v in ELASTIC[severity - 1])
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float64)  # (x, y) as the reference
    half = side // 3
    src = torch.stack([centre + half, centre + torch.tensor([half, -half]), centre - half])
    dst = src + shift * noise["affine"]
    ones = torch.ones(n, 3, 1, dtype=torch.float64)
    inverse = torch.linalg.solve(torch.cat([dst, ones], 2), src.expand(n, 3, 2))  # dst -> src
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    grid = torch.stack([cols, rows, torch.ones_like(rows)], -1).view(1, h * w, 3)
    source = (grid @ inverse).view(n, h, w, 2).to(x.device)
    x = ops.bilinear(x, source[..., 1], source[..., 0], "reflect101")
    field = noise["field"].to(x.device)
    kernel = ops.scipy_gaussian_kernel(sigma, truncate=3.0)
    field = ops.filter_separable(field, kernel, "symmetric") * alpha
    rows, cols = rows.to(x.device), cols.to(x.device)
    x = ops.bilinear(x, rows + field[:, 1], cols + field[:, 0], "symmetric")
    return ops.to_uint8(x)


def _pixelate(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    h, w = x.shape[-2:]
    factor = PIXELATE[severity - 1]
    pixels = torch.round(x * 255)
    small = ops.pil_box_resize(pixels, int(h * factor), int(w * factor))
    return ops.pil_box_resize(small, h, w).to(torch.uint8)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Save one uint8 ``(H, W, C)`` image as JPEG with Pillow at ``quality`` and decode it."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(
        buffer, format="JPEG", quality=quality
    )
    decoded = np.asarray(Image.open(buffer))
    return decoded.reshape(image.shape)


def _jpeg_compression(x: torch.Tensor, severity: int, noise: Noise) -> torch.Tensor:
    pixels = torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    quality = JPEG_QUALITY[severity - 1]
    out = np.stack([jpeg_round_trip(image, quality) for image in pixels])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device)


TYPES: dict[str, Corruption] = {
    "gaussian_noise": Corruption(_draw_normal, _gaussian_noise),
    "shot_noise": Corruption(_draw_shot, _shot_noise),
    "impulse_noise": Corruption(_draw_impulse, _impulse_noise),
    "defocus_blur": Corruption(_no_noise, _defocus_blur),
    "glass_blur": Corruption(_draw_glass, _glass_blur),
    "motion_blur": Corruption(_draw_angle(-45, 45), _motion_blur),
    "zoom_blur": Corruption(_no_noise, _zoom_blur),
    "snow": Corruption(_draw_snow, _snow),
    "frost": Corruption(_draw_frost, _frost),
    "fog": Corruption(_draw_fog, _fog),
    "brightness": Corruption(_no_noise, _brightness),
    "contrast": Corruption(_no_noise, _contrast),
    "elastic_transform": Corruption(_draw_elastic, _elastic_transform),
    "pixelate": Corruption(_no_noise, _pixelate),
    "jpeg_compression": Corruption(_no_noise, _jpeg_compression),
}
