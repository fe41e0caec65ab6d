"""The built-in sets (no files): names, shapes, determinism, stratification, gap1d's gap."""

from __future__ import annotations

import numpy as np
import pytest

import uqbench.data as data
from uqbench.data import uci

BUILTIN_REGRESSION = ["diabetes", "friedman1", "gap1d"]
CLASSIFICATION = ["breast_cancer", "digits", "iris", "two_moons", "wine_recognition"]


def test_names_by_kind():
    assert data.names("regression") == sorted([*uci.FOLDERS, *BUILTIN_REGRESSION])
    assert data.names("classification") == CLASSIFICATION
    assert data.names() == sorted(
        data.names("regression")
        + data.names("classification")
        + data.names("image")
        + data.names("text")
    )
    described = data.describe()
    assert [name for name, _, _ in described] == data.names()
    for name, kind, text in described:
        assert kind in ("regression", "classification", "image", "text") and text.strip(), name


@pytest.mark.parametrize(
    ("name", "train", "test", "features"),
    [("diabetes", 398, 44, 10), ("friedman1", 900, 100, 10)],
)
def test_builtin_regression_shapes(name, train, test, features):
    s = data.get(name, split=3)
    assert isinstance(s, data.RegressionSplit)
    assert s.x_train.shape == (train, features) and s.y_train.shape == (train,)
    assert s.x_test.shape == (test, features) and s.y_test.shape == (test,)
    assert s.x_train.dtype == np.float32
    assert s.num_splits == data.num_splits(name) == 20
    # a partition of every row, standardised on the training part
    assert not set(s.train_index) & set(s.test_index)
    assert len(set(s.train_index) | set(s.test_index)) == train + test
    np.testing.assert_allclose(s.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.y_train.mean(), 0, atol=1e-5)
    assert s.y_train.std() == pytest.approx(1, abs=1e-5)


def test_diabetes_rows_are_sklearns():
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    s = data.get("diabetes", split=5)
    np.testing.assert_allclose(
        s.to_original(s.y_test.astype(float)), bunch.target[s.test_index], rtol=1e-5
    )
    np.testing.assert_allclose(s.x_test * s.x_std + s.x_mean, bunch.data[s.test_index], atol=1e-6)


@pytest.mark.parametrize("name", BUILTIN_REGRESSION)
def test_builtin_regression_is_deterministic(name):
    a, b = data.get(name, split=1), data.get(name, split=1)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.data_hash == b.data_hash
    other = data.get(name, split=2)
    assert set(other.test_index) != set(a.test_index)
    v1 = data.get(name, split=1, validation_fraction=0.2, seed=0)
    v2 = data.get(name, split=1, validation_fraction=0.2, seed=1)
    assert set(v1.val_index) != set(v2.val_index)
    assert set(v1.train_index) | set(v1.val_index) == set(a.train_index)
    np.testing.assert_array_equal(v1.test_index, v2.test_index)


@pytest.mark.parametrize("split", [0, 7, 19])
def test_gap1d_training_rows_avoid_the_gap_and_test_rows_cover_it(split):
    s = data.get("gap1d", split=split)
    assert s.x_train.shape[1] == 1
    x_train = (s.x_train.astype(float) * s.x_std + s.x_mean).ravel()
    x_test = (s.x_test.astype(float) * s.x_std + s.x_mean).ravel()
    assert not np.any(np.abs(x_train) < 1 - 1e-6)
    in_gap = np.abs(x_test) < 1
    assert in_gap.sum() >= 5
    assert x_test[in_gap].min() < -0.5 and x_test[in_gap].max() > 0.5


@pytest.mark.parametrize(
    ("name", "rows", "features", "classes"),
    [
        ("iris", 150, 4, 3),
        ("digits", 1797, 64, 10),
        ("two_moons", 1000, 2, 2),
        ("breast_cancer", 569, 30, 2),
        ("wine_recognition", 178, 13, 3),
    ],
)
def test_classification_shapes_and_stratification(name, rows, features, classes):
    s = data.get(name, split=4)
    assert isinstance(s, data.ClassificationSplit)
    n_test = int(np.ceil(0.2 * rows))
    assert s.x_test.shape == (n_test, features) and s.x_train.shape == (rows - n_test, features)
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int64
    assert s.num_classes == classes == len(s.class_names)
    assert set(np.unique(s.y_train)) == set(range(classes))
    # stratified: each class's share of the test part matches its share of the whole set
    y_all = np.r_[s.y_train, s.y_test]
    for k in range(classes):
        expected = (y_all == k).sum() * n_test / rows
        assert abs((s.y_test == k).sum() - expected) <= 1, k


def test_iris_test_part_has_ten_of_each_class():
    s = data.get("iris", split=0)
    assert np.bincount(s.y_test).tolist() == [10, 10, 10]
    assert np.bincount(s.y_train).tolist() == [40, 40, 40]
    v = data.get("iris", split=0, validation_fraction=0.25)
    assert np.bincount(v.y_val).tolist() == [10, 10, 10]
    assert np.bincount(v.y_train).tolist() == [30, 30, 30]


def test_two_moons_and_digits_specifics():
    moons = data.get("two_moons")
    assert np.bincount(moons.y_test).tolist() == [100, 100]
    digits = data.get("digits")
    assert digits.image_shape == (1, 8, 8)
    assert digits.x_train.reshape(-1, *digits.image_shape).shape == (1437, 1, 8, 8)


@pytest.mark.parametrize("name", ["iris", "digits", "two_moons"])
def test_classification_rows_are_a_partition_of_the_set(name):
    from sklearn import datasets

    if name == "two_moons":
        x, y = datasets.make_moons(n_samples=1000, noise=0.1, random_state=0)
    else:
        bunch = getattr(datasets, f"load_{name}")()
        x, y = bunch.data, bunch.target
    s = data.get(name, split=2, validation_fraction=0.1)
    x_parts = np.vstack([s.x_train, s.x_val, s.x_test]).astype(float) * s.x_std + s.x_mean
    y_parts = np.r_[s.y_train, s.y_val, s.y_test]
    assert len(y_parts) == len(y)
    order_parts = np.lexsort(np.c_[x_parts.round(3), y_parts].T)
    order_all = np.lexsort(np.c_[x.round(3), y].T)
    np.testing.assert_allclose(x_parts[order_parts], x[order_all], atol=1e-3)
    np.testing.assert_array_equal(y_parts[order_parts], y[order_all])


@pytest.mark.parametrize("name", ["iris", "two_moons"])
def test_classification_is_deterministic_and_splits_differ(name):
    a, b = data.get(name, split=3), data.get(name, split=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.data_hash == b.data_hash
    c = data.get(name, split=4)
    assert not np.array_equal(a.x_test, c.x_test)
    # the seed moves the validation rows, never the test rows
    v0 = data.get(name, split=3, validation_fraction=0.2, seed=0)
    v1 = data.get(name, split=3, validation_fraction=0.2, seed=1)
    np.testing.assert_array_equal(v0.test_index, a.test_index)
    np.testing.assert_array_equal(v1.test_index, a.test_index)
    assert set(v0.val_index) != set(v1.val_index)
    assert set(v0.train_index) | set(v0.val_index) == set(a.train_index)
