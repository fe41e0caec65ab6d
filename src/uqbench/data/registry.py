"""One registry of data sets: ``get(name, split=...)``, ``names()``, ``describe()``."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uqbench.data import synthetic, tabular, uci
from uqbench.data.paths import DataError
from uqbench.data.splits import RegressionSplit, array_hash, random_splits, standardised_split
from uqbench.data.tabular import ClassificationSplit

BUILTIN_SPLITS = 20
BUILTIN_DROPOUT_RATES = (0.005, 0.01, 0.05, 0.1)


@dataclass(frozen=True)
class Entry:
    kind: str
    description: str
    load: Callable[..., RegressionSplit | ClassificationSplit]
    num_splits: Callable[[str | Path | None], int]


def _check_split(name: str, split: int) -> None:
    if not 0 <= split < BUILTIN_SPLITS:
        raise DataError(
            f"{name} has {BUILTIN_SPLITS} splits (0 to {BUILTIN_SPLITS - 1}); split {split} does not exist"
        )


def _builtin_regression(
    name: str, arrays: Callable, splits: Callable, taus: tuple[float, ...]
) -> Callable:
    def load(
        split: int, data_dir, validation_fraction: float, seed: int, download: bool
    ) -> RegressionSplit:
        _check_split(name, split)
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
            data_hash=array_hash(x, y),
            dropout_rates=BUILTIN_DROPOUT_RATES,
            tau_values=taus,
        )

    return load


def _builtin_classification(name: str) -> Callable:
    def load(
        split: int, data_dir, validation_fraction: float, seed: int, download: bool
    ) -> ClassificationSplit:
        _check_split(name, split)
        return tabular.classification_split(name, split, BUILTIN_SPLITS, validation_fraction, seed)

    return load


def _uci(name: str) -> Callable:
    def load(
        split: int, data_dir, validation_fraction: float, seed: int, download: bool
    ) -> RegressionSplit:
        return uci.load(name, split, data_dir, validation_fraction, seed, download)

    return load


def _fixed(count: int) -> Callable[[str | Path | None], int]:
    return lambda data_dir: count


REGISTRY: dict[str, Entry] = {
    short: Entry(
        "regression",
        f"UCI {uci.DESCRIPTIONS[short]}, standard splits (needs <data_dir>/uci/{folder})",
        _uci(short),
        lambda data_dir, short=short: uci.num_splits(short, data_dir),
    )
    for short, folder in uci.FOLDERS.items()
}
REGISTRY.update(
    {
        "diabetes": Entry(
            "regression",
            "scikit-learn diabetes, 442 x 10, 20 random 90/10 splits (built in)",
            _builtin_regression(
                "diabetes",
                tabular.diabetes,
                lambda: random_splits(442, BUILTIN_SPLITS, 0.1, seed=0),
                (1.5e-4, 3e-4, 6e-4),
            ),
            _fixed(BUILTIN_SPLITS),
        ),
        "friedman1": Entry(
            "regression",
            "Friedman #1 synthetic, 1,000 x 10, noise 1, 20 random 90/10 splits (built in)",
            _builtin_regression(
                "friedman1",
                tabular.friedman1,
                lambda: random_splits(1000, BUILTIN_SPLITS, 0.1, seed=0),
                (0.25, 0.5, 1.0),
            ),
            _fixed(BUILTIN_SPLITS),
        ),
        "gap1d": Entry(
            "regression",
            "synthetic 1-D x sin(x), heteroscedastic noise, test includes a gap (built in)",
            _builtin_regression(
                "gap1d",
                synthetic.gap1d,
                lambda: synthetic.gap1d_splits(BUILTIN_SPLITS),
                (1.0, 2.0, 4.0),
            ),
            _fixed(BUILTIN_SPLITS),
        ),
    }
)
for _name, _text in {
    "iris": "scikit-learn iris, 150 x 4, 3 classes",
    "breast_cancer": "scikit-learn breast cancer Wisconsin, 569 x 30, 2 classes",
    "wine_recognition": "scikit-learn wine recognition, 178 x 13, 3 classes",
    "digits": "scikit-learn 8x8 digits, 1,797 images, 10 classes",
    "two_moons": "synthetic two moons, 1,000 x 2, 2 classes",
}.items():
    REGISTRY[_name] = Entry(
        "classification",
        f"{_text}, 20 stratified 80/20 splits (built in)",
        _builtin_classification(_name),
        _fixed(BUILTIN_SPLITS),
    )


def names(kind: str | None = None) -> list[str]:
    """Registered data set names, optionally only ``regression`` or ``classification`` ones."""
    if kind not in (None, "regression", "classification"):
        raise ValueError(f"kind must be regression or classification, got {kind!r}")
    return sorted(n for n, e in REGISTRY.items() if kind is None or e.kind == kind)


def describe() -> list[tuple[str, str, str]]:
    """``(name, kind, one-line description)`` of every registered data set."""
    return [(n, REGISTRY[n].kind, REGISTRY[n].description) for n in names()]


def _resolve(name: str) -> tuple[str, Entry]:
    short = uci.canonical(name) or name
    if short in REGISTRY:
        return short, REGISTRY[short]
    path = Path(name).expanduser()
    if path.is_dir() or "/" in name or "\\" in name:
        if not path.is_dir():
            raise DataError(f"--dataset={name} looks like a path, but no such folder exists")
        return str(path), Entry(
            "regression",
            "a folder in the UCI layout",
            _uci(str(path)),
            lambda data_dir, p=str(path): uci.num_splits(p, data_dir),
        )
    close = difflib.get_close_matches(name, list(REGISTRY) + list(uci.FOLDERS.values()), n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise DataError(
        f"unknown data set {name!r}.{hint} Known: {', '.join(names())} "
        "(or pass a path to a folder in the UCI layout)"
    )


def num_splits(name: str, data_dir: str | Path | None = None) -> int:
    """How many standard splits data set ``name`` has."""
    _, entry = _resolve(name)
    return entry.num_splits(data_dir)


def get(
    name: str,
    *,
    split: int = 0,
    data_dir: str | Path | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
    download: bool = False,
) -> RegressionSplit | ClassificationSplit:
    """Split ``split`` of data set ``name`` (a registered name, a UCI folder name, or a path to a
    folder in the UCI layout), standardised with training statistics; ``validation_fraction``
    of the training part is held out by a permutation seeded with ``(seed, split)``."""
    _, entry = _resolve(name)
    if not isinstance(split, int | np.integer) or isinstance(split, bool):
        raise DataError(f"split must be an integer, got {split!r}")
    if not 0 <= validation_fraction < 1:
        raise DataError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    return entry.load(int(split), data_dir, validation_fraction, seed, download)
