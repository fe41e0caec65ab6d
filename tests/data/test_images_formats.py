"""The published formats, written by the tests: CIFAR-10/100 pickles (folder, alias folder,
official archive), IDX (plain and gzip), SVHN MATLAB v5 files and scikit-learn's digits, read
back exactly; and every kind of damage or absence gives a clear error."""

from __future__ import annotations

import hashlib
import pickle
import re

import numpy as np
import pytest
import torch
from image_fakes import (
    fake_cifar10,
    fake_cifar100,
    idx_bytes,
    isolate,
    write_files,
    write_idx_set,
    write_svhn,
    write_tar,
)

from uqbench import data
from uqbench.data import DataError, image_formats


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    isolate(monkeypatch, tmp_path)


def assert_images(tensor, expected):
    assert tensor.dtype == torch.uint8 and tensor.is_contiguous()
    np.testing.assert_array_equal(tensor.numpy(), expected)


# --- CIFAR ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["folder", "alias", "archive", "alias_archive"])
def test_cifar10_is_read_exactly_from_every_accepted_place(tmp_path, where):
    fake = fake_cifar10()
    root = tmp_path / "dd"
    if where == "folder":
        write_files(root / "cifar-10-batches-py", fake.files)
    elif where == "alias":
        write_files(root / "cifar10" / "cifar-10-batches-py", fake.files)
    else:
        folder = root / ("cifar10" if where == "alias_archive" else "")
        write_tar(
            folder / "cifar-10-python.tar.gz",
            {f"cifar-10-batches-py/{k}": v for k, v in fake.files.items()},
        )
    d = data.get_images("cifar10", data_dir=root)
    assert d.name == "cifar10" and d.source == "cifar10"
    assert_images(d.x_train, fake.x_train)
    assert_images(d.x_test, fake.x_test)
    np.testing.assert_array_equal(d.y_train.numpy(), fake.y_train)
    np.testing.assert_array_equal(d.y_test.numpy(), fake.y_test)
    assert d.y_train.dtype == torch.int64
    assert d.class_names == tuple(fake.class_names) and d.num_classes == 10
    assert d.image_shape == (3, 32, 32)
    # the hash covers the batch files in the documented order, whatever the packaging
    order = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]
    assert d.data_hash == hashlib.sha256(b"".join(fake.files[f] for f in order)).hexdigest()


def test_cifar_pixel_layout_is_red_then_green_then_blue_planes(tmp_path):
    fake = fake_cifar10(per_batch=1, test=1)
    write_files(tmp_path / "cifar-10-batches-py", fake.files)
    d = data.get_images("cifar10", data_dir=tmp_path)
    row = pickle.loads(fake.files["data_batch_1"])["data"][0]
    # pixel (row 2, column 5) of the first image: red at 2*32+5, green 1024 later, blue 2048
    assert d.x_train[0, :, 2, 5].tolist() == [row[69], row[1024 + 69], row[2048 + 69]]


def test_cifar_pickles_with_bytes_keys_are_read_too(tmp_path):
    fake = fake_cifar10(bytes_keys=True)
    write_files(tmp_path / "cifar-10-batches-py", fake.files)
    d = data.get_images("cifar10", data_dir=tmp_path)
    assert_images(d.x_test, fake.x_test)
    assert d.class_names[0] == "airplane"


def test_cifar100_uses_the_fine_labels(tmp_path):
    fake = fake_cifar100()
    write_tar(
        tmp_path / "cifar-100-python.tar.gz",
        {f"cifar-100-python/{k}": v for k, v in fake.files.items()},
    )
    d = data.get_images("CIFAR-100", data_dir=tmp_path)
    assert d.name == "cifar100" and d.num_classes == 100
    assert d.class_names[:2] == ("fine_00", "fine_01")
    assert_images(d.x_train, fake.x_train)
    np.testing.assert_array_equal(d.y_train.numpy(), fake.y_train)
    np.testing.assert_array_equal(d.y_test.numpy(), fake.y_test)


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    fake = fake_cifar10()
    fake.files["test_batch"] = pickle.dumps({"data": print, "labels": []})
    write_files(tmp_path / "cifar-10-batches-py", fake.files)
    with pytest.raises(DataError, match=r"test_batch is not a readable CIFAR.*refusing"):
        data.get_images("cifar10", data_dir=tmp_path)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda c: {**c, "data": c["data"][:, :100]}, "100 values, not 3072"),
        (lambda c: {k: v for k, v in c.items() if k != "labels"}, "no 'labels' entry"),
        (lambda c: {**c, "labels": [*c["labels"][:-1], 10]}, r"labels must lie in 0\.\.9"),
        (lambda c: {**c, "labels": c["labels"][:-1]}, "one integer label per image"),
    ],
)
def test_damaged_cifar_batches_are_clear_errors(tmp_path, damage, message):
    fake = fake_cifar10()
    content = pickle.loads(fake.files["data_batch_3"])
    fake.files["data_batch_3"] = pickle.dumps(damage(content), protocol=2)
    write_files(tmp_path / "cifar-10-batches-py", fake.files)
    with pytest.raises(DataError, match=message) as info:
        data.get_images("cifar10", data_dir=tmp_path)
    assert "data_batch_3" in str(info.value)


def test_a_truncated_cifar_archive_is_a_clear_error(tmp_path):
    fake = fake_cifar10()
    archive = write_tar(
        tmp_path / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{k}": v for k, v in fake.files.items()},
    )
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cifar-10-python\.tar\.gz .*re-download"):
        data.get_images("cifar10", data_dir=tmp_path)


def test_an_archive_missing_a_member_names_it(tmp_path):
    fake = fake_cifar10()
    del fake.files["data_batch_4"]
    write_tar(
        tmp_path / "cifar-10-python.tar.gz",
        {f"cifar-10-batches-py/{k}": v for k, v in fake.files.items()},
    )
    with pytest.raises(DataError, match="no member cifar-10-batches-py/data_batch_4"):
        data.get_images("cifar10", data_dir=tmp_path)


def test_missing_cifar_names_the_places_searched_and_the_url(tmp_path):
    with pytest.raises(DataError) as info:
        data.get_images("cifar10", data_dir=tmp_path / "empty")
    text = str(info.value)
    assert str(tmp_path / "empty") in text and "cifar-10-batches-py" in text
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in text
    assert "--download" in text


def test_an_incomplete_cifar_folder_names_the_missing_file(tmp_path):
    fake = fake_cifar10()
    del fake.files["test_batch"]
    folder = write_files(tmp_path / "cifar-10-batches-py", fake.files)
    with pytest.raises(DataError, match=re.escape(str(folder / "test_batch"))):
        data.get_images("cifar10", data_dir=tmp_path)


# --- IDX ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_sets_are_read_exactly(tmp_path, name, gz):
    fake = write_idx_set(tmp_path / name, gz=gz)
    d = data.get_images(name, data_dir=tmp_path)
    assert d.image_shape == (1, 28, 28)
    assert_images(d.x_train, fake.x_train[:, None])
    assert_images(d.x_test, fake.x_test[:, None])
    np.testing.assert_array_equal(d.y_train.numpy(), fake.y_train)
    np.testing.assert_array_equal(d.y_test.numpy(), fake.y_test)
    expected_names = image_formats.FASHION_MNIST_CLASSES if name == "fashion_mnist" else None
    assert d.class_names == (expected_names or tuple("0123456789"))
    # the hash is over the uncompressed files, so .gz and plain give the same one
    plain = [idx_bytes(a) for a in (fake.x_train, fake.y_train, fake.x_test, fake.y_test)]
    assert d.data_hash == hashlib.sha256(b"".join(plain)).hexdigest()


def test_a_wrong_magic_number_is_a_clear_error(tmp_path):
    write_idx_set(tmp_path / "mnist")
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    (tmp_path / "mnist" / "train-images-idx3-ubyte").write_bytes(labels.read_bytes())
    with pytest.raises(DataError, match=r"magic number 0x00000801, expected 0x00000803"):
        data.get_images("mnist", data_dir=tmp_path)


def test_a_truncated_idx_file_is_a_clear_error(tmp_path):
    write_idx_set(tmp_path / "mnist")
    images = tmp_path / "mnist" / "t10k-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte is truncated: .* 3136 values"):
        data.get_images("mnist", data_dir=tmp_path)
    images.write_bytes(images.read_bytes()[:9])
    with pytest.raises(DataError, match="truncated inside its header"):
        data.get_images("mnist", data_dir=tmp_path)


def test_a_truncated_gzip_file_is_a_clear_error(tmp_path):
    write_idx_set(tmp_path / "mnist", gz=True)
    packed = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    packed.write_bytes(packed.read_bytes()[:-8])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz is not a readable gzip"):
        data.get_images("mnist", data_dir=tmp_path)


def test_idx_images_and_labels_must_agree(tmp_path):
    fake = write_idx_set(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(fake.y_test[:-1]))
    with pytest.raises(DataError, match="holds 4 images but .* holds 3 labels"):
        data.get_images("mnist", data_dir=tmp_path)


def test_missing_idx_files_name_the_path_and_the_url(tmp_path):
    write_idx_set(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError) as info:
        data.get_images("mnist", data_dir=tmp_path)
    text = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-labels-idx1-ubyte") in text
    assert "train-images-idx3-ubyte.gz" in text and "--download" in text


def test_parse_idx_reads_any_dimensions_big_endian():
    array = np.arange(2 * 3 * 300, dtype=np.int64).reshape(2, 3, 300).astype(np.uint8)
    raw = bytes([0, 0, 8, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    raw += (300).to_bytes(4, "big") + array.tobytes()
    parsed = image_formats.parse_idx(raw, image_formats.IDX_IMAGES_MAGIC, "x")
    np.testing.assert_array_equal(parsed, array)
    with pytest.raises(DataError, match="longer than its header says"):
        image_formats.parse_idx(raw + b"\0", image_formats.IDX_IMAGES_MAGIC, "x")
    with pytest.raises(DataError, match="not even an IDX header"):
        image_formats.parse_idx(b"\0\0", image_formats.IDX_IMAGES_MAGIC, "x")


# --- SVHN -----------------------------------------------------------------------------------------


def test_svhn_mat_files_are_read_exactly_with_label_10_as_digit_0(tmp_path):
    written = write_svhn(tmp_path / "svhn")
    d = data.get_images("svhn", data_dir=tmp_path)
    x, y = written["train"]
    # X[h, w, c, n] -> images[n, c, h, w]
    assert d.x_train[2, 1, 7, 30].item() == x[7, 30, 1, 2]
    assert_images(d.x_train, x.transpose(3, 2, 0, 1))
    expected = y[:, 0].astype(np.int64)
    expected[expected == 10] = 0
    np.testing.assert_array_equal(d.y_train.numpy(), expected)
    assert d.y_train[0].item() == 0  # written as 10
    assert_images(d.x_test, written["test"][0].transpose(3, 2, 0, 1))
    raw = (tmp_path / "svhn" / "train_32x32.mat").read_bytes()
    raw += (tmp_path / "svhn" / "test_32x32.mat").read_bytes()
    assert d.data_hash == hashlib.sha256(raw).hexdigest()


def test_damaged_svhn_files_are_clear_errors(tmp_path):
    from scipy.io import savemat

    write_svhn(tmp_path / "svhn")
    test_file = tmp_path / "svhn" / "test_32x32.mat"
    test_file.write_bytes(test_file.read_bytes()[:300])
    with pytest.raises(DataError, match=r"test_32x32\.mat is not a readable MATLAB v5 file"):
        data.get_images("svhn", data_dir=tmp_path)
    x = np.zeros((32, 32, 3, 2), dtype=np.uint8)
    savemat(test_file, {"X": x, "y": np.array([[0], [3]], dtype=np.uint8)})
    with pytest.raises(DataError, match=r"labels must be integers 1\.\.10"):
        data.get_images("svhn", data_dir=tmp_path)
    savemat(test_file, {"X": x, "z": np.array([[1], [3]])})
    with pytest.raises(DataError, match="lacks the variables X and y"):
        data.get_images("svhn", data_dir=tmp_path)


def test_missing_svhn_names_the_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / "svhn" / "train_32x32.mat"))):
        data.get_images("svhn", data_dir=tmp_path)


# --- digits ---------------------------------------------------------------------------------------


def test_digits_images_use_the_tabular_split_0_partition():
    from sklearn.datasets import load_digits

    d = data.get_images("digits")
    tabular = data.get("digits", split=0)
    source = load_digits()
    assert d.image_shape == (1, 8, 8) and d.x_test.shape[0] == len(tabular.test_index) == 360
    expected = np.floor(source.data[tabular.test_index] * 255 / 16 + 0.5).reshape(-1, 1, 8, 8)
    assert_images(d.x_test, expected.astype(np.uint8))
    np.testing.assert_array_equal(d.y_test.numpy(), source.target[tabular.test_index])
    np.testing.assert_array_equal(d.y_train.numpy(), source.target[tabular.train_index])
    assert d.x_train.max().item() == 255 and d.source == "digits"
    assert d.name == "digits" and d.class_names == tuple("0123456789")
