"""Small data sets bundled with scikit-learn (no download), and the classification split record.

Classification splits: split ``i`` is a stratified 80/20 train/test partition drawn with a
random state derived from ``i`` alone (so the test part never depends on ``seed``); a
``validation_fraction`` of the training part is then held out, stratified, with a random state
derived from ``(seed, i)``. Tabular inputs are standardised with the moments of the rows trained
on (constant columns become 0); ``digits`` keeps its pixel scale and is only divided by 16 (so
``x_mean`` = 0, ``x_std`` = 16, values in [0, 1]), and ``image_shape`` = (1, 8, 8) reshapes a
row into an image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from uqbench.data.paths import DataError
from uqbench.data.splits import _summary, _tensors, array_hash, moments, validation_size

TEST_FRACTION = 0.2
SPLIT_SEED = 0  # split i's train/test partition comes from default_rng([SPLIT_SEED, i])


@dataclass(frozen=True, eq=False, repr=False)
class ClassificationSplit:
    """A stratified train/validation/test split of a classification set.

    ``x_*`` are ``(N, D)`` float32 (standardised with ``x_mean``/``x_std``, see the module
    docstring), ``y_*`` ``(N,)`` int64 labels in ``[0, num_classes)``; ``*_index`` are int64 rows
    of the source data; ``image_shape`` is ``(C, H, W)`` for image sets (``x.reshape(-1,
    *image_shape)``), else None.
    """

    name: str
    split: int
    num_splits: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    x_mean: np.ndarray
    x_std: np.ndarray
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray
    data_hash: str
    image_shape: tuple[int, ...] | None = None

    def tensors(self, part: str = "train", device: Any = None) -> tuple[Any, Any]:
        """``(x, y)`` of ``part`` (train, val or test) as torch tensors (float32, int64)."""
        return _tensors(self, part, device)

    def __repr__(self) -> str:
        return _summary(self, f", classes={self.num_classes}")


def _read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for array in arrays:
        array.flags.writeable = False
    return arrays


@functools.cache
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes progression data: 442 patients x 10 features (as distributed:
    already centred and scaled), target = disease progression after one year (25 to 346)."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return _read_only(bunch.data.astype(np.float64), bunch.target.astype(np.float64))


@functools.cache
def friedman1() -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 (scikit-learn's generator): 1,000 x 10 (5 informative), noise std 1, seed 0."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)
    return _read_only(x, y)


CLASSIFICATION_SETS = ("iris", "breast_cancer", "wine_recognition", "digits", "two_moons")


@functools.cache
def classification_arrays(
    name: str,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[int, ...] | None]:
    """``(x float64, y int64, class_names, image_shape)`` of a built-in classification set."""
    from sklearn import datasets

    from uqbench.data.synthetic import two_moons

    if name == "two_moons":
        x, y = two_moons()
        return (*_read_only(x.copy(), y.copy()), ("upper", "lower"), None)
    loader = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "wine_recognition": datasets.load_wine,
        "digits": datasets.load_digits,
    }[name]
    bunch = loader()
    names = tuple(str(c) for c in bunch.target_names)
    x, y = bunch.data.astype(np.float64), bunch.target.astype(np.int64)
    return (*_read_only(x, y), names, (1, 8, 8) if name == "digits" else None)


def _state(*key: int) -> int:
    return int(np.random.default_rng(list(key)).integers(2**31 - 1))


def classification_split(
    name: str, split: int, num_splits: int, validation_fraction: float, seed: int
) -> ClassificationSplit:
    """Split number ``split`` of built-in classification set ``name`` (see the module
    docstring for how the parts are drawn and standardised)."""
    from sklearn.model_selection import train_test_split

    x, y, names, image_shape = classification_arrays(name)
    rows = np.arange(len(y))
    train, test = train_test_split(
        rows, test_size=TEST_FRACTION, stratify=y, random_state=_state(SPLIT_SEED, split)
    )
    val = np.array([], dtype=np.int64)
    count = validation_size(len(train), validation_fraction)
    if count:
        try:
            train, val = train_test_split(
                train, test_size=count, stratify=y[train], random_state=_state(seed, split)
            )
        except ValueError as err:
            raise DataError(
                f"{name}: cannot hold out a stratified validation set of {count} rows from "
                f"{len(train)} training rows ({err}); use a larger validation_fraction"
            ) from None
    train, val, test = (np.sort(i).astype(np.int64) for i in (train, val, test))
    if image_shape is not None:
        mean, std = np.zeros(x.shape[1]), np.full(x.shape[1], 16.0)
    else:
        mean, std = moments(x[train])

    def part(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return ((x[index] - mean) / std).astype(np.float32), y[index].astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = part(train), part(val), part(test)
    return ClassificationSplit(
        name=name,
        split=split,
        num_splits=num_splits,
        x_train=xt,
        y_train=yt,
        x_val=xv,
        y_val=yv,
        x_test=xs,
        y_test=ys,
        num_classes=len(names),
        class_names=names,
        x_mean=mean,
        x_std=std,
        train_index=train,
        val_index=val,
        test_index=test,
        data_hash=array_hash(x, y, train, test),
        image_shape=image_shape,
    )
