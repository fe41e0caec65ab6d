"""The registry's names and descriptions, details of the built-in sets (gap1d's probes, digits'
scale, stratified carve-outs), and the nine real UCI sets where ../shared/data is present."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from uqbench import data
from uqbench.data import ClassificationSplit, DataError, RegressionSplit, synthetic, uci

# --- registry ---------------------------------------------------------------------------------


def test_kinds_partition_the_names():
    regression, classification = data.names("regression"), data.names("classification")
    assert not set(regression) & set(classification)
    kinds = regression + classification + data.names("image") + data.names("text")
    assert sorted(kinds) == data.names()
    assert "wine" in regression and "wine_recognition" in classification
    with pytest.raises(DataError, match="regression, classification"):
        data.names("images")


def test_descriptions_say_size_and_source():
    described = {name: (kind, text) for name, kind, text in data.describe()}
    kind, text = described["boston"]
    assert kind == "regression"
    assert "506 x 13" in text and "20 standard splits" in text
    assert "<data_dir>/uci/bostonHousing" in text
    assert "5 standard splits" in described["protein"][1]
    assert "built in" in described["gap1d"][1] and "built in" in described["iris"][1]
    assert all("\n" not in text for _, text in described.values())


def test_num_splits_of_built_in_sets():
    assert {data.num_splits(n) for n in ("diabetes", "gap1d", "iris", "digits")} == {20}


def test_names_are_case_insensitive_and_may_be_paths():
    assert data.get("GAP1D").name == "gap1d"
    with pytest.raises(DataError, match="wine-quality-red"):
        data.get("Wine-Quality-Red", data_dir=Path("/nonexistent-uqbench"))


def test_unknown_name_suggests_a_folder_name_too():
    with pytest.raises(DataError, match=r"Did you mean 'power-plant'"):
        data.get("power_plant")


# --- built-in regression ------------------------------------------------------------------------


@pytest.mark.parametrize("split", [0, 19])
def test_gap1d_layout(split):
    s = data.get("gap1d", split=split)
    assert isinstance(s, RegressionSplit)
    assert s.x_train.shape == (360, 1) and s.x_test.shape == (140, 1)
    x_train = s.x_train[:, 0] * s.x_std[0] + s.x_mean[0]
    x_test = s.x_test[:, 0] * s.x_std[0] + s.x_mean[0]
    assert (np.abs(x_train) >= 1 - 1e-5).all() and (np.abs(x_train) <= 4 + 1e-5).all()
    # the test part covers [-5, 5]: the gap, the observed range and beyond it
    assert x_test.min() == pytest.approx(-5, abs=1e-5) and x_test.max() == pytest.approx(5)
    assert ((np.abs(x_test) < 1).sum(), (np.abs(x_test) > 4).sum()) == (20, 20)
    x, y, probe = synthetic.gap1d()
    np.testing.assert_array_equal(np.flatnonzero(probe), np.arange(400, 500))
    assert set(np.flatnonzero(probe)) <= set(s.test_index)
    residual = (y - synthetic.gap1d_mean(x[:, 0])) / synthetic.gap1d_noise_std(x[:, 0])
    assert abs(residual.mean()) < 0.15 and residual.std() == pytest.approx(1, abs=0.1)
    assert s.tau_values == (1.0, 2.0, 4.0) and s.dropout_rates == (0.005, 0.01, 0.05, 0.1)
    assert (s.n_hidden, s.n_epochs, s.num_splits) == (50, 40, 20)


def test_built_in_hash_covers_the_split():
    a, b = data.get("friedman1", split=0), data.get("friedman1", split=1)
    assert a.data_hash != b.data_hash and len(a.data_hash) == 64
    assert data.get("friedman1", split=0, validation_fraction=0.3).data_hash == a.data_hash


def test_built_in_arrays_cannot_be_changed_by_accident():
    x, _y, _ = synthetic.gap1d()
    with pytest.raises(ValueError, match="read-only"):
        x[0, 0] = 0.0
    s = data.get("gap1d")
    s.x_train[0, 0] = 123.0  # the returned arrays are the caller's own
    assert data.get("gap1d").x_train[0, 0] != 123.0


# --- built-in classification ------------------------------------------------------------------


def test_digits_are_scaled_images():
    s = data.get("digits", split=1, validation_fraction=0.1)
    assert isinstance(s, ClassificationSplit) and s.image_shape == (1, 8, 8)
    assert s.x_train.min() == 0.0 and s.x_train.max() == 1.0
    assert (s.x_mean == 0).all() and (s.x_std == 16).all()
    assert s.class_names == tuple(str(d) for d in range(10))
    x, y = s.tensors("val")
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and len(x) == len(s.val_index)


def test_classification_indices_partition_the_rows():
    s = data.get("wine_recognition", split=5, validation_fraction=0.2)
    parts = [s.train_index, s.val_index, s.test_index]
    assert all(p.dtype == np.int64 and (np.diff(p) > 0).all() for p in parts)
    assert sorted(np.concatenate(parts).tolist()) == list(range(178))
    assert len(s.val_index) == round(0.2 * (178 - 36))
    assert s.class_names == ("class_0", "class_1", "class_2")


def test_tabular_classification_is_standardised_on_the_training_rows():
    from sklearn.datasets import load_breast_cancer

    s = data.get("breast_cancer", split=2, validation_fraction=0.25)
    x = load_breast_cancer().data[s.train_index]
    np.testing.assert_allclose(s.x_mean, x.mean(axis=0))
    np.testing.assert_allclose(s.x_std, x.std(axis=0))
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-5)


def test_too_small_a_stratified_validation_set_is_a_clear_error():
    with pytest.raises(DataError, match="stratified validation set of 2 rows"):
        data.get("iris", validation_fraction=0.02)


@pytest.mark.parametrize("name", ["iris", "gap1d"])
def test_built_in_split_range(name):
    assert data.get(name, split=19).split == 19
    with pytest.raises(DataError, match="has 20 splits, numbered 0 to 19"):
        data.get(name, split=20)


# --- the real UCI files -------------------------------------------------------------------------

# (train, test, features) of split 0, from the published index files
REAL_SHAPES = {
    "boston": (455, 51, 13),
    "concrete": (927, 103, 8),
    "energy": (691, 77, 8),
    "kin8nm": (7373, 819, 8),
    "naval": (10741, 1193, 16),
    "power": (8611, 957, 4),
    "protein": (41157, 4573, 9),
    "wine": (1439, 160, 11),
    "yacht": (277, 31, 6),
}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(REAL_SHAPES))
def test_real_set_shapes_metadata_and_hash(real_data_dir, name):
    train, test, features = REAL_SHAPES[name]
    s = data.get(name, split=0, data_dir=real_data_dir, validation_fraction=0.2)
    assert len(s.train_index) + len(s.val_index) == train
    assert s.x_test.shape == (test, features)
    for x in (s.x_train, s.x_val, s.x_test):
        assert np.isfinite(x).all()
    assert s.num_splits == (5 if name == "protein" else 20)
    assert s.n_hidden == (100 if name == "protein" else 50)
    assert s.dropout_rates == (0.005, 0.01, 0.05, 0.1) and len(s.tau_values) == 3
    folder = real_data_dir / "uci" / uci.FOLDERS[name]
    files = ["data.txt", "index_features.txt", "index_target.txt"]
    files += ["index_train_0.txt", "index_test_0.txt"]
    assert (
        s.data_hash
        == hashlib.sha256(b"".join((folder / f).read_bytes() for f in files)).hexdigest()
    )
    last = data.get(uci.FOLDERS[name], split=s.num_splits - 1, data_dir=real_data_dir)
    assert last.name == name and len(last.train_index) + len(last.test_index) == train + test


@pytest.mark.shared_data
def test_real_naval_constant_columns_are_exact_zeros(real_data_dir):
    s = data.get("naval", split=3, data_dir=real_data_dir)
    constant = np.flatnonzero(s.x_std == 1.0)
    assert constant.tolist() == [8, 11]
    assert (s.x_train[:, constant] == 0).all() and (s.x_test[:, constant] == 0).all()
    assert np.isfinite(s.x_train).all() and np.abs(s.x_train).max() < 20
