"""Searches on tables: CSV files (task inference, one-hot encoding, bad input), the built-in and
UCI regression sets (metrics in the target's units), and spaces that do not fit the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from uqbench.cli import main
from uqbench.data.csv_table import read_csv, split_rows
from uqbench.data.paths import DataError
from uqbench.search import blocks, tables
from uqbench.search.driver import SearchRequest, run_search
from uqbench.search.space import load_space

pytestmark = pytest.mark.usefixtures("one_thread")


def write(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_columns_are_typed_one_hot_encoded_and_the_task_inferred(tmp_path):
    path = write(tmp_path, "a,colour,y\n1.5,red,3\n2,blue,1\n-1,red,3\n0,green,1\n")
    table = read_csv(path, "y")
    assert table.task == "classification" and table.class_names == ("1", "3")
    np.testing.assert_array_equal(table.target, [1, 0, 1, 0])
    assert table.categories == {"colour": ("blue", "green", "red")}
    expected = [[1.5, 0, 0, 1], [2, 1, 0, 0], [-1, 0, 0, 1], [0, 0, 1, 0]]
    np.testing.assert_array_equal(table.encoded(), expected)
    assert read_csv(path, "y", task="regression").task == "regression"
    floats = write(tmp_path, "a,y\n1,0.5\n2,1.25\n3,2\n", "f.csv")
    assert read_csv(floats, "y").task == "regression"
    text = write(tmp_path, "a,y\n1,cat\n2,dog\n", "c.csv")
    assert read_csv(text, "y").class_names == ("cat", "dog")


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("a,b\n1,2\n3,4\n", "c", "no column 'c' to predict.*columns: a, b"),
        ("a,y\n1,0\nx,1\n2,0\n", "y", "column 'a' mixes numbers .* and text"),
        ("a,y\n1,0\n,1\n2,0\n", "y", "column 'a' has missing values .* line.* 3"),
        ("a,y\n1,0\nNaN,1\n", "y", "missing values"),
        ("a,y\n1,2\n3,2\n", "y", "single value"),
        ("a,y\n1,dog\n2,dog\n", "y", "single value"),
        ("a,y\n1,cat\n2,dog\n", "y", None),
        ("a,y\n1,cat\n", "", "needs --target"),
        ("a,y\n1\n2,dog\n", "y", "do not have 2 cells"),
    ],
)
def test_bad_csv_files_are_refused_with_the_column_and_line(tmp_path, text, target, message):
    path = write(tmp_path, text)
    if message is None:
        read_csv(path, target)
        return
    with pytest.raises(DataError, match=message):
        read_csv(path, target)
    with pytest.raises(DataError, match="needs a numeric target"):
        read_csv(write(tmp_path, "a,y\n1,cat\n2,dog\n", "r.csv"), "y", task="regression")


def test_a_categorical_column_with_too_many_values_is_refused(tmp_path):
    rows = "\n".join(f"id{i},{i % 2}" for i in range(60))
    with pytest.raises(DataError, match="'name' has 60 distinct values"):
        read_csv(write(tmp_path, "name,y\n" + rows + "\n"), "y")


def test_csv_splits_are_stratified_disjoint_and_fixed_by_the_split(tmp_path):
    rng = np.random.default_rng(0)
    rows = "\n".join(f"{v:.3f},{int(v > 0)}" for v in rng.normal(size=100))
    table = read_csv(write(tmp_path, "a,y\n" + rows + "\n"), "y")
    train, val, test = split_rows(table, 3, 0.25, seed=0)
    assert len(test) == 20 and len(val) == 20 and len(train) == 60
    assert not set(train) & set(val) | set(train) & set(test) | set(val) & set(test)
    assert abs(table.target[test].mean() - table.target.mean()) <= 0.05
    other_seed = split_rows(table, 3, 0.25, seed=1)
    np.testing.assert_array_equal(other_seed[2], test)  # the test part depends on split only


def test_which_data_sets_are_tables_and_their_default_space():
    assert tables.is_table("iris") and tables.is_table("boston") and tables.is_table("x.csv")
    assert not tables.is_table("digits") and not tables.is_table("cifar10")
    space = load_space(None, table=True)
    assert space.blocks == blocks.DEFAULT_TABLE_BLOCKS
    assert all(blocks.get_block(b).kind == "fc" for b in space.blocks)


def refused(tmp_path, capsys, *flags, spec: str | None = None) -> str:
    out = tmp_path / "out"
    args = ["search", f"--output_dir={out}", "--trials=1", "--quiet", *flags]
    if spec is not None:
        args.append(f"--spec={write(tmp_path, spec, 'space.toml')}")
    assert main(args) == 2
    assert not out.exists()
    return capsys.readouterr().err


def test_bad_table_searches_are_refused_before_anything_trains(tmp_path, capsys):
    csv = write(tmp_path, "a,y\n" + "\n".join(f"{i},{i % 2}" for i in range(40)) + "\n")
    err = refused(tmp_path, capsys, f"--dataset={csv}", "--target=z")
    assert "no column 'z'" in err
    err = refused(tmp_path, capsys, "--dataset=iris", spec='blocks = ["conv3x3_16", "fc_64"]\n')
    assert "blocks conv3x3_16 need images" in err and "fc_64" in err and "layer_norm" in err
    err = refused(tmp_path, capsys, "--dataset=iris", spec='[objective]\nmetric = "rmse"\n')
    assert "rmse is a regression metric" in err
    err = refused(tmp_path, capsys, "--dataset=diabetes", spec='[objective]\nmetric = "ece"\n')
    assert "ece is a classification metric" in err and "nll, rmse, crps" in err
    err = refused(tmp_path, capsys, "--dataset=iris", spec='[objective]\nmetric = "bogus"\n')
    assert "metric 'bogus' is unknown" in err
    ood = '[objective]\nmetric = "ood_auroc"\nood = "uniform_noise"\n'
    assert "OOD objectives score image searches" in refused(
        tmp_path, capsys, "--dataset=iris", spec=ood
    )
    assert "needs a validation OOD set" in refused(
        tmp_path, capsys, "--dataset=digits", spec='[objective]\nmetric = "ood_auroc"\n'
    )
    assert "--target is for" in refused(tmp_path, capsys, "--dataset=iris", "--target=y")
    assert "--split must be 0" in refused(tmp_path, capsys, "--dataset=digits", "--split=2")
    assert "20 splits" in refused(tmp_path, capsys, "--dataset=iris", "--split=25")


SPEC = """
blocks = ["fc_32", "fc_residual_128", "batchensemble_fc_128", "batch_norm"]
max_depth = 2
depth_every = 1
[training]
epochs = 2
batch_size = 64
[ensemble]
enabled = false
"""


def test_a_uci_search_reports_metrics_in_the_targets_units(tmp_path, real_data_dir):
    (tmp_path / "space.toml").write_text(SPEC)
    out = tmp_path / "search"
    request = SearchRequest(
        dataset="boston",
        output_dir=str(out),
        trials=2,
        split=1,
        spec=str(tmp_path / "space.toml"),
        data_dir=str(real_data_dir),
        quiet=True,
    )
    summary = run_search(request)
    assert summary["status"] == "complete"
    trial = json.loads((out / "trials" / "0002" / "summary.json").read_text())
    assert trial["split"] == 1 and trial["task"] == "regression"
    saved = np.load(out / "trials" / "0002" / "predictions" / "test.npz")
    folder = real_data_dir / "uci" / "bostonHousing"
    matrix = np.loadtxt(folder / "data.txt")
    target = int(np.loadtxt(folder / "index_target.txt"))
    rows = np.sort(np.loadtxt(folder / "index_test_1.txt").astype(int))
    np.testing.assert_allclose(saved["y"], matrix[rows, target], rtol=1e-6)
    rmse = np.sqrt(np.mean((saved["mean"].astype(np.float64) - matrix[rows, target]) ** 2))
    assert trial["metrics"]["test/rmse"] == pytest.approx(rmse, rel=1e-5)
    assert 2 < trial["metrics"]["test/rmse"] < 30  # dollars in thousands, not standardised
