"""Tables for the search: scikit-learn's classification sets, the UCI and built-in regression
sets (``split``, validation carved from its training part) and a user's CSV file, as one
:class:`TableData` whose :class:`~uqbench.data.preprocessing.TablePreprocessing` turns raw rows
into the network's input exactly as the trials saw it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uqbench import data as data_sets
from uqbench.data.csv_table import read_csv, split_rows
from uqbench.data.paths import DataError
from uqbench.data.preprocessing import TablePreprocessing
from uqbench.data.splits import RegressionSplit, moments

IMAGE_TABLES = ("digits",)  # registered as a table, searched as 8x8 images


@dataclass(frozen=True, eq=False, repr=False)
class TableData:
    """A table split for a search: standardised float32 features ``x_*`` ``(N, D)``; labels
    (int64) or standardised targets (float32) ``y_*``; for regression the targets in their own
    units as well (``y_val_original``, ``y_test_original``, float64 NumPy)."""

    name: str
    source: str
    task: str
    split: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    class_names: tuple[str, ...]
    preprocessing: TablePreprocessing
    data_hash: str
    y_val_original: np.ndarray | None = None
    y_test_original: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        """Classes of a classification table; 0 for regression."""
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """The network's outputs: one logit per class, or a mean and a raw variance."""
        return self.num_classes if self.task == "classification" else 2

    @property
    def input_shape(self) -> tuple[int]:
        """``(D,)``: the encoded, standardised features."""
        return (int(self.x_train.shape[1]),)

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    def to(self, device: torch.device | str) -> TableData:
        """The same data with every tensor on ``device``."""
        moved = {
            f"{kind}_{part}": getattr(self, f"{kind}_{part}").to(device)
            for kind in ("x", "y")
            for part in ("train", "val", "test")
        }
        return dataclasses.replace(self, **moved)

    def __repr__(self) -> str:
        return (
            f"TableData(name={self.name!r}, task={self.task}, split={self.split}, "
            f"train={len(self.x_train)}, val={len(self.x_val)}, test={len(self.x_test)}, "
            f"features={self.input_shape[0]})"
        )


def is_table(name: str) -> bool:
    """Whether the search reads ``name`` as a table: a ``.csv`` path or a registered
    classification or regression set (digits excepted: it is searched as images)."""
    if str(name).lower().endswith(".csv"):
        return True
    try:
        key, entry = data_sets.registry._resolve(name)
    except DataError:
        return False
    return entry.kind in ("classification", "regression") and key not in IMAGE_TABLES


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def load_table(settings: Mapping[str, Any]) -> TableData:
    """The table the search settings name (``dataset``, ``split``, ``target``, ``task``,
    ``validation_fraction``, ``data_dir``); every problem is a DataError."""
    name = str(settings["dataset"])
    split = int(settings.get("split") or 0)
    fraction = float(settings["validation_fraction"])
    task = settings.get("task")
    if name.lower().endswith(".csv"):
        return _from_csv(name, settings.get("target"), task, split, fraction)
    if settings.get("target"):
        raise DataError(f"--target is for CSV files; {name} has its target already")
    loaded = data_sets.get(
        name, split=split, data_dir=settings.get("data_dir"), validation_fraction=fraction
    )
    natural = "regression" if isinstance(loaded, RegressionSplit) else "classification"
    if task is not None and task != natural:
        raise DataError(f"{name} is a {natural} data set; --task={task} does not apply")
    parts = {
        f"{kind}_{part}": _tensor(getattr(loaded, f"{kind}_{part}"))
        for kind in ("x", "y")
        for part in ("train", "val", "test")
    }
    if natural == "regression":
        prep = TablePreprocessing(
            "regression",
            tuple(loaded.x_mean),
            tuple(loaded.x_std),
            None,
            {},
            loaded.y_mean,
            loaded.y_std,
        )
        extra = {
            "y_val_original": loaded.to_original(loaded.y_val.astype(np.float64)),
            "y_test_original": loaded.to_original(loaded.y_test.astype(np.float64)),
        }
        names: tuple[str, ...] = ()
    else:
        names = tuple(loaded.class_names)
        prep = TablePreprocessing(
            "classification", tuple(loaded.x_mean), tuple(loaded.x_std), class_names=names
        )
        extra = {}
    return TableData(
        name=loaded.name,
        source=name,
        task=natural,
        split=split,
        class_names=names,
        preprocessing=prep,
        data_hash=loaded.data_hash,
        **parts,
        **extra,
    )


def _from_csv(
    path: str, target: str | None, task: str | None, split: int, fraction: float
) -> TableData:
    table = read_csv(path, target, task)
    train, val, test = split_rows(table, split, fraction, seed=0)
    x = table.encoded()
    x_mean, x_std = moments(x[train])
    y_mean = y_std = None
    if table.task == "regression":
        y_mean, y_std = (float(v[0]) for v in moments(table.target[train, None]))
    prep = TablePreprocessing(
        table.task,
        tuple(float(v) for v in x_mean),
        tuple(float(v) for v in x_std),
        table.columns,
        table.categories,
        y_mean,
        y_std,
        table.class_names,
    )
    parts: dict[str, Any] = {}
    for part, index in (("train", train), ("val", val), ("test", test)):
        parts[f"x_{part}"] = _tensor(((x[index] - x_mean) / x_std).astype(np.float32))
        y = table.target[index]
        if table.task == "regression":
            y = ((y - y_mean) / y_std).astype(np.float32)
        parts[f"y_{part}"] = _tensor(y)
    extra = {}
    if table.task == "regression":
        extra = {"y_val_original": table.target[val], "y_test_original": table.target[test]}
    return TableData(
        name=Path(path).stem,
        source=str(path),
        task=table.task,
        split=split,
        class_names=table.class_names,
        preprocessing=prep,
        data_hash=table.data_hash,
        **parts,
        **extra,
    )


def check_space(space: Any, data: Any, settings: Mapping[str, Any] | None = None) -> None:
    """Refuse, before anything trains, a space that cannot work on ``data``: convolutional
    blocks on a table (naming the blocks that fit), a metric of the other task, an OOD objective
    or distillation on a table, an OOD set that cannot be built."""
    from uqbench.search import blocks, validation_ood
    from uqbench.search.space import REGRESSION_METRICS, SpecError

    if isinstance(data, TableData):
        misfits = [b for b in space.blocks if blocks.get_block(b).kind == "conv"]
        if misfits:
            fitting = [n for n, kind, _ in blocks.describe() if kind != "conv"]
            raise SpecError(
                f"blocks {', '.join(misfits)} need images, but {data.name} is a table of "
                f"{data.input_shape[0]} features; blocks that fit a table: {', '.join(fitting)}"
            )
        if space.ood is not None:
            raise SpecError(
                "[objective] ood: OOD objectives score image searches; a table has no OOD set"
            )
        if space.distill_weight > 0:
            raise SpecError("[distillation] is for image searches: set weight = 0 for a table")
    task = data.task if isinstance(data, TableData) else "classification"
    used = set(space.metrics_used)
    if task == "regression" and not used <= set(REGRESSION_METRICS):
        raise SpecError(
            f"[objective] {', '.join(sorted(used - set(REGRESSION_METRICS)))} is a "
            f"classification metric; {data.name} is a regression set: use "
            f"{', '.join(REGRESSION_METRICS)}"
        )
    if task == "classification" and used & {"rmse", "crps"}:
        raise SpecError(
            f"[objective] {', '.join(sorted(used & {'rmse', 'crps'}))} is a regression metric; "
            f"{data.name} is a classification set"
        )
    if not isinstance(data, TableData) and space.ood is not None:
        validation_ood.prepare(data, space, settings or {})
