"""Data sets: one registry (``get``, ``names``, ``describe``) over UCI regression files,
scikit-learn's bundled sets and synthetic data. See ``registry.get`` for the conventions."""

from uqbench.data.paths import DataError, resolve_data_dir
from uqbench.data.registry import describe, get, names, num_splits
from uqbench.data.splits import RegressionSplit
from uqbench.data.tabular import ClassificationSplit

__all__ = [
    "ClassificationSplit",
    "DataError",
    "RegressionSplit",
    "describe",
    "get",
    "names",
    "num_splits",
    "resolve_data_dir",
]
