"""A user's CSV file as a classification or regression table (``--dataset=path.csv
--target=COLUMN``).

The first line names the columns. A column whose every cell is a number is numeric; one whose
cells are all non-numbers is categorical: as a feature it is one-hot encoded (one 0/1 feature
per value, values sorted), refused when it has more than :data:`MAX_CATEGORIES` values (an
identifier, or free text). Refused with a message naming the column and rows: an empty cell or
``NA``/``NaN`` (a missing value), a column mixing numbers and text, a missing target column, a
target with a single value (or class). The task is inferred from the target: text, or whole
numbers with at most :data:`MAX_INTEGER_CLASSES` distinct values, is classification; other
numbers are regression; ``task`` overrides it.

Splits: like the built-in sets, split ``i`` of :data:`NUM_SPLITS` holds out
:data:`TEST_FRACTION` of the rows as the test part (stratified for classification), drawn with
a random state derived from ``i`` alone; ``validation_fraction`` of the training part is then
held out by a random state derived from ``(seed, i)``.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uqbench.data.paths import DataError
from uqbench.data.preprocessing import TASKS

MAX_CATEGORIES = 50
MAX_INTEGER_CLASSES = 20
NUM_SPLITS = 20
TEST_FRACTION = 0.2
MISSING = {"", "na", "nan", "n/a", "null", "none", "?"}


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read and checked: raw feature columns (numbers as float64, categories as
    strings), the target, the task and the file's hash."""

    name: str
    columns: tuple[str, ...]
    values: tuple[np.ndarray, ...]
    categories: dict[str, tuple[str, ...]]
    target: np.ndarray
    task: str
    class_names: tuple[str, ...]
    data_hash: str

    def encoded(self) -> np.ndarray:
        """The features, categorical columns one-hot encoded, as float64 ``(N, D)``."""
        parts = []
        for name, column in zip(self.columns, self.values, strict=True):
            if name in self.categories:
                parts.extend((column == v).astype(np.float64) for v in self.categories[name])
            else:
                parts.append(column)
        return np.stack(parts, axis=1)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rows_list(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:5])
    return shown + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")


def _column(path: Path, name: str, cells: list[str]) -> tuple[np.ndarray, bool]:
    """A column as float64 numbers or strings, and whether it is numeric; clear errors for
    missing values and mixed types (rows counted as in the file, the header being line 1)."""
    missing = [i + 2 for i, c in enumerate(cells) if c.strip().lower() in MISSING]
    if missing:
        raise DataError(
            f"{path}: column {name!r} has missing values (empty, NA or NaN) on line(s) "
            f"{_rows_list(missing)}: fill or drop those rows first"
        )
    numbers = [_number(c) for c in cells]
    numeric = [i for i, v in enumerate(numbers) if v is not None]
    if len(numeric) == len(cells):
        return np.array(numbers, dtype=np.float64), True
    if numeric:
        text = [i + 2 for i, v in enumerate(numbers) if v is None]
        raise DataError(
            f"{path}: column {name!r} mixes numbers (e.g. line {numeric[0] + 2}: "
            f"{cells[numeric[0]]!r}) and text (e.g. line {text[0]}: {cells[text[0] - 2]!r}); a "
            "column must be all numbers or all categories"
        )
    return np.array([c.strip() for c in cells], dtype=object), False


def read_csv(path: str | Path, target: str | None, task: str | None = None) -> CsvTable:
    """Read and check a CSV file (see the module docstring); every problem is a DataError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    if not target:
        raise DataError(f"{path}: a CSV data set needs --target=COLUMN (the column to predict)")
    if task is not None and task not in TASKS:
        raise DataError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None
    lines = list(csv.reader(text.splitlines()))
    lines = [line for line in lines if any(cell.strip() for cell in line)]
    if len(lines) < 2:
        raise DataError(f"{path}: needs a header line and at least one row")
    header = [h.strip() for h in lines[0]]
    if len(set(header)) != len(header) or not all(header):
        raise DataError(f"{path}: the header must name every column once, got {header}")
    if target not in header:
        raise DataError(
            f"{path}: no column {target!r} to predict (--target); columns: {', '.join(header)}"
        )
    short = [i + 2 for i, line in enumerate(lines[1:]) if len(line) != len(header)]
    if short:
        raise DataError(
            f"{path}: line(s) {_rows_list(short)} do not have {len(header)} cells like the header"
        )
    cells = {name: [line[i] for line in lines[1:]] for i, name in enumerate(header)}
    columns, values, categories = [], [], {}
    for name in header:
        if name == target:
            continue
        column, numeric = _column(path, name, cells[name])
        if not numeric:
            levels = tuple(sorted(set(column)))
            if len(levels) > MAX_CATEGORIES:
                raise DataError(
                    f"{path}: categorical column {name!r} has {len(levels)} distinct values "
                    f"(more than {MAX_CATEGORIES}): it looks like an identifier or free text; "
                    "drop it or encode it as numbers"
                )
            categories[name] = levels
        columns.append(name)
        values.append(column)
    if not columns:
        raise DataError(f"{path}: no feature columns besides the target {target!r}")
    y, numeric = _column(path, target, cells[target])
    distinct = np.unique(y)
    if len(distinct) < 2:
        raise DataError(
            f"{path}: the target {target!r} has a single value ({distinct[0]!r}): there is "
            "nothing to predict"
        )
    if task is None:
        whole = numeric and bool(np.all(y == np.round(y)))
        small = len(distinct) <= MAX_INTEGER_CLASSES
        task = "classification" if not numeric or (whole and small) else "regression"
    if task == "regression" and not numeric:
        raise DataError(f"{path}: --task=regression needs a numeric target; {target!r} is text")
    if task == "classification":
        names = tuple(str(v) if not numeric else _label(v) for v in distinct)
        target_values = np.searchsorted(distinct, y).astype(np.int64)
    else:
        names, target_values = (), y
    return CsvTable(
        name=path.stem,
        columns=tuple(columns),
        values=tuple(values),
        categories=categories,
        target=target_values,
        task=task,
        class_names=names,
        data_hash=hashlib.sha256(raw).hexdigest(),
    )


def _label(value: float) -> str:
    return str(int(value)) if value == round(value) else str(value)


def split_rows(
    table: CsvTable, split: int, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted (train, validation, test) rows of split ``split`` (see the module docstring)."""
    from sklearn.model_selection import train_test_split

    from uqbench.data.splits import validation_size

    if isinstance(split, bool) or not 0 <= split < NUM_SPLITS:
        raise DataError(f"a CSV table has {NUM_SPLITS} splits, 0 to {NUM_SPLITS - 1}; got {split}")
    rows = np.arange(len(table.target))
    stratify = table.target if table.task == "classification" else None

    def state(*key: int) -> int:
        return int(np.random.default_rng(list(key)).integers(2**31 - 1))

    try:
        train, test = train_test_split(
            rows, test_size=TEST_FRACTION, stratify=stratify, random_state=state(0, split)
        )
        count = validation_size(len(train), validation_fraction)
        val = np.array([], dtype=np.int64)
        if count:
            strata = table.target[train] if stratify is not None else None
            train, val = train_test_split(
                train, test_size=count, stratify=strata, random_state=state(seed, split)
            )
    except ValueError as err:
        raise DataError(
            f"{table.name}: cannot split {len(rows)} rows into stratified training, validation "
            f"and test parts ({err}); every class needs a few rows"
        ) from None
    return tuple(np.sort(i).astype(np.int64) for i in (train, val, test))  # type: ignore[return-value]
