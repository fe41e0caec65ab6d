"""Small data sets bundled with scikit-learn (no download), and the classification split record."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ClassificationSplit:
    """A stratified train/(validation)/test split of a classification set; x standardised with
    training statistics (images keep their shape in ``image_shape``)."""

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
    data_hash: str
    image_shape: tuple[int, ...] | None = field(default=None)


def diabetes() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's diabetes progression data: 442 patients x 10 features, 1 target."""
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    return bunch.data, bunch.target.astype(np.float64)


def friedman1() -> tuple[np.ndarray, np.ndarray]:
    """Friedman #1 (scikit-learn's generator), 1,000 x 10 (5 informative), noise 1, seed 0."""
    from sklearn.datasets import make_friedman1

    return make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)


def classification_arrays(
    name: str,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], tuple[int, ...] | None]:
    """``(x, y, class_names, image_shape)`` of a bundled classification set."""
    from sklearn import datasets

    from uqbench.data.synthetic import two_moons

    if name == "two_moons":
        x, y = two_moons()
        return x, y, ("upper", "lower"), None
    loader = {
        "iris": datasets.load_iris,
        "breast_cancer": datasets.load_breast_cancer,
        "wine_recognition": datasets.load_wine,
        "digits": datasets.load_digits,
    }[name]
    bunch = loader()
    names = tuple(str(c) for c in getattr(bunch, "target_names", np.unique(bunch.target)))
    return (
        bunch.data.astype(np.float64),
        bunch.target,
        names,
        (1, 8, 8) if name == "digits" else None,
    )


def classification_split(
    name: str, split: int, num_splits: int, validation_fraction: float, seed: int
) -> ClassificationSplit:
    """Stratified 80/20 train/test split number ``split`` (seeded by (seed, split)), plus an
    optional stratified validation carve-out from the training part."""
    from sklearn.model_selection import train_test_split

    from uqbench.data.splits import array_hash

    x, y, names, image_shape = classification_arrays(name)
    rows = np.arange(len(y))
    state = int(np.random.default_rng([seed, split]).integers(2**31))
    train, test = train_test_split(rows, test_size=0.2, stratify=y, random_state=state)
    val = np.array([], dtype=np.int64)
    if validation_fraction > 0:
        train, val = train_test_split(
            train, test_size=validation_fraction, stratify=y[train], random_state=state
        )
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def part(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = np.sort(index)
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
        data_hash=array_hash(x, y),
        image_shape=image_shape,
    )
