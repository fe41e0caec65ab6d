"""Loading a fake UCI folder: rows, standardisation, validation carve-out, hashes, name lookup."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

import uqbench.data as data


def features_and_target(raw, fake, rows):
    rows = np.asarray(rows)
    return raw[rows][:, fake.FEATURES], raw[rows, fake.TARGET]


def destandardise(s, x):
    return x.astype(np.float64) * s.x_std + s.x_mean


@pytest.mark.parametrize("split", [0, 1, 2])
def test_rows_are_selected_exactly_as_the_index_files_say(data_dir, raw, fake, split):
    s = data.get("boston", split=split, data_dir=data_dir)
    assert isinstance(s, data.RegressionSplit)
    assert s.name == "boston" and s.split == split and s.num_splits == 3
    assert sorted(s.train_index.tolist()) == sorted(fake.train_rows(split))
    assert sorted(s.test_index.tolist()) == sorted(fake.TEST_ROWS[split])
    assert s.val_index.size == 0 and s.x_val.shape == (0, 4) and s.y_val.shape == (0,)
    # documented: index arrays are sorted int64 row numbers (the files themselves are not sorted)
    for index in (s.train_index, s.test_index):
        assert index.dtype == np.int64 and np.all(np.diff(index) > 0)
    assert s.x_train.shape == (24, 4) and s.x_test.shape == (6, 4)
    assert s.x_train.dtype == np.float32 and s.y_test.dtype == np.float32
    # each returned row is the hand-selected row of data.txt, in the order of *_index
    for x, y, index in ((s.x_train, s.y_train, s.train_index), (s.x_test, s.y_test, s.test_index)):
        x_raw, y_raw = features_and_target(raw, fake, index)
        np.testing.assert_allclose(destandardise(s, x), x_raw, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(s.to_original(y.astype(np.float64)), y_raw, rtol=1e-5)


def test_test_rows_by_hand(data_dir, raw, fake):
    # split 1's test rows are 1, 26, 11, 6, 21, 16: their targets, sorted, straight from the file
    s = data.get("boston", split=1, data_dir=data_dir)
    expected = sorted(raw[[1, 6, 11, 16, 21, 26], fake.TARGET])
    np.testing.assert_allclose(sorted(s.to_original(s.y_test.astype(float))), expected, rtol=1e-5)


def test_standardisation_uses_only_the_training_rows(data_dir, raw, fake):
    s = data.get("boston", split=0, data_dir=data_dir)
    x_raw, y_raw = features_and_target(raw, fake, fake.train_rows(0))
    varying = [i for i, c in enumerate(fake.FEATURES) if c != fake.CONSTANT_COLUMN]
    np.testing.assert_allclose(s.x_mean[varying], x_raw.mean(axis=0)[varying], rtol=1e-12)
    np.testing.assert_allclose(s.x_std[varying], x_raw.std(axis=0)[varying], rtol=1e-12)
    assert s.y_mean == pytest.approx(y_raw.mean(), rel=1e-12)
    assert s.y_std == pytest.approx(y_raw.std(), rel=1e-12)
    # the test rows are mapped with the training statistics, not their own
    x_test_raw, y_test_raw = features_and_target(raw, fake, s.test_index)
    expected = (x_test_raw[:, varying] - x_raw.mean(0)[varying]) / x_raw.std(0)[varying]
    np.testing.assert_allclose(s.x_test[:, varying], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        s.y_test, (y_test_raw - y_raw.mean()) / y_raw.std(), rtol=1e-5, atol=1e-5
    )
    # and the training part is standardised
    np.testing.assert_allclose(s.x_train[:, varying].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(s.x_train[:, varying].std(0), 1, atol=1e-5)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.25])
def test_constant_column_becomes_zeros_not_nan(data_dir, fake, validation_fraction):
    s = data.get("boston", data_dir=data_dir, validation_fraction=validation_fraction)
    column = fake.FEATURES.index(fake.CONSTANT_COLUMN)
    for x in (s.x_train, s.x_val, s.x_test):
        assert np.isfinite(x).all()
        np.testing.assert_array_equal(x[:, column], 0.0)
    assert s.x_std[column] == 1.0


def test_to_original_inverts_mean_and_scales_variance(data_dir, raw, fake):
    s = data.get("boston", split=2, data_dir=data_dir)
    _, y_raw = features_and_target(raw, fake, s.test_index)
    np.testing.assert_allclose(s.to_original(s.y_test.astype(float)), y_raw, rtol=1e-5)
    mean, var = s.to_original(np.array([0.0, 1.0]), np.array([1.0, 4.0]))
    np.testing.assert_allclose(mean, [s.y_mean, s.y_mean + s.y_std])
    np.testing.assert_allclose(var, [s.y_std**2, 4 * s.y_std**2])
    tensor_mean = s.to_original(torch.from_numpy(s.y_test))
    np.testing.assert_allclose(tensor_mean.numpy(), y_raw, rtol=1e-5)


def test_validation_carve_out(data_dir, raw, fake):
    s = data.get("boston", split=1, data_dir=data_dir, validation_fraction=0.25, seed=3)
    train, val, test = set(s.train_index), set(s.val_index), set(s.test_index)
    assert len(val) == 6 and len(train) == 18  # round(0.25 * 24) = 6
    assert not train & val and not val & test and not train & test
    assert train | val == set(fake.train_rows(1))
    assert test == set(fake.TEST_ROWS[1])
    # standardised with the 18 rows trained on, not the 24 of the published training part
    x_raw, y_raw = features_and_target(raw, fake, s.train_index)
    assert s.y_mean == pytest.approx(y_raw.mean(), rel=1e-12)
    np.testing.assert_allclose(s.x_mean[[0, 1, 3]], x_raw.mean(0)[[0, 1, 3]], rtol=1e-12)
    x_val_raw, y_val_raw = features_and_target(raw, fake, s.val_index)
    np.testing.assert_allclose(destandardise(s, s.x_val), x_val_raw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.to_original(s.y_val.astype(float)), y_val_raw, rtol=1e-5)


def test_validation_carve_out_is_seeded(data_dir):
    def get(seed, split=0):
        return data.get(
            "boston", split=split, data_dir=data_dir, validation_fraction=0.25, seed=seed
        )

    a, b, c = get(0), get(0), get(1)
    np.testing.assert_array_equal(a.val_index, b.val_index)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.data_hash == b.data_hash
    assert set(a.val_index) != set(c.val_index)
    # the test part never depends on the seed
    np.testing.assert_array_equal(a.test_index, c.test_index)
    assert set(a.train_index) | set(a.val_index) == set(c.train_index) | set(c.val_index)


def test_published_settings_are_read(data_dir):
    s = data.get("boston", data_dir=data_dir)
    assert s.n_hidden == 50 and s.n_epochs == 40
    assert s.dropout_rates == (0.005, 0.01, 0.05, 0.1)
    assert s.tau_values == (0.25, 0.5, 1.0)


def test_folder_without_settings_files_uses_defaults(tmp_path, fake):
    folder = fake.write(tmp_path / "plain", meta=False)
    assert data.num_splits(str(folder)) == 3  # counted from index_train_*.txt
    s = data.get(str(folder), split=2)
    assert s.num_splits == 3 and s.n_hidden == 50 and s.n_epochs == 40
    assert s.dropout_rates is None and s.tau_values is None


def test_data_hash_is_the_sha256_of_the_files_read(data_dir, folder):
    # documented: cat data.txt index_features.txt index_target.txt index_train_i index_test_i
    files = ["data.txt", "index_features.txt", "index_target.txt"]
    files += ["index_train_1.txt", "index_test_1.txt"]
    expected = hashlib.sha256(b"".join((folder / f).read_bytes() for f in files)).hexdigest()
    assert data.get("boston", split=1, data_dir=data_dir).data_hash == expected


def rewrite(path, text):
    """Write ``text`` and move the modification time forward, so no cache can miss the change."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def edit(file, change):
    def apply(folder):
        path = folder / file
        rewrite(path, change(path.read_text()))

    return apply


def swap_target(folder):
    rewrite(folder / "index_features.txt", "0\n1\n2\n4\n")
    rewrite(folder / "index_target.txt", "3\n")


@pytest.mark.parametrize(
    "change",
    [
        edit("data.txt", lambda text: text.replace(text.split()[0], "9.999", 1)),
        edit("index_train_0.txt", lambda text: "\n".join(text.split()[:-1]) + "\n"),
        edit("index_test_0.txt", lambda text: "\n".join(text.split()[::-1]) + "\n"),
        edit("index_features.txt", lambda text: "0\n1\n3\n"),
        swap_target,
    ],
    ids=["data", "train-index", "test-index-order", "features", "target"],
)
def test_data_hash_changes_when_a_file_changes(data_dir, folder, change):
    before = data.get("boston", data_dir=data_dir).data_hash
    assert data.get("boston", data_dir=data_dir).data_hash == before  # stable
    change(folder)
    assert data.get("boston", data_dir=data_dir).data_hash != before


def test_changed_data_txt_is_reread(data_dir, folder, fake):
    first = data.get("boston", data_dir=data_dir)
    matrix = fake.matrix()
    matrix[:, fake.TARGET] += 100.0
    rewrite(folder / "data.txt", (folder / "data.txt").read_text())  # same bytes, new mtime
    assert data.get("boston", data_dir=data_dir).data_hash == first.data_hash
    fake.write(folder, matrix)
    os.utime(folder / "data.txt", ns=(10**18, 10**18))
    second = data.get("boston", data_dir=data_dir)
    assert second.y_mean == pytest.approx(first.y_mean + 100.0)


def test_hash_differs_between_splits(data_dir):
    hashes = {data.get("boston", split=i, data_dir=data_dir).data_hash for i in range(3)}
    assert len(hashes) == 3


def test_a_folder_path_works_as_the_name(tmp_path, fake):
    folder = fake.write(tmp_path / "my-set")
    by_str = data.get(str(folder), split=1)
    by_path = data.get(folder, split=1)
    assert by_str.name == "my-set" and by_str.num_splits == 3
    np.testing.assert_array_equal(by_str.x_train, by_path.x_train)
    assert by_str.data_hash == by_path.data_hash
    assert data.num_splits(folder) == 3


def test_short_and_folder_names_resolve_against_data_dir(data_dir, folder):
    splits = [
        data.get(name, split=1, data_dir=data_dir)
        for name in ("boston", "bostonHousing", "BOSTON", "bostonhousing")
    ]
    by_path = data.get(str(folder), split=1)
    for s in splits:
        assert s.name == "boston"
        np.testing.assert_array_equal(s.x_test, splits[0].x_test)
        assert s.data_hash == by_path.data_hash
    assert data.num_splits("boston", data_dir=data_dir) == 3
    assert data.num_splits("bostonHousing", data_dir=data_dir) == 3


def test_data_dir_from_the_environment(data_dir, monkeypatch):
    monkeypatch.setenv("UQBENCH_DATA_DIR", str(data_dir))
    assert data.get("boston", split=2).x_train.shape == (24, 4)
    assert data.num_splits("boston") == 3
