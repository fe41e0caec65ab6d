"""The real UCI files (skipped where they are absent): every set loads, split counts, boston's
published split sizes, naval's constant columns."""

from __future__ import annotations

import numpy as np
import pytest

import uqbench.data as data
from uqbench.data import uci

pytestmark = pytest.mark.shared_data


@pytest.mark.parametrize("name", sorted(uci.FOLDERS))
def test_every_uci_set_loads_split_zero(real_data_dir, name):
    s = data.get(name, split=0, data_dir=real_data_dir)
    assert s.name == name
    assert s.x_train.shape[0] == s.y_train.shape[0] > 0
    assert s.x_test.shape[1] == s.x_train.shape[1]
    for array in (s.x_train, s.y_train, s.x_test, s.y_test):
        assert np.isfinite(array).all()
    assert not set(s.train_index) & set(s.test_index)
    assert s.num_splits == (5 if name == "protein" else 20)


@pytest.mark.parametrize("name", sorted(uci.FOLDERS))
def test_split_counts(real_data_dir, name):
    assert data.num_splits(name, data_dir=real_data_dir) == (5 if name == "protein" else 20)


def test_boston_split_zero_sizes(real_data_dir):
    s = data.get("boston", split=0, data_dir=real_data_dir)
    assert s.x_train.shape == (455, 13)
    assert s.x_test.shape == (51, 13)
    assert s.y_test.shape == (51,)
    raw = np.loadtxt(real_data_dir / "uci" / "bostonHousing" / "data.txt")
    test_rows = np.loadtxt(real_data_dir / "uci" / "bostonHousing" / "index_test_0.txt", dtype=int)
    assert sorted(s.test_index.tolist()) == sorted(test_rows.tolist())
    np.testing.assert_allclose(
        np.sort(s.to_original(s.y_test.astype(float))), np.sort(raw[test_rows, 13]), rtol=1e-5
    )


def test_naval_constant_columns_standardise_to_finite_zeros(real_data_dir):
    s = data.get("naval", split=0, data_dir=real_data_dir)
    raw = np.loadtxt(real_data_dir / "uci" / "naval-propulsion-plant" / "data.txt")
    features = np.loadtxt(
        real_data_dir / "uci" / "naval-propulsion-plant" / "index_features.txt", dtype=int
    )
    x = raw[:, features]
    constant = np.flatnonzero(x.max(0) == x.min(0))
    assert constant.size >= 2
    for part in (s.x_train, s.x_test):
        assert np.isfinite(part).all()
        np.testing.assert_array_equal(part[:, constant], 0.0)
