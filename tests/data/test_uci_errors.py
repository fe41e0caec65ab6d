"""Every way a data request can go wrong gives a DataError that says what and where."""

from __future__ import annotations

import re

import pytest

import uqbench.data as data
from uqbench.data import DataError


def message_of(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    return str(info.value)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_unknown_name_lists_known_names_and_suggests_a_close_one():
    message = message_of(data.get, "bostn")
    assert "'bostn'" in message
    assert re.search(r"Did you mean[^.]*boston", message)
    for known in ("boston", "diabetes", "iris", "two_moons", "yacht", "protein"):
        assert known in message
    assert "Did you mean" not in message_of(data.get, "zzzzzz")
    assert "two_moons" in message_of(data.num_splits, "two_moon")


def test_missing_data_dir_names_the_expected_path_and_download(tmp_path):
    message = message_of(data.get, "boston", data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "uci" / "bostonHousing") in message
    assert "--download" in message


def test_missing_data_dir_from_the_environment_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("UQBENCH_DATA_DIR", str(tmp_path / "env"))
    message = message_of(data.get, "yacht")
    assert str(tmp_path / "env" / "uci" / "yacht") in message
    assert "UQBENCH_DATA_DIR" in message


def test_missing_index_file_is_named(data_dir, folder):
    (folder / "index_test_1.txt").unlink()
    assert "index_test_1.txt" in message_of(data.get, "boston", split=1, data_dir=data_dir)


@pytest.mark.parametrize("split", [3, 20, -1])
def test_split_out_of_range_says_how_many_splits(data_dir, split):
    message = message_of(data.get, "boston", split=split, data_dir=data_dir)
    assert "3 splits" in message and str(split) in message


@pytest.mark.parametrize("name", ["diabetes", "iris", "gap1d"])
def test_builtin_split_out_of_range(name):
    assert "20 splits" in message_of(data.get, name, split=20)


@pytest.mark.parametrize("split", ["0", 1.0, True, None])
def test_split_must_be_an_integer(split):
    assert "split" in message_of(data.get, "diabetes", split=split)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_validation_fraction_outside_zero_one(data_dir, fraction):
    message = message_of(data.get, "boston", data_dir=data_dir, validation_fraction=fraction)
    assert "validation_fraction" in message


def test_validation_fraction_leaving_nothing(data_dir):
    # round(0.01 * 24) = 0 validation rows
    message = message_of(data.get, "boston", data_dir=data_dir, validation_fraction=0.01)
    assert "validation_fraction" in message


def test_ragged_data_txt_names_the_file_and_line(data_dir, folder):
    lines = (folder / "data.txt").read_text().splitlines()
    lines[6] = " ".join(lines[6].split()[:4])  # line 7 loses a column
    (folder / "data.txt").write_text("\n".join(lines) + "\n")
    message = message_of(data.get, "boston", data_dir=data_dir)
    assert str(folder / "data.txt") in message
    assert "line 7" in message


def test_ragged_line_number_counts_blank_lines(data_dir, folder):
    lines = (folder / "data.txt").read_text().splitlines()
    lines[6] = lines[6] + " 1.0"  # file line 7 gains a column ...
    lines.insert(2, "")  # ... and becomes line 8 after a blank line 3
    (folder / "data.txt").write_text("\n".join(lines) + "\n")
    message = message_of(data.get, "boston", data_dir=data_dir)
    assert "line 8" in message


def test_not_a_number_names_the_line(data_dir, folder):
    lines = (folder / "data.txt").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split()[1], "abc", 1)
    (folder / "data.txt").write_text("\n".join(lines) + "\n")
    message = message_of(data.get, "boston", data_dir=data_dir)
    assert "line 4" in message and "abc" in message


def test_empty_data_txt(data_dir, folder):
    (folder / "data.txt").write_text("")
    assert "empty" in message_of(data.get, "boston", data_dir=data_dir)


def test_index_out_of_range_names_the_file(data_dir, folder):
    (folder / "index_test_0.txt").write_text("0\n5\n30\n")  # data.txt has 30 rows: 0..29
    message = message_of(data.get, "boston", data_dir=data_dir)
    assert "index_test_0.txt" in message and "30" in message


def test_feature_column_out_of_range(data_dir, folder):
    (folder / "index_features.txt").write_text("0\n1\n7\n")
    assert "index_features.txt" in message_of(data.get, "boston", data_dir=data_dir)


def test_train_and_test_overlap(data_dir, folder):
    train = (folder / "index_train_0.txt").read_text()
    (folder / "index_train_0.txt").write_text(train + "25\n")  # 25 is a test row of split 0
    assert "25" in message_of(data.get, "boston", data_dir=data_dir)


def test_a_path_that_is_not_a_folder(tmp_path):
    message = message_of(data.get, str(tmp_path / "no" / "such" / "folder"))
    assert "not a folder" in message


def test_a_folder_missing_its_files(tmp_path):
    (tmp_path / "empty-set").mkdir()
    message = message_of(data.get, str(tmp_path / "empty-set"))
    assert "data.txt" in message


def test_names_with_a_bad_kind():
    with pytest.raises(ValueError, match="regression"):
        data.names("images")
