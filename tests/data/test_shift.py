"""The CIFAR-10-C corruptions against direct NumPy / SciPy / Pillow / colorsys computations of
what ``make_cifar_c.py`` does, given the same random draws; plus severity order, determinism,
shapes, errors and the CIFAR-10-C reader."""

from __future__ import annotations

import colorsys
import io
import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from uqbench.data import DataError, shift
from uqbench.data import shift_types as types

RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "elastic_transform",
}


def natural_images(n: int = 6, side: int = 32, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth colour gradients with a sharp-edged rectangle and disc: uint8 (n, C, side, side)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    images = []
    for _ in range(n):
        a, b, c = rng.uniform(0.1, 0.9, size=(3, channels, 1, 1))
        image = a + (b - a) * xx + 0.3 * (c - 0.5) * yy
        top, left = rng.integers(0, side // 2, size=2)
        image[:, top : top + side // 3, left : left + side // 4] = rng.uniform(
            0, 1, (channels, 1, 1)
        )
        cy, cx = rng.uniform(0.3, 0.7, size=2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 0.03
        image[:, disc] = rng.uniform(0, 1, (channels, 1))
        images.append(np.clip(image, 0, 1))
    return torch.from_numpy(np.round(np.stack(images) * 255).astype(np.uint8))


def hwc(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, C, H, W) tensor -> float64 (N, H, W, C) array in [0, 1], the reference's view."""
    return images.permute(0, 2, 3, 1).numpy().astype(np.float64) / 255


def truncate(images: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """The reference's ``np.uint8(x * 255)``; ``tolerance`` (ours: 1e-3) first lifts values that
    are integers up to float round-off, where the reference's float sums leave e.g. 96.99908."""
    return np.uint8(np.clip(images, 0, 1) * 255 + tolerance)


def as_tensor(images: np.ndarray, tolerance: float = 0.0) -> torch.Tensor:
    """:func:`truncate` of (N, H, W, C) floats, as a (N, C, H, W) tensor."""
    return torch.from_numpy(truncate(images, tolerance)).permute(0, 3, 1, 2)


def assert_close_uint8(ours: torch.Tensor, reference: torch.Tensor, exact: float = 0.995) -> None:
    """Equal up to one grey level (float32 against float64), and equal almost everywhere."""
    assert ours.shape == reference.shape and ours.dtype == torch.uint8
    diff = (ours.int() - reference.int()).abs()
    assert diff.max() <= 1
    assert (diff == 0).float().mean() >= exact


# ------------------------------------------------------------------- against references


def test_gaussian_noise_matches_numpy():
    x = natural_images()
    for severity, sigma in zip(shift.SEVERITIES, (0.04, 0.06, 0.08, 0.09, 0.10), strict=True):
        noise = shift.draw_noise(x, "gaussian_noise", severity)
        normal = noise["normal"].permute(0, 2, 3, 1).numpy().astype(np.float64)
        reference = as_tensor(hwc(x) + sigma * normal)
        assert_close_uint8(shift.corrupt(x, "gaussian_noise", severity, noise=noise), reference)


def test_gaussian_noise_draw_is_standard_normal():
    normal = shift.draw_noise(natural_images(20), "gaussian_noise", 3)["normal"]
    assert abs(normal.mean()) < 0.02 and abs(normal.std() - 1) < 0.02


def test_shot_noise_matches_numpy_and_draws_poisson_counts():
    x = natural_images()
    noise = shift.draw_noise(x, "shot_noise", 5)
    counts = noise["counts"].permute(0, 2, 3, 1).numpy().astype(np.float64)
    assert_close_uint8(shift.corrupt(x, "shot_noise", 5, noise=noise), as_tensor(counts / 50))
    flat = torch.full((4, 3, 64, 64), 128, dtype=torch.uint8)  # rate 128/255*50 = 25.1
    drawn = shift.draw_noise(flat, "shot_noise", 5)["counts"].double()
    rate = 128 / 255 * 50
    assert torch.equal(drawn, drawn.round()) and drawn.min() >= 0
    assert abs(drawn.mean() - rate) < 4 * math.sqrt(rate / drawn.numel())
    assert abs(drawn.var() / rate - 1) < 0.05


def test_impulse_noise_matches_skimage_salt_and_pepper():
    x = natural_images()
    noise = shift.draw_noise(x, "impulse_noise", 4)
    flip = noise["flip"].permute(0, 2, 3, 1).numpy() <= 0.05
    salt = noise["salt"].permute(0, 2, 3, 1).numpy() <= 0.5
    reference = hwc(x).copy()
    reference[flip & salt] = 1
    reference[flip & ~salt] = 0
    ours = shift.corrupt(x, "impulse_noise", 4, noise=noise)
    assert torch.equal(ours, as_tensor(reference))
    big = shift.draw_noise(natural_images(40), "impulse_noise", 4)
    assert abs((big["flip"] <= 0.05).float().mean() - 0.05) < 0.005


def test_brightness_matches_colorsys_hsv():
    x = natural_images(3, side=8)
    x[0, :, 0, 0] = 0  # a black pixel becomes grey
    for severity, add in zip(shift.SEVERITIES, (0.05, 0.1, 0.15, 0.2, 0.3), strict=True):
        pixels = hwc(x).reshape(-1, 3)
        out = []
        for r, g, b in pixels:
            h, s, v = colorsys.rgb_to_hsv(r, g, b)
            out.append(colorsys.hsv_to_rgb(h, s, min(v + add, 1.0)))
        reference = as_tensor(np.array(out).reshape(hwc(x).shape))
        # the HSV round trip leaves e.g. 245.99999 where the value did not change, which the
        # reference truncates to 245; ours keeps 246 (to_uint8's tolerance), hence exact=0.9
        assert_close_uint8(shift.corrupt(x, "brightness", severity), reference, exact=0.9)


def test_contrast_matches_numpy_per_channel_means():
    x = natural_images()
    for severity, factor in zip(shift.SEVERITIES, (0.75, 0.5, 0.4, 0.3, 0.15), strict=True):
        image = hwc(x)
        means = image.mean(axis=(1, 2), keepdims=True)
        reference = as_tensor((image - means) * factor + means)
        assert_close_uint8(shift.corrupt(x, "contrast", severity), reference)


def pillow(images: torch.Tensor, change) -> torch.Tensor:
    out = []
    for image in images.permute(0, 2, 3, 1).numpy():
        pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
        out.append(np.asarray(change(pil)).reshape(image.shape))
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("side,channels", [(32, 3), (28, 1), (8, 3)])
def test_pixelate_equals_pillow_box_resize(side, channels):
    x = natural_images(4, side=side, channels=channels)
    for severity, factor in zip(shift.SEVERITIES, (0.95, 0.9, 0.85, 0.75, 0.65), strict=True):
        small = int(side * factor)

        def pixelate(im, small=small):
            return im.resize((small, small), Image.BOX).resize((side, side), Image.BOX)

        assert torch.equal(shift.corrupt(x, "pixelate", severity), pillow(x, pixelate))


@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_equals_pillow_round_trip(channels):
    x = natural_images(4, channels=channels)
    for severity, quality in zip(shift.SEVERITIES, (80, 65, 58, 50, 40), strict=True):

        def jpeg(im, quality=quality):
            buffer = io.BytesIO()
            im.save(buffer, "JPEG", quality=quality)
            return Image.open(buffer)

        assert torch.equal(shift.corrupt(x, "jpeg_compression", severity), pillow(x, jpeg))


def test_glass_blur_matches_a_sequential_numpy_loop():
    x = natural_images(3)
    for severity in (2, 5):
        sigma, delta, iterations = types.GLASS[severity - 1]
        noise = shift.draw_noise(x, "glass_blur", severity)
        shifts = noise["shifts"].numpy()
        expected = []
        for n, image in enumerate(hwc(x)):
            blurred = ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="nearest")
            blurred = truncate(blurred, 1e-3)
            step = 0
            for _ in range(iterations):
                for h in range(32 - delta, delta, -1):
                    for w in range(32 - delta, delta, -1):
                        dx, dy = shifts[step, n]
                        step += 1
                        a, b = blurred[h, w].copy(), blurred[h + dy, w + dx].copy()
                        blurred[h, w], blurred[h + dy, w + dx] = b, a
            again = ndimage.gaussian_filter(blurred / 255, (sigma, sigma, 0), mode="nearest")
            expected.append(again)
        ours = shift.corrupt(x, "glass_blur", severity, noise=noise)
        # float32 blurs against float64 ones; a wrong swap would move values by tens of levels
        assert_close_uint8(ours, as_tensor(np.stack(expected), 1e-3), exact=0.97)


def scipy_clipped_zoom(image: np.ndarray, zoom: float) -> np.ndarray:
    h = image.shape[0]
    crop = int(np.ceil(h / zoom))
    top = (h - crop) // 2
    zoomed = ndimage.zoom(image[top : top + crop, top : top + crop], (zoom, zoom, 1), order=1)
    trim = (zoomed.shape[0] - h) // 2
    return zoomed[trim : trim + h, trim : trim + h]


def test_zoom_blur_matches_scipy_zoom():
    x = natural_images(3)
    for severity in (1, 5):
        factors = np.arange(1, (1.06, 1.11, 1.16, 1.21, 1.26)[severity - 1], 0.01)
        expected = []
        for image in hwc(x).astype(np.float32):
            total = sum(scipy_clipped_zoom(image, z) for z in factors)
            expected.append((image + total) / (len(factors) + 1))
        reference = as_tensor(np.stack(expected), 1e-3)
        assert_close_uint8(shift.corrupt(x, "zoom_blur", severity), reference)


def test_elastic_transform_matches_scipy_affine_and_map_coordinates():
    x = natural_images(3)
    for severity in (1, 3, 5):
        alpha, sigma, move = (32 * v for v in types.ELASTIC[severity - 1])
        noise = shift.draw_noise(x, "elastic_transform", severity)
        expected = []
        for n, image in enumerate(hwc(x)):
            pts1 = np.array([[26.0, 26.0], [26.0, 6.0], [6.0, 6.0]])  # (x, y)
            pts2 = pts1 + move * noise["affine"][n].numpy()
            forward = np.linalg.solve(np.c_[pts1, np.ones(3)], pts2).T  # 2x3, like cv2
            inverse = np.linalg.inv(np.r_[forward, [[0, 0, 1]]])
            swap = inverse[[1, 0]][:, [1, 0, 2]]  # to (row, col)
            warped = np.stack(
                [
                    ndimage.affine_transform(
                        image[..., c], swap[:, :2], swap[:, 2], order=1, mode="mirror"
                    )
                    for c in range(3)
                ],
                -1,
            )
            fields = noise["field"][n].numpy()
            dx, dy = (
                ndimage.gaussian_filter(f, sigma, mode="reflect", truncate=3) * alpha
                for f in fields
            )
            rows, cols = np.mgrid[0:32, 0:32]
            expected.append(
                np.stack(
                    [
                        ndimage.map_coordinates(
                            warped[..., c], [rows + dy, cols + dx], order=1, mode="reflect"
                        )
                        for c in range(3)
                    ],
                    -1,
                )
            )
        ours = shift.corrupt(x, "elastic_transform", severity, noise=noise)
        assert_close_uint8(ours, as_tensor(np.stack(expected)), exact=0.98)


# ------------------------------------------------------------------- properties


def mean_change(x: torch.Tensor, name: str, severity: int) -> float:
    return float((shift.corrupt(x, name, severity).float() - x.float()).abs().mean())


# Elastic's affine part shrinks as its elastic part grows, glass blur's sigma goes .25 -> .4 ->
# .25 with one more iteration, and frost trades image weight for frost weight: by the reference's
# own parameters their mean change is not monotone (see docs/corruptions.md).
NOT_MONOTONE = {"elastic_transform", "glass_blur", "frost"}


@pytest.mark.parametrize("name", [n for n in shift.CORRUPTIONS if n not in NOT_MONOTONE])
def test_mean_change_grows_with_severity(name):
    x = natural_images(8)
    changes = [mean_change(x, name, s) for s in shift.SEVERITIES]
    assert changes[0] > 0
    assert all(a < b for a, b in itertools.pairwise(changes)), changes


def test_frost_weighs_the_image_less_with_severity():
    images = natural_images(8)
    x = images.float().flatten(1)
    texture = shift.draw_noise(images, "frost", 1)
    correlations = []
    for severity in shift.SEVERITIES:
        y = shift.corrupt(images, "frost", severity, noise=texture).float().flatten(1)
        xc, yc = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
        correlations.append(float(((xc * yc).sum(1) / (xc.norm(dim=1) * yc.norm(dim=1))).mean()))
    assert all(a > b for a, b in itertools.pairwise(correlations)), correlations


@pytest.mark.parametrize("name", sorted(RANDOM))
def test_seeded_draws_are_deterministic_and_differ_across_seeds(name):
    x = natural_images(2)
    first = shift.corrupt(x, name, 3, seed=7)
    assert torch.equal(first, shift.corrupt(x, name, 3, seed=7))
    assert not torch.equal(first, shift.corrupt(x, name, 3, seed=8))


@pytest.mark.parametrize("name", shift.CORRUPTIONS)
@pytest.mark.parametrize("side,channels", [(8, 1), (8, 3), (28, 1), (32, 3)])
def test_every_type_works_on_small_and_grey_images(name, side, channels):
    x = natural_images(2, side=side, channels=channels)
    for severity in (1, 5):
        y = shift.corrupt(x, name, severity)
        assert y.dtype == torch.uint8 and y.shape == x.shape
    if (name, side) != ("defocus_blur", 8):  # its radii scale to under a pixel: no blur at 8x8
        assert not torch.equal(y, x)


GREY_AS_RGB = ["defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "snow", "fog"]
GREY_AS_RGB += ["brightness", "contrast", "elastic_transform", "pixelate"]


@pytest.mark.parametrize("name", GREY_AS_RGB)
def test_a_grey_image_is_corrupted_like_its_rgb_version(name):
    grey = natural_images(3, channels=1)
    rgb = grey.expand(-1, 3, -1, -1).contiguous()
    for severity in (2, 5):
        ours = shift.corrupt(grey, name, severity)
        assert_close_uint8(ours, shift.corrupt(rgb, name, severity)[:, :1], exact=0.99)


def test_empty_batch_and_names():
    assert shift.corruption_names() == list(shift.CORRUPTIONS)
    assert len(shift.CORRUPTIONS) == 15 and shift.CORRUPTIONS[0] == "gaussian_noise"
    empty = torch.zeros(0, 3, 32, 32, dtype=torch.uint8)
    assert shift.corrupt(empty, "fog", 1).shape == empty.shape


# ------------------------------------------------------------------- errors and reader


def test_errors():
    x = natural_images(1)
    with pytest.raises(DataError, match="'gaussian_noise'.*Known: gaussian_noise, shot_noise"):
        shift.corrupt(x, "gausian_noise", 1)
    for severity in (0, 6, True, 2.0):
        with pytest.raises(DataError, match="severity must be an integer from 1 to 5"):
            shift.corrupt(x, "fog", severity)
    with pytest.raises(DataError, match=r"uint8 .*float32"):
        shift.corrupt(x.float(), "fog", 1)
    for bad in (x[0], x[:, :2], x[:, :, :3, :3]):
        with pytest.raises(DataError, match=r"\(N, C, H, W\) with C 1 or 3"):
            shift.corrupt(bad, "fog", 1)


def test_read_cifar_c_reads_one_severity(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5 * 4, 32, 32, 3), dtype=np.uint8)
    labels = np.tile(np.arange(4, dtype=np.uint8), 5)
    np.save(tmp_path / "fog.npy", images)
    np.save(tmp_path / "labels.npy", labels)
    x, y = shift.read_cifar_c(tmp_path, "fog", 3)
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 32, 32)
    assert torch.equal(x, torch.from_numpy(images[8:12]).permute(0, 3, 1, 2))
    assert y.dtype == torch.int64 and y.tolist() == [0, 1, 2, 3]
    with pytest.raises(DataError, match=r"snow\.npy is missing; .*labels\.npy"):
        shift.read_cifar_c(tmp_path, "snow", 1)
    with pytest.raises(DataError, match="unknown corruption 'fogg'"):
        shift.read_cifar_c(tmp_path, "fogg", 1)
    np.save(tmp_path / "labels.npy", labels[:7])
    with pytest.raises(DataError, match=r"labels\.npy has shape \(7,\)"):
        shift.read_cifar_c(tmp_path, "fog", 1)
