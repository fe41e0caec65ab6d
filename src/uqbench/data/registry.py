"""One registry of data sets: ``get(name, split=...)``, ``names()``, ``describe()``,
``num_splits()``.

A name is one of :func:`names` (any case), a UCI folder name (``bostonHousing``, ...), or a path
(a string containing a path separator, an existing directory or an existing archive): an
image-folder directory or archive (``[<root>/]{train,test}/<class>/<image>``, see
``image_folder``) gives an image set, any other folder is read in the UCI layout. Registered
names win over a directory of the same name in the working directory.

Image sets (kind ``image``: CIFAR-10/100, MNIST, Fashion-MNIST, SVHN, image folders) have one
official train/test split, so ``split`` must be 0; they load as an ``ImageDataset`` of uint8
tensors (``images.load_images``, also ``uqbench.data.get_images``, which gives ``digits`` as
8x8 images too).

Built-in regression sets (no files needed) follow the UCI protocol: 20 seeded random 90/10
train/test splits, 50 hidden units, 40 epochs, dropout rates (0.005, 0.01, 0.05, 0.1), and a
grid of noise precisions ``tau`` (in original target units) around 1 / the noise variance:

- ``diabetes``: the residual std of a linear fit is about 54, so tau in (1.5e-4, 3e-4, 6e-4);
- ``friedman1``: noise std 1, so tau in (0.25, 0.5, 1.0);
- ``gap1d``: mean noise variance about 0.39, so tau in (1, 2, 4) (see ``synthetic``).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from uqbench.data import image_folder, synthetic, tabular, uci
from uqbench.data.image_formats import ALIASES, IMAGE_SETS
from uqbench.data.paths import DataError
from uqbench.data.splits import (
    RegressionSplit,
    array_hash,
    check_fraction,
    random_splits,
    standardised_split,
)
from uqbench.data.tabular import ClassificationSplit
from uqbench.data.text_paths import REGISTERED as TEXT_SETS
from uqbench.data.text_paths import is_text_file

if TYPE_CHECKING:
    from uqbench.data.images import ImageDataset
    from uqbench.data.text import TextDataset

KINDS = ("regression", "classification", "image", "text")
BUILTIN_SPLITS = 20
BUILTIN_DROPOUT_RATES = (0.005, 0.01, 0.05, 0.1)

Loader = Callable[..., "RegressionSplit | ClassificationSplit | ImageDataset | TextDataset"]


@dataclass(frozen=True)
class Entry:
    """A registered data set: its kind, a one-line description, ``load(split, data_dir,
    validation_fraction, seed, download)`` and ``num_splits(data_dir)``."""

    kind: str
    description: str
    load: Loader
    num_splits: Callable[[str | os.PathLike | None], int]


def _check_split(name: str, split: int, total: int) -> None:
    if not 0 <= split < total:
        raise DataError(
            f"{name} has {total} splits, numbered 0 to {total - 1}; split={split} does not exist"
        )


def _builtin_regression(
    name: str,
    arrays: Callable[[], tuple[np.ndarray, ...]],
    splits: Callable[[], list[tuple[np.ndarray, np.ndarray]]],
    taus: tuple[float, ...],
) -> Loader:
    def load(split, data_dir, validation_fraction, seed, download) -> RegressionSplit:
        _check_split(name, split, BUILTIN_SPLITS)
        x, y = arrays()[:2]
        train, test = splits()[split]
        return standardised_split(
            name,
            x,
            y,
            train,
            test,
            split=split,
            num_splits=BUILTIN_SPLITS,
            validation_fraction=validation_fraction,
            seed=seed,
            data_hash=array_hash(x, y, train, test),
            n_hidden=50,
            n_epochs=40,
            dropout_rates=BUILTIN_DROPOUT_RATES,
            tau_values=taus,
        )

    return load


def _builtin_classification(name: str) -> Loader:
    def load(split, data_dir, validation_fraction, seed, download) -> ClassificationSplit:
        _check_split(name, split, BUILTIN_SPLITS)
        return tabular.classification_split(name, split, BUILTIN_SPLITS, validation_fraction, seed)

    return load


def _uci_entry(name: str, description: str) -> Entry:
    def load(split, data_dir, validation_fraction, seed, download) -> RegressionSplit:
        return uci.load(name, split, data_dir, validation_fraction, seed, download)

    return Entry("regression", description, load, lambda data_dir: uci.num_splits(name, data_dir))


def _fixed(count: int) -> Callable[[str | os.PathLike | None], int]:
    return lambda data_dir: count


def _image_entry(name_or_path: str, description: str) -> Entry:
    """An image set (registered name or image-folder path): one split, numbered 0."""

    def load(split, data_dir, validation_fraction, seed, download) -> ImageDataset:
        from uqbench.data.images import load_images

        if split != 0:
            raise DataError(
                f"{name_or_path} has one official train/test split: split must be 0, got {split}"
            )
        return load_images(
            name_or_path,
            data_dir=data_dir,
            validation_fraction=validation_fraction,
            seed=seed,
            download=download,
        )

    return Entry("image", description, load, _fixed(1))


def _text_entry(name_or_path: str, description: str) -> Entry:
    """A text set (``clinc150`` or a JSON / CSV file): one split, numbered 0."""

    def load(split, data_dir, validation_fraction, seed, download) -> TextDataset:
        from uqbench.data.text import load_text

        if split != 0:
            raise DataError(
                f"{name_or_path} has one train/test split: split must be 0, got {split}"
            )
        return load_text(
            name_or_path,
            data_dir=data_dir,
            validation_fraction=validation_fraction or 0.1,
            seed=seed,
        )

    return Entry("text", description, load, _fixed(1))


REGISTRY: dict[str, Entry] = {
    short: _uci_entry(
        short,
        f"UCI {uci.DESCRIPTIONS[short]}, {uci.SPLITS[short]} standard splits "
        f"(needs <data_dir>/uci/{folder}; --download fetches it)",
    )
    for short, folder in uci.FOLDERS.items()
}
REGISTRY["diabetes"] = Entry(
    "regression",
    "scikit-learn diabetes progression, 442 x 10, 20 random 90/10 splits (built in)",
    _builtin_regression(
        "diabetes",
        tabular.diabetes,
        lambda: random_splits(442, BUILTIN_SPLITS, 0.1, seed=0),
        (1.5e-4, 3e-4, 6e-4),
    ),
    _fixed(BUILTIN_SPLITS),
)
REGISTRY["friedman1"] = Entry(
    "regression",
    "Friedman #1 synthetic (scikit-learn, seed 0), 1,000 x 10, noise std 1, "
    "20 random 90/10 splits (built in)",
    _builtin_regression(
        "friedman1",
        tabular.friedman1,
        lambda: random_splits(1000, BUILTIN_SPLITS, 0.1, seed=0),
        (0.25, 0.5, 1.0),
    ),
    _fixed(BUILTIN_SPLITS),
)
REGISTRY["gap1d"] = Entry(
    "regression",
    "synthetic 1-D y = x sin x + heteroscedastic noise, train on [-4,-1]U[1,4] (360), "
    "test 40 + 100 probes over [-5,5] incl. the gap, 20 splits (built in)",
    _builtin_regression(
        "gap1d",
        synthetic.gap1d,
        lambda: synthetic.gap1d_splits(BUILTIN_SPLITS),
        synthetic.GAP1D_TAUS,
    ),
    _fixed(BUILTIN_SPLITS),
)
for _name, _text in {
    "iris": "scikit-learn iris, 150 x 4, 3 classes",
    "breast_cancer": "scikit-learn breast cancer Wisconsin, 569 x 30, 2 classes",
    "wine_recognition": "scikit-learn wine recognition (not UCI wine), 178 x 13, 3 classes",
    "digits": "scikit-learn 8x8 digits, 1,797 x 64 (image_shape 1x8x8), 10 classes",
    "two_moons": "synthetic two moons (scikit-learn, noise 0.1, seed 0), 1,000 x 2, 2 classes",
}.items():
    REGISTRY[_name] = Entry(
        "classification",
        f"{_text}, 20 stratified 80/20 splits (built in)",
        _builtin_classification(_name),
        _fixed(BUILTIN_SPLITS),
    )


REGISTRY["clinc150"] = _text_entry("clinc150", TEXT_SETS["clinc150"][1])

for _name, _info in IMAGE_SETS.items():
    if _name not in REGISTRY:  # digits stays tabular here; get_images gives it as images
        REGISTRY[_name] = _image_entry(_name, _info.description)


def names(kind: str | None = None) -> list[str]:
    """Registered data set names (sorted), optionally only the ``regression``,
    ``classification`` or ``image`` ones."""
    if kind is not None and kind not in KINDS:
        raise DataError(f"kind must be one of {', '.join(KINDS)} or None, got {kind!r}")
    return sorted(n for n, e in REGISTRY.items() if kind is None or e.kind == kind)


def describe() -> list[tuple[str, str, str]]:
    """``(name, kind, one-line description)`` of every registered data set, sorted by name."""
    return [(n, REGISTRY[n].kind, REGISTRY[n].description) for n in names()]


def _looks_like_path(name: str) -> bool:
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    path = Path(name).expanduser()
    return (
        any(s in name for s in separators)
        or path.is_dir()
        or (path.is_file() and (image_folder.is_archive(path) or is_text_file(path)))
    )


def _resolve(name: str | os.PathLike) -> tuple[str, Entry]:
    """``(key, entry)`` for a registered name, a UCI folder name, an image-folder path or a
    folder path in the UCI layout."""
    if not isinstance(name, str | os.PathLike):
        raise DataError(f"a data set name must be a string or a path, got {name!r}")
    name = os.fspath(name)
    short = uci.canonical(name) or ALIASES.get(name.lower(), name.lower())
    if short in REGISTRY:
        return short, REGISTRY[short]
    if name and _looks_like_path(name):
        path = Path(name).expanduser()
        if is_text_file(path):
            return name, _text_entry(name, f"a text set: {path}")
        if image_folder.is_image_folder(path):
            return name, _image_entry(name, f"an image-folder tree: {path}")
        if not path.is_dir():
            raise DataError(
                f"data set {name!r} looks like a path, but {path.resolve()} is not a folder or "
                "an image archive; give a folder in the UCI layout (data.txt, "
                "index_features.txt, index_target.txt, index_train_<i>.txt, "
                "index_test_<i>.txt), an image-folder directory or archive "
                f"({image_folder.LAYOUT}), a text set (.json in CLINC150's layout, or .csv "
                "with text,label columns), or one of: " + ", ".join(names())
            )
        return str(path), _uci_entry(str(path), f"a folder in the UCI layout: {path}")
    candidates = [*REGISTRY, *uci.FOLDERS.values(), *ALIASES]
    by_lower = {c.lower(): c for c in candidates}
    close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), by_lower, n=3)]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise DataError(
        f"unknown data set {name!r}.{hint} Known: {', '.join(names())}; UCI folder names "
        f"({', '.join(uci.FOLDERS.values())}) work too, and so does a path to a folder in the "
        "UCI layout, to an image-folder directory or archive, or to a text set (.json, "
        "text,label .csv). `uqbench list datasets` "
        "describes them."
    )


def num_splits(name: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> int:
    """How many standard splits data set ``name`` has (20 for the built-in sets and most UCI
    sets, 5 for protein, 1 for image sets; for a folder, its ``n_splits.txt`` or number of
    index files)."""
    _, entry = _resolve(name)
    return entry.num_splits(data_dir)


def get(
    name: str | os.PathLike,
    *,
    split: int = 0,
    data_dir: str | os.PathLike | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> RegressionSplit | ClassificationSplit | ImageDataset:
    """Split ``split`` (an int in ``[0, num_splits(name))``) of data set ``name``.

    Regression sets give a :class:`RegressionSplit`, classification sets a
    :class:`ClassificationSplit`: inputs (and regression targets) are standardised with the
    statistics of the rows trained on, and ``validation_fraction`` of the training part is held
    out as the validation set by a permutation seeded with ``(seed, split)`` (0.0: an empty
    validation set); the test part depends only on ``split``. Image sets (``split`` 0 only) give
    an ``ImageDataset`` of uint8 tensors with a stratified carve-out (see ``images``).
    ``data_dir`` is resolved by :func:`resolve_data_dir`; ``download=True`` fetches missing
    UCI or image files first. Every problem with the request or the files raises
    :class:`DataError` saying what to do.
    """
    _, entry = _resolve(name)
    if isinstance(split, bool) or not isinstance(split, int | np.integer):
        raise DataError(
            f"split must be an integer (0 to num_splits(name) - 1), got {split!r}; "
            "to use every split, loop over range(num_splits(name))"
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    fraction = check_fraction(validation_fraction)
    return entry.load(int(split), data_dir, fraction, int(seed), bool(download))
