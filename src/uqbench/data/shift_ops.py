"""Batched image operations the corruptions of ``shift`` are built from, each written to give
what the library call in Hendrycks & Dietterich's ``make_cifar_c.py`` gives (named in each
docstring). Images are float ``(N, C, H, W)`` tensors; everything runs on the tensor's device.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

PIL_PRECISION_BITS = 22  # Pillow's fixed-point precision for 8-bit resampling (32 - 8 - 2)


def to_uint8(x: torch.Tensor, rounding: str = "floor") -> torch.Tensor:
    """Clip ``x`` (values in [0, 1]) and store it as uint8 the reference's way: ``floor``
    truncates like ``np.uint8(x * 255)`` (plus 1e-3 so float32 round-off never lowers an exact
    integer), ``round`` rounds half up like ImageMagick's 8-bit output."""
    scaled = x.clamp(0, 1) * 255
    offset = 1e-3 if rounding == "floor" else 0.5
    return torch.floor(scaled + offset).clamp(0, 255).to(torch.uint8)


def wrap_index(index: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer positions outside ``[0, n)`` back inside: ``nearest`` (edge repeated),
    ``symmetric`` (scipy's ``reflect``: d c b a | a b c d) or ``reflect101`` (OpenCV's default
    border and torch's ``reflect``: d c b | a b c d)."""
    if mode == "nearest" or n == 1:
        return index.clamp(0, n - 1)
    if mode == "symmetric":
        m = index.remainder(2 * n)
        return torch.where(m >= n, 2 * n - 1 - m, m)
    if mode == "reflect101":
        m = index.remainder(2 * n - 2)
        return torch.where(m >= n, 2 * n - 2 - m, m)
    raise ValueError(f"unknown border mode {mode!r}")


def scipy_gaussian_kernel(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The 1-D kernel of ``scipy.ndimage.gaussian_filter`` (radius ``int(truncate*sigma+0.5)``);
    scipy skips an axis whose sigma is (near) zero, which the kernel ``[1]`` reproduces."""
    if sigma <= 1e-15:
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * taps**2 / sigma**2)
    return kernel / kernel.sum()


def filter_separable(x: torch.Tensor, kernel: np.ndarray, mode: str) -> torch.Tensor:
    """Correlate every channel of ``x`` with the symmetric 1-D ``kernel`` along rows and columns,
    extending the border by ``mode`` (see :func:`wrap_index`)."""
    if len(kernel) == 1:
        return x * float(kernel[0])
    radius = len(kernel) // 2
    weights = torch.as_tensor(kernel, dtype=x.dtype, device=x.device).view(1, 1, -1)
    n, c, h, w = x.shape
    rows = wrap_index(torch.arange(-radius, h + radius, device=x.device), h, mode)
    cols = wrap_index(torch.arange(-radius, w + radius, device=x.device), w, mode)
    along_w = F.conv1d(x.index_select(3, cols).reshape(-1, 1, w + 2 * radius), weights)
    along_w = along_w.view(n, c, h, w).transpose(2, 3)
    along_h = F.conv1d(along_w.index_select(3, rows).reshape(-1, 1, h + 2 * radius), weights)
    return along_h.view(n, c, w, h).transpose(2, 3).contiguous()


def filter_2d(x: torch.Tensor, kernel: np.ndarray, mode: str) -> torch.Tensor:
    """Correlate every channel of ``x`` with an odd square 2-D ``kernel`` (cv2.filter2D)."""
    radius = kernel.shape[0] // 2
    n, c, h, w = x.shape
    rows = wrap_index(torch.arange(-radius, h + radius, device=x.device), h, mode)
    cols = wrap_index(torch.arange(-radius, w + radius, device=x.device), w, mode)
    padded = x.index_select(2, rows).index_select(3, cols).reshape(n * c, 1, *rows.shape, -1)
    weights = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)[None, None]
    return F.conv2d(padded, weights).view(n, c, h, w)


def crop_zeros(kernel: np.ndarray) -> np.ndarray:
    """The centred square part of a symmetric 2-D kernel outside which it is exactly zero."""
    centre = kernel.shape[0] // 2
    used = np.nonzero(kernel.any(axis=0))[0]
    radius = int(max(centre - used.min(), used.max() - centre))
    return kernel[centre - radius : centre + radius + 1, centre - radius : centre + radius + 1]


def scipy_zoom_matrix(n: int, zoom: float) -> torch.Tensor:
    """``make_cifar_c.clipped_zoom`` along one axis of length ``n`` as an ``(n, n)`` matrix: crop
    the centre ``ceil(n / zoom)`` pixels, enlarge them with ``scipy.ndimage.zoom(order=1)`` (its
    output size ``round(crop * zoom)``, corners aligned) and keep the centre ``n``."""
    crop = math.ceil(n / zoom)
    top = (n - crop) // 2
    out = round(crop * zoom)
    trim = (out - n) // 2
    step = (crop - 1) / (out - 1) if out > 1 else 0.0
    src = np.clip((np.arange(n) + trim) * step, 0, crop - 1)
    low = np.minimum(np.floor(src).astype(int), crop - 1)
    high = np.minimum(low + 1, crop - 1)
    frac = src - low
    matrix = np.zeros((n, n))
    np.add.at(matrix, (np.arange(n), top + low), 1 - frac)
    np.add.at(matrix, (np.arange(n), top + high), frac)
    return torch.as_tensor(matrix, dtype=torch.float32)


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """``make_cifar_c.clipped_zoom`` on every channel of ``x`` (rows and columns alike)."""
    rows = scipy_zoom_matrix(x.shape[2], zoom).to(x.device, x.dtype)
    cols = scipy_zoom_matrix(x.shape[3], zoom).to(x.device, x.dtype)
    return rows @ x @ cols.T


def motion_blur(x: torch.Tensor, radius: float, sigma: float, angle: torch.Tensor) -> torch.Tensor:
    """ImageMagick's ``MotionBlurImage`` (what Wand's motion_blur calls): a one-sided Gaussian
    trail of ``2*ceil(radius)+1`` taps ``exp(-i^2 / 2 sigma^2)``, tap ``i`` read at
    ``(ceil(i cos a - .5), ceil(i sin a - .5))`` pixels (x right, y down) with the edge pixel
    repeated; ``angle`` in degrees, one per image."""
    n, c, h, w = x.shape
    width = int(2 * math.ceil(radius) + 1)
    taps = torch.arange(width, dtype=torch.float64)
    kernel = torch.exp(-(taps**2) / (2 * max(sigma, 1e-12) ** 2))
    kernel = (kernel / kernel.sum()).tolist()
    theta = torch.deg2rad(angle.to(torch.float64))
    dx = torch.ceil(taps[None] * torch.cos(theta)[:, None] - 0.5).long().to(x.device)
    dy = torch.ceil(taps[None] * torch.sin(theta)[:, None] - 0.5).long().to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    flat = x.reshape(n, c, h * w)
    out = torch.zeros_like(flat)
    for i in range(width):
        r = (rows + dy[:, i].view(n, 1, 1)).clamp(0, h - 1)
        q = (cols + dx[:, i].view(n, 1, 1)).clamp(0, w - 1)
        index = (r * w + q).view(n, 1, h * w).expand(n, c, h * w)
        out += kernel[i] * flat.gather(2, index)
    return out.view(n, c, h, w)


def bilinear(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample every channel of ``x`` at float positions ``rows``/``cols`` (``(N, H, W)``, in
    pixels) by bilinear interpolation, the border extended by ``mode`` (see
    :func:`wrap_index`); what ``map_coordinates(order=1)`` and ``cv2.warpAffine`` do."""
    n, c, h, w = x.shape
    r0 = torch.floor(rows)
    c0 = torch.floor(cols)
    fr = (rows - r0).unsqueeze(1).to(x.dtype)
    fc = (cols - c0).unsqueeze(1).to(x.dtype)
    r0, c0 = r0.long(), c0.long()
    flat = x.reshape(n, c, h * w)

    def tap(r: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        index = wrap_index(r, h, mode) * w + wrap_index(q, w, mode)
        return flat.gather(2, index.reshape(n, 1, -1).expand(n, c, -1)).view(n, c, *rows.shape[1:])

    top = tap(r0, c0) * (1 - fc) + tap(r0, c0 + 1) * fc
    bottom = tap(r0 + 1, c0) * (1 - fc) + tap(r0 + 1, c0 + 1) * fc
    return top * (1 - fr) + bottom * fr


def pil_box_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Pillow's BOX resampling from ``n_in`` to ``n_out`` pixels along one axis, as an
    ``(n_in, n_out)`` matrix of its fixed-point integer weights (``PIL_PRECISION_BITS``)."""
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    matrix = np.zeros((n_in, n_out))
    for out in range(n_out):
        centre = (out + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        pos = (np.arange(lo, hi) - centre + 0.5) / max(scale, 1.0)
        weights = ((pos > -0.5) & (pos <= 0.5)).astype(float)
        weights /= weights.sum()
        matrix[lo:hi, out] = np.floor(0.5 + weights * (1 << PIL_PRECISION_BITS))
    return torch.as_tensor(matrix, dtype=torch.float64)


def pil_box_resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``PIL.Image.resize((width, height), Image.BOX)`` of uint8-valued float images, exactly:
    columns first, then rows, each pass rounded to 8 bits as Pillow does."""
    half = float(1 << (PIL_PRECISION_BITS - 1))
    scale = float(1 << PIL_PRECISION_BITS)
    x = x.to(torch.float64)
    if width != x.shape[3]:
        cols = pil_box_matrix(x.shape[3], width).to(x.device)
        x = torch.floor((x @ cols + half) / scale).clamp(0, 255)
    if height != x.shape[2]:
        rows = pil_box_matrix(x.shape[2], height).to(x.device)
        x = torch.floor((rows.T @ x + half) / scale).clamp(0, 255)
    return x


def plasma_fractal(
    count: int, mapsize: int, wibble_decay: float, generator: torch.Generator
) -> torch.Tensor:
    """``make_cifar_c.plasma_fractal`` for ``count`` maps at once: diamond-square on a wrapping
    ``mapsize`` grid (a power of two), displacement ``wibble * U(-wibble, wibble)`` with
    ``wibble`` starting at 100 and divided by ``wibble_decay`` per level; scaled to [0, 1]."""
    maps = torch.zeros(count, mapsize, mapsize, dtype=torch.float64)
    step = mapsize
    wibble = 100.0

    def wibbled_mean(total: torch.Tensor) -> torch.Tensor:
        noise = torch.rand(total.shape, generator=generator, dtype=torch.float64) * 2 - 1
        return total / 4 + wibble * wibble * noise

    while step >= 2:
        half = step // 2
        corners = maps[:, ::step, ::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        maps[:, half::step, half::step] = wibbled_mean(squares)
        centres = maps[:, half::step, half::step]
        corners = maps[:, ::step, ::step]
        left = centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        maps[:, ::step, half::step] = wibbled_mean(left)
        top = centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        maps[:, half::step, ::step] = wibbled_mean(top)
        step = half
        wibble /= wibble_decay
    maps -= maps.amin(dim=(1, 2), keepdim=True)
    return maps / maps.amax(dim=(1, 2), keepdim=True)
