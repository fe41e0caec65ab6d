"""Augmentation on the device: every crop is a shifted window of the zero-padded image with its
offset in range, flips are exact mirror images of the chosen ones, both are seeded and
batched, and normalisation matches NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uqbench.data import augment

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def batch(n=64, channels=3, size=(9, 7), dtype=torch.uint8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 256, (n, channels, *size), generator=g, dtype=torch.uint8)
    return x.to(dtype)  # values 1..255, so a zero in a crop can only be padding


def windows(image: np.ndarray, padding: int) -> dict[tuple[int, int], np.ndarray]:
    """Every (dy, dx) window of the zero-padded image, computed with NumPy."""
    _, h, w = image.shape
    padded = np.pad(image, ((0, 0), (padding, padding), (padding, padding)))
    return {
        (dy, dx): padded[:, dy : dy + h, dx : dx + w]
        for dy in range(2 * padding + 1)
        for dx in range(2 * padding + 1)
    }


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_every_crop_is_a_window_of_the_padded_image(device, dtype):
    x = batch(dtype=dtype).to(device)
    out = augment.random_crop(x, padding=3, generator=torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    offsets = set()
    for image, cropped in zip(x.cpu().numpy(), out.cpu().numpy(), strict=True):
        matches = [k for k, v in windows(image, 3).items() if np.array_equal(v, cropped)]
        assert len(matches) == 1  # values >= 1: the window is identified uniquely
        offsets.add(matches[0])
    assert all(0 <= dy <= 6 and 0 <= dx <= 6 for dy, dx in offsets)
    assert len(offsets) > 20  # each image draws its own offset (49 possible)


def test_crop_offsets_are_uniform_and_independent_per_image():
    x = batch(n=4000, channels=1, size=(3, 3))
    out = augment.random_crop(x, padding=1, generator=torch.Generator().manual_seed(2))
    # with padding 1 on a 3x3 image the centre pixel moves to (1 - dy + 1, 1 - dx + 1)
    centre = x[:, 0, 1, 1]
    hits = torch.stack([(out[:, 0] == centre[:, None, None]).flatten(1)[:, k] for k in range(9)])
    counts = hits.sum(dim=1).double()
    assert counts.min() > 4000 / 9 * 0.8 and counts.max() < 4000 / 9 * 1.2 + 40


def test_zero_padding_gives_the_input_back():
    x = batch()
    assert torch.equal(augment.random_crop(x, padding=0), x)


@pytest.mark.parametrize("device", DEVICES)
def test_flips_are_exact_mirror_images_of_about_half(device):
    x = batch(n=2000, size=(5, 6)).to(device)
    out = augment.random_flip(x, generator=torch.Generator().manual_seed(3))
    mirrored = (out == x.flip(-1)).flatten(1).all(dim=1)
    unchanged = (out == x).flatten(1).all(dim=1)
    assert (mirrored ^ unchanged).all()  # every image is one or the other (values are random)
    assert abs(mirrored.double().mean().item() - 0.5) < 0.05
    never = augment.random_flip(x, p=0.0)
    always = augment.random_flip(x, p=1.0)
    assert torch.equal(never, x) and torch.equal(always, x.flip(-1))


def test_augmentation_is_reproducible_with_a_generator():
    x = batch()
    a = augment.random_crop(x, generator=torch.Generator().manual_seed(7))
    b = augment.random_crop(x, generator=torch.Generator().manual_seed(7))
    c = augment.random_crop(x, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_crop_and_flip_equals_crop_then_flip_with_the_same_generator():
    x = batch()
    one = augment.crop_and_flip(x, 2, 0.5, torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    two = augment.random_flip(augment.random_crop(x, 2, g), 0.5, g)
    assert torch.equal(one, two)


@pytest.mark.parametrize("device", DEVICES)
def test_normalize_matches_numpy(device):
    x = batch(n=8, size=(4, 4)).to(device)
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    out = augment.normalize(x, mean, std)
    expected = (x.cpu().numpy() / 255.0 - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(
        std, (1, 3, 1, 1)
    )
    assert out.dtype == torch.float32 and out.device == x.device
    np.testing.assert_allclose(out.cpu().numpy(), expected, rtol=1e-5, atol=1e-5)
    half = augment.normalize(x, mean, std, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, out.to(torch.bfloat16))


def test_normalize_keeps_channels_last():
    x = batch(n=4, size=(4, 4)).contiguous(memory_format=torch.channels_last)
    out = augment.normalize(x, (0.5,) * 3, (0.25,) * 3)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_empty_batches_pass_through():
    x = batch(n=0)
    assert augment.random_crop(x).shape == x.shape
    assert augment.random_flip(x).shape == x.shape
    assert augment.crop_and_flip(x).shape == x.shape


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: augment.random_crop(x[0]), r"needs a batch of images \(N, C, H, W\)"),
        (lambda x: augment.random_crop(x, padding=-1), "padding must be a non-negative integer"),
        (lambda x: augment.random_crop(x, padding=1.5), "padding must be a non-negative integer"),
        (lambda x: augment.random_flip(x, p=1.5), r"p must be a number in \[0, 1\]"),
        (lambda x: augment.normalize(x.float(), (0.5,) * 3, (0.2,) * 3), "takes uint8 images"),
        (
            lambda x: augment.normalize(x, (0.5,) * 2, (0.2,) * 3),
            "one mean and one std per channel",
        ),
        (lambda x: augment.normalize(x, (0.5,) * 3, (0.2, 0.0, 0.2)), "every std must be positive"),
        (
            lambda x: augment.normalize(x, (0.5,) * 3, (0.2,) * 3, dtype=torch.int32),
            "floating-point",
        ),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(batch(n=2))
