"""OOD sets: held-out classes, seeded noise, other image sets converted to the in-distribution
channels and size, the named pairs, and the --ood resolver's skips and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from image_fakes import fake_cifar10, fake_tree, isolate, write_files, write_idx_set, write_tree
from PIL import Image

from uqbench import data
from uqbench.data import DataError, images, ood
from uqbench.data.image_formats import RawImages


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def toy(
    labels=(0, 1, 2, 0, 1, 2, 0, 1, 2, 0),
    test=(0, 1, 2, 2, 1),
    channels=3,
    size=(4, 4),
    names=("ant", "bee", "cat"),
):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (len(labels), channels, *size), dtype=np.uint8)
    x_test = rng.integers(0, 256, (len(test), channels, *size), dtype=np.uint8)
    raw = RawImages(
        x,
        np.array(labels, dtype=np.int64),
        x_test,
        np.array(test, dtype=np.int64),
        tuple(names),
        "h" * 64,
        "toy",
    )
    return images.from_arrays("toy", "toy", raw, validation_fraction=0.2, seed=0)


# --- held-out classes -----------------------------------------------------------------------------


@pytest.mark.parametrize("classes", [["bee"], [1], ["1"], "bee", 1])
def test_holding_out_a_class(classes):
    d = toy()
    kept, held = ood.hold_out_classes(d, classes)
    assert kept.class_names == ("ant", "cat") and kept.num_classes == 2
    for part in ("train", "val", "test"):
        y_old = getattr(d, f"y_{part}")
        mask = y_old != 1
        assert torch.equal(getattr(kept, f"x_{part}"), getattr(d, f"x_{part}")[mask])
        # labels renumbered: ant 0 -> 0, cat 2 -> 1
        assert torch.equal(getattr(kept, f"y_{part}"), torch.where(y_old[mask] == 2, 1, 0))
    assert torch.equal(held.images, d.x_test[d.y_test == 1])
    assert held.name == "holdout" and len(held) == 2 and "bee" in held.description
    pixels = kept.x_train.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(kept.mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(kept.std, pixels.std(axis=(0, 2, 3)), rtol=1e-12)
    assert kept.data_hash == d.data_hash and kept.name == "toy"


def test_holding_out_several_classes_by_name_and_index():
    four = toy(labels=(0, 1, 2, 3) * 3, test=(0, 1, 2, 3, 2), names=("ant", "bee", "cat", "dog"))
    kept, held = ood.hold_out_classes(four, ["cat", 0])
    assert kept.class_names == ("bee", "dog") and set(kept.y_train.tolist()) == {0, 1}
    assert len(held) == 3 and "ant, cat" in held.description


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        (["dog"], r"unknown class 'dog' for toy; .* names: ant, bee, cat"),
        ([3], r"class index 3 is out of range for toy, which has 3 classes"),
        (["-1"], r"class index -1 is out of range"),
        (["ant", "bee", 2], "holding out 3 of the 3 classes of toy leaves 0"),
        (["ant", 2], "leaves 1 to train on; a classifier needs at least two"),
        ([], "at least one class"),
        ([1.5], r"unknown class 1\.5"),
    ],
)
def test_bad_hold_out_requests_are_clear_errors(classes, message):
    with pytest.raises(DataError, match=message):
        ood.hold_out_classes(toy(), classes)


def test_holding_out_a_class_without_test_images_is_an_error():
    with pytest.raises(DataError, match="no test images of the held-out class"):
        ood.hold_out_classes(toy(test=(0, 1, 1)), ["cat"])


# --- noise ----------------------------------------------------------------------------------------


def test_uniform_noise_is_seeded_and_shaped_like_the_data():
    d = toy()
    a = ood.noise_images(d, "uniform", seed=3)
    assert a.name == "uniform_noise" and a.images.shape == (5, 3, 4, 4)
    assert a.images.dtype == torch.uint8
    assert torch.equal(a.images, ood.noise_images(d, "uniform", seed=3).images)
    assert not torch.equal(a.images, ood.noise_images(d, "uniform", seed=4).images)
    many = ood.noise_images(d, "uniform", num_images=2000).images.float()
    assert abs(many.mean().item() - 127.5) < 1.5 and many.min() == 0 and many.max() == 255


def test_gaussian_noise_has_the_moments_of_the_training_images():
    rng = np.random.default_rng(5)
    narrow = rng.integers(90, 161, (20, 3, 4, 4), dtype=np.uint8)  # far from 0 and 255
    narrow[:, 1] //= 2
    raw = RawImages(narrow, np.arange(20) % 2, narrow[:2], np.arange(2), ("a", "b"), "h", "x")
    d = images.from_arrays("narrow", "narrow", raw)
    noise = ood.noise_images(d, "gaussian", num_images=4000, seed=1)
    assert noise.name == "gaussian_noise"
    pixels = noise.images.double() / 255
    for c in range(3):
        assert pixels[:, c].mean().item() == pytest.approx(d.mean[c], abs=0.002)
        assert pixels[:, c].std().item() == pytest.approx(d.std[c], rel=0.02)
    with pytest.raises(DataError, match="'uniform' or 'gaussian'"):
        ood.noise_images(d, "pink")
    with pytest.raises(DataError, match="num_images must be a positive integer"):
        ood.noise_images(d, num_images=0)


# --- other image sets -----------------------------------------------------------------------------


def test_rgb_to_grey_matches_pillow_and_resizing_matches_interpolate():
    rgb = torch.randint(0, 256, (3, 3, 6, 6), dtype=torch.uint8)
    grey, steps = ood.convert_images(rgb, 1, (6, 6))
    for i in range(3):
        pil = np.asarray(Image.fromarray(rgb[i].permute(1, 2, 0).numpy()).convert("L"))
        np.testing.assert_array_equal(grey[i, 0].numpy(), pil)
    assert steps == ["RGB -> greyscale (ITU-R 601-2 luma, as Pillow's convert('L'))"]
    small, steps = ood.convert_images(rgb, 3, (4, 5))
    expected = F.interpolate(rgb.float(), size=(4, 5), mode="bilinear", antialias=True)
    assert torch.equal(small, expected.round().clamp(0, 255).to(torch.uint8))
    assert steps == ["resized 6x6 -> 4x5 (bilinear, antialiased)"]
    both, _ = ood.convert_images(grey, 3, (6, 6))
    assert torch.equal(both, grey.expand(-1, 3, -1, -1))
    with pytest.raises(DataError, match="cannot convert 2-channel"):
        ood.convert_images(rgb[:, :2], 3, (6, 6))


def test_another_set_by_path_becomes_ood_for_a_greyscale_set(tmp_path):
    write_idx_set(tmp_path / "dd" / "mnist")
    mnist = data.get_images("mnist", data_dir=tmp_path / "dd")
    tree = fake_tree(root="photos", size=(10, 12))
    path = write_tree(tmp_path / "photos.zip", tree.members, "zip")
    other = ood.ood_from_images(str(path), mnist)
    assert other.name == "photos" and other.images.shape == (len(tree.x_test), 1, 28, 28)
    assert "RGB -> greyscale" in other.description and "10x12 -> 28x28" in other.description
    expected, _ = ood.convert_images(torch.from_numpy(tree.x_test), 1, (28, 28))
    assert torch.equal(other.images, expected)


def test_the_in_distribution_set_is_not_its_own_ood_set(tmp_path):
    write_idx_set(tmp_path / "mnist")
    mnist = data.get_images("mnist", data_dir=tmp_path)
    with pytest.raises(DataError, match="is the in-distribution set itself"):
        ood.ood_from_images("mnist", mnist, data_dir=tmp_path)


# --- the resolver ---------------------------------------------------------------------------------


def test_pairs_use_what_is_present_and_say_what_was_skipped(tmp_path):
    write_files(tmp_path / "cifar-10-batches-py", fake_cifar10().files)
    write_idx_set(tmp_path / "fashion_mnist")
    mnist_like = images.from_arrays(
        "mnist",
        "mnist",
        RawImages(
            np.zeros((4, 1, 28, 28), np.uint8),
            np.array([0, 1, 0, 1]),
            np.zeros((2, 1, 28, 28), np.uint8),
            np.array([0, 1]),
            ("0", "1"),
            "h",
            "x",
        ),
    )
    sets, skipped = ood.resolve_ood(["pairs"], mnist_like, tmp_path)
    assert [s.name for s in sets] == ["fashion_mnist"] and skipped == []
    cifar = data.get_images("cifar10", data_dir=tmp_path)
    sets, skipped = ood.resolve_ood(["uniform_noise", "pairs", "gaussian_noise"], cifar, tmp_path)
    assert [s.name for s in sets] == ["uniform_noise", "gaussian_noise"]
    assert len(skipped) == 2
    assert skipped[0].startswith("svhn: files not found in ") and "--download" in skipped[0]
    assert skipped[1].startswith("cifar100: files not found")
    _, skipped = ood.resolve_ood(["pairs"], toy(), tmp_path)
    assert skipped == [
        "pairs: no named OOD pairs for toy (there are pairs for cifar10, "
        "cifar100, mnist, fashion_mnist)"
    ]


def test_explicitly_named_missing_sets_are_errors(tmp_path):
    with pytest.raises(DataError, match=r"svhn: .*train_32x32\.mat"):
        ood.resolve_ood(["svhn"], toy(), tmp_path)
    with pytest.raises(DataError, match="unknown OOD set 'svhm'"):
        ood.resolve_ood(["svhm"], toy(), tmp_path)
    with pytest.raises(DataError, match="non-empty string"):
        ood.resolve_ood([" "], toy(), tmp_path)


def test_a_set_named_twice_is_evaluated_once_and_follows_the_device(tmp_path):
    path = write_tree(tmp_path / "pics.tar", fake_tree(size=(4, 4)).members, "tar")
    sets, skipped = ood.resolve_ood(["uniform_noise", str(path), "uniform_noise", str(path)], toy())
    assert [s.name for s in sets] == ["uniform_noise", "pics"] and skipped == []
    assert sets[1].description.endswith("used as they are")
    assert all(s.images.device == torch.device("cpu") for s in sets)
    assert repr(sets[0]).startswith("OODSet(name='uniform_noise', images=5x3x4x4")


def test_ood_images_from_a_dataset_object():
    d = toy()
    other = images.from_arrays(
        "bigger",
        "bigger",
        RawImages(
            np.full((2, 1, 8, 8), 200, np.uint8),
            np.array([0, 1]),
            np.full((3, 1, 8, 8), 100, np.uint8),
            np.array([0, 1, 0]),
            ("y", "z"),
            "h",
            "x",
        ),
    )
    result = ood.ood_from_images(other, d)
    assert result.images.shape == (3, 3, 4, 4) and (result.images == 100).all()
    assert result.name == "bigger"


def test_set_names_are_safe_in_paths_and_metric_keys():
    assert ood.set_name("My Photos/2024") == "my_photos_2024"
    assert ood.set_name("///") == "images"


def test_pil_grey_formula_reference():
    """Pillow's convert('L') on a single pixel, checked by hand: (19595*R + 38470*G + 7471*B
    + 32768) >> 16."""
    pixel = Image.fromarray(np.array([[[10, 200, 30]]], dtype=np.uint8))
    assert (
        pixel.convert("L").getpixel((0, 0)) == (19595 * 10 + 38470 * 200 + 7471 * 30 + 32768) >> 16
    )
    converted, _ = ood.convert_images(
        torch.tensor([[[[10]], [[200]], [[30]]]], dtype=torch.uint8), 1, (1, 1)
    )
    assert converted.item() == pixel.convert("L").getpixel((0, 0))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "noise",
            r"unknown OOD set 'noise'\. Did you mean uniform_noise or gaussian_noise\? Valid: ",
        ),
        ("svhm", r"Did you mean svhn\?.*pairs, an image set name"),
        ("zzz", r"unknown OOD set 'zzz'\. Valid: uniform_noise, gaussian_noise, pairs"),
    ],
)
def test_an_unknown_ood_name_lists_the_valid_ones(spec, message):
    with pytest.raises(DataError, match=message):
        ood.resolve_ood([spec], toy())


def test_the_noise_spec_is_the_name_of_the_set_and_its_metric_keys():
    sets, _ = ood.resolve_ood(["uniform_noise", "gaussian_noise"], toy())
    assert [s.name for s in sets] == ["uniform_noise", "gaussian_noise"]
