"""ImageDataset: the stratified, seeded validation carve-out, exact channel statistics, devices,
the registry's image kind, name errors, --download from a local mirror, and the shared JPEG copy
of CIFAR-10 where it is present."""

from __future__ import annotations

import dataclasses
import hashlib
import time

import numpy as np
import pytest
import torch
from image_fakes import (
    fake_cifar10,
    fake_tree,
    isolate,
    shared_cifar10_archive,
    write_files,
    write_tar,
    write_tree,
)

from uqbench import data
from uqbench.data import DataError, image_formats, images
from uqbench.data.image_formats import RawImages


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def raw_set(labels, seed=0, shape=(3, 4, 4)):
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int64)
    x = rng.integers(0, 256, (len(labels), *shape), dtype=np.uint8)
    x_test = rng.integers(0, 256, (5, *shape), dtype=np.uint8)
    names = tuple(f"c{i}" for i in range(labels.max() + 1))
    return RawImages(x, labels, x_test, np.zeros(5, np.int64), names, "h" * 64, "test")


# --- validation carve-out -------------------------------------------------------------------------


def test_carve_out_is_stratified_exact_and_seeded():
    labels = np.repeat([0, 1, 2], [50, 30, 20])  # 100 images
    train, val = images.stratified_validation(labels, 0.1, seed=3)
    assert len(val) == 10 and len(train) == 90
    assert np.bincount(labels[val]).tolist() == [5, 3, 2]
    assert sorted([*train, *val]) == list(range(100))
    assert (np.diff(train) > 0).all() and (np.diff(val) > 0).all()
    again, _ = images.stratified_validation(labels, 0.1, seed=3)
    np.testing.assert_array_equal(train, again)
    other, _ = images.stratified_validation(labels, 0.1, seed=4)
    assert not np.array_equal(train, other)


def test_carve_out_rounds_shares_by_largest_remainder():
    labels = np.repeat([0, 1, 2], [4, 4, 4])
    _, val = images.stratified_validation(labels, 0.25, seed=0)  # 3 of 12: one per class
    assert np.bincount(labels[val]).tolist() == [1, 1, 1]
    labels = np.repeat([0, 1, 2], [5, 3, 2])  # 10 images, 4 to validation: 2, 1.2, 0.8
    _, val = images.stratified_validation(labels, 0.4, seed=0)
    assert np.bincount(labels[val], minlength=3).tolist() == [2, 1, 1]


def test_carve_out_may_not_empty_a_class():
    with pytest.raises(DataError, match="every training image of class"):
        images.stratified_validation(np.array([0] * 8 + [1]), 0.6, seed=0)


def test_validation_part_and_statistics_of_a_dataset():
    raw = raw_set(np.repeat([0, 1], [30, 10]))
    d = images.from_arrays("toy", "toy", raw, validation_fraction=0.25, seed=1)
    train, val = images.stratified_validation(raw.y_train, 0.25, 1)
    np.testing.assert_array_equal(d.x_val.numpy(), raw.x_train[val])
    np.testing.assert_array_equal(d.y_train.numpy(), raw.y_train[train])
    pixels = raw.x_train[train].astype(np.float64) / 255
    np.testing.assert_allclose(d.mean, pixels.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(d.std, pixels.std(axis=(0, 2, 3)), rtol=1e-12)
    # the test part never depends on the seed
    other = images.from_arrays("toy", "toy", raw, validation_fraction=0.25, seed=2)
    assert torch.equal(other.x_test, d.x_test) and not torch.equal(other.x_val, d.x_val)


def test_channel_stats_are_exact_on_hand_values():
    x = torch.tensor([[[[0, 255]], [[51, 51]]]], dtype=torch.uint8)  # 1 image, 2 channels
    mean, std = images.channel_stats(x)
    assert mean == (0.5, 0.2) and std == (0.5, 0.0)
    with pytest.raises(DataError, match="uint8"):
        images.channel_stats(x.float())


def test_to_repr_and_properties():
    d = images.from_arrays("toy", "src", raw_set([0, 1, 1, 0, 2]))
    assert d.to("cpu") is d and d.device == torch.device("cpu")
    assert d.num_classes == 3 and d.image_shape == (3, 4, 4)
    assert d.x_val.shape == (0, 3, 4, 4) and d.y_val.dtype == torch.int64
    assert repr(d).startswith("ImageDataset(name='toy', train=5, val=0, test=5, image_shape=3x4x4")
    with pytest.raises(dataclasses.FrozenInstanceError):
        d.name = "other"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_to_cuda_moves_every_tensor():
    d = images.from_arrays("toy", "src", raw_set([0, 1, 1, 0]), validation_fraction=0.5).to("cuda")
    assert {getattr(d, f).device.type for f in ("x_train", "y_val", "x_test")} == {"cuda"}


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="validation_fraction must be a number in"):
        data.get_images("digits", validation_fraction=1.0)
    with pytest.raises(DataError, match="seed must be a non-negative integer"):
        data.get_images("digits", seed=-1)
    with pytest.raises(DataError, match="validation_fraction=0.0001 of 1437"):
        data.get_images("digits", validation_fraction=0.0001)


# --- names and the registry -----------------------------------------------------------------------


def test_registry_lists_the_image_sets():
    assert data.names("image") == ["cifar10", "cifar100", "fashion_mnist", "mnist", "svhn"]
    described = {n: (k, t) for n, k, t in data.describe()}
    assert described["cifar10"][0] == "image" and "50,000 + 10,000" in described["cifar10"][1]
    assert described["digits"][0] == "classification"  # the tabular set stays as it was
    assert data.num_splits("svhn") == 1


def test_registry_get_gives_an_image_dataset_for_split_0_only(tmp_path):
    fake = fake_cifar10()
    write_files(tmp_path / "cifar-10-batches-py", fake.files)
    d = data.get("cifar10", split=0, data_dir=tmp_path, validation_fraction=0.2, seed=5)
    assert isinstance(d, data.ImageDataset) and len(d.x_val) == 6
    with pytest.raises(DataError, match="one official train/test split: split must be 0, got 1"):
        data.get("cifar10", split=1, data_dir=tmp_path)


def test_registry_get_accepts_an_image_folder_path(tmp_path, monkeypatch):
    path = write_tree(tmp_path / "pets.zip", fake_tree().members, "zip")
    assert data.get(str(path)).name == "pets"
    monkeypatch.chdir(tmp_path)
    assert data.get("pets.zip").name == "pets"  # an archive in the working directory


def test_unknown_names_suggest_close_matches():
    with pytest.raises(DataError, match=r"unknown image set 'cifar1O'\. Did you mean 'cifar10'"):
        data.get_images("cifar1O")
    with pytest.raises(DataError, match=r"Did you mean .*'cifar10'"):
        data.get("cifar-1O")
    with pytest.raises(DataError, match="'boston' is a regression data set, not an image set"):
        data.get_images("boston")
    with pytest.raises(DataError, match="a name or a path"):
        data.get_images(3)


def test_image_api_is_lazy_and_exported():
    assert data.get_images is images.load_images
    assert "get_images" in dir(data)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        data.nothing  # noqa: B018


# --- download -------------------------------------------------------------------------------------


@pytest.fixture
def cifar_mirror(tmp_path, monkeypatch):
    """The official CIFAR-10 archive layout on a file:// mirror, registered with its MD5."""
    fake = fake_cifar10()
    archive = write_tar(
        tmp_path / "mirror" / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{k}": v for k, v in fake.files.items()},
    )
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    info = image_formats.IMAGE_SETS["cifar10"]
    item = image_formats.Download("cifar-10-python.tar.gz", (archive.as_uri(),), md5)
    monkeypatch.setitem(
        image_formats.IMAGE_SETS, "cifar10", dataclasses.replace(info, downloads=(item,))
    )
    return fake, archive


def test_download_fetches_the_official_archive(tmp_path, cifar_mirror):
    fake, archive = cifar_mirror
    target = tmp_path / "dd"
    with pytest.raises(DataError, match="--download"):
        data.get_images("cifar10", data_dir=target)
    d = data.get_images("cifar10", data_dir=target, download=True)
    assert (target / "cifar-10-python.tar.gz").read_bytes() == archive.read_bytes()
    np.testing.assert_array_equal(d.x_test.numpy(), fake.x_test)
    assert [p.name for p in target.iterdir()] == ["cifar-10-python.tar.gz"]


@pytest.mark.usefixtures("cifar_mirror")
def test_a_download_with_the_wrong_checksum_leaves_nothing(tmp_path, monkeypatch):
    info = image_formats.IMAGE_SETS["cifar10"]
    wrong = dataclasses.replace(info.downloads[0], md5="0" * 32)
    monkeypatch.setitem(
        image_formats.IMAGE_SETS, "cifar10", dataclasses.replace(info, downloads=(wrong,))
    )
    target = tmp_path / "dd"
    with pytest.raises(DataError, match="published checksum is 0000"):
        data.get_images("cifar10", data_dir=target, download=True)
    assert list(target.iterdir()) == []


@pytest.mark.usefixtures("cifar_mirror")
def test_a_failed_mirror_falls_back_to_the_next(tmp_path, monkeypatch):
    info = image_formats.IMAGE_SETS["cifar10"]
    item = info.downloads[0]
    urls = ((tmp_path / "nowhere.tar.gz").as_uri(), *item.urls)
    monkeypatch.setitem(
        image_formats.IMAGE_SETS,
        "cifar10",
        dataclasses.replace(info, downloads=(dataclasses.replace(item, urls=urls),)),
    )
    assert data.get_images("cifar10", data_dir=tmp_path / "dd", download=True).num_classes == 10


def test_when_every_mirror_fails_the_error_lists_them(tmp_path):
    from uqbench.data.download import fetch_file

    nowhere = (tmp_path / "nowhere.tar.gz").as_uri()
    with pytest.raises(DataError, match=r"could not download f\.tar\.gz \(.*nowhere.*Copy it\."):
        fetch_file([nowhere], tmp_path / "x" / "f.tar.gz", advice="Copy it.")
    assert list((tmp_path / "x").iterdir()) == []


# --- the shared JPEG copy of CIFAR-10 -------------------------------------------------------------


@pytest.fixture
def shared_cifar10():
    path = shared_cifar10_archive()
    if path is None:
        pytest.skip("the shared CIFAR-10 copy (cifar10/cifar10-jpeg75.tar.gz) is not present")
    return path


@pytest.mark.shared_data
def test_shared_cifar10_jpeg_copy(shared_cifar10, pytestconfig):
    # a cache that outlives the test run (in pytest's cache folder, not the user's), so only
    # the first run pays for decoding 60,000 JPEGs
    cache = pytestconfig.cache.mkdir("uqbench-decoded")
    start = time.perf_counter()
    d = data.get_images(str(shared_cifar10), cache_dir=cache, validation_fraction=0.1)
    assert d.name == "cifar10" and d.num_classes == 10
    assert len(d.x_train) + len(d.x_val) == 50_000 and len(d.x_test) == 10_000
    assert len(d.x_val) == 5_000 and torch.bincount(d.y_val).tolist() == [500] * 10
    assert d.image_shape == (3, 32, 32)
    assert d.class_names[:3] == ("airplane", "automobile", "bird")
    full = data.get_images(str(shared_cifar10), cache_dir=cache)
    np.testing.assert_allclose(full.mean, (0.4913, 0.4821, 0.4465), atol=2e-4)
    assert torch.bincount(full.y_test).tolist() == [1000] * 10
    assert full.data_hash == hashlib.sha256(shared_cifar10.read_bytes()).hexdigest()
    assert time.perf_counter() - start < 120
