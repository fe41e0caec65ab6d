"""Data sets: one registry (``get``, ``names``, ``describe``, ``num_splits``) over the UCI
regression files, scikit-learn's bundled sets and synthetic data.

    from uqbench import data
    s = data.get("boston", split=0, data_dir="../shared/data", validation_fraction=0.2)
    s.x_train, s.y_train, s.x_val, s.x_test  # float32, standardised with training statistics
    mean, var = s.to_original(pred_mean, pred_var)  # back to target units

See ``registry.get`` and ``splits`` for the conventions.
"""

from uqbench.data.paths import DataError, resolve_data_dir
from uqbench.data.registry import describe, get, names, num_splits
from uqbench.data.splits import RegressionSplit
from uqbench.data.tabular import ClassificationSplit
from uqbench.data.uci import download_uci

__all__ = [
    "ClassificationSplit",
    "DataError",
    "RegressionSplit",
    "describe",
    "download_uci",
    "get",
    "names",
    "num_splits",
    "resolve_data_dir",
]
