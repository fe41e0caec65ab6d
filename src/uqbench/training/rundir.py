"""The run directory: what every baseline run and search leaves behind (see DESIGN.md).

Files are written into a hidden staging folder next to the destination and moved into place by
:meth:`RunDirectory.commit` only when the run succeeded, so a crash, a NaN loss or Ctrl-C never
leaves a half-written result where analysis would read it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uqbench.training.checkpoint import save_checkpoint
from uqbench.training.environment import git_commit, versions

SCHEMA_VERSION = 2  # 2: test/mce, test/augrc, test/diversity/*, ood/.../tnr_at_95_tpr


class RunDirectoryError(ValueError):
    """The output directory cannot be used (exists already, not writable, ...)."""


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as None so every file stays valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text with NaN/inf as null and NumPy scalars as numbers."""
    return json.dumps(
        _clean(value), indent=indent, default=_json_default, sort_keys=indent is not None
    )


def check_output_dir(path: str | Path, overwrite: bool) -> Path:
    """Refuse an existing non-empty ``path`` unless ``overwrite``; call before long work starts."""
    path = Path(path).expanduser().resolve()
    if path.exists() and (not path.is_dir() or any(path.iterdir())) and not overwrite:
        raise RunDirectoryError(
            f"output directory {path} already exists and is not empty: "
            "choose another --output_dir or pass --overwrite"
        )
    return path


class RunDirectory:
    """Stages a run's files and publishes them atomically.

    Use as a context manager: on an exception the staging folder is removed and nothing appears
    at ``path``. An existing non-empty ``path`` is an error unless ``overwrite`` is set.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = check_output_dir(path, overwrite)
        self.overwrite = overwrite
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.partial-", dir=self.path.parent)
            )
        except OSError as err:
            raise RunDirectoryError(f"cannot create output directory {self.path}: {err}") from err
        self.committed = False

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None or not self.committed:
            self.abort()

    def file(self, name: str) -> Path:
        """Path of ``name`` inside the staging folder (parents created)."""
        target = self.staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_text(self, name: str, text: str) -> None:
        self.file(name).write_text(text)

    def write_flags(self, lines: Iterable[str]) -> None:
        """``flags.txt``: one ``--name=value`` per line, re-runnable with ``--flagfile``."""
        self.write_text("flags.txt", "".join(line + "\n" for line in lines))

    def append_history(self, record: Mapping[str, Any]) -> None:
        """One JSON line in ``history.jsonl`` (per epoch, or per trial for a search)."""
        with self.file("history.jsonl").open("a") as handle:
            handle.write(dumps(record) + "\n")

    def save_predictions(self, set_name: str, **arrays: np.ndarray | torch.Tensor) -> None:
        """``predictions/<set>.npz``; floating arrays are stored as float32."""
        out = {}
        for key, value in arrays.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            out[key] = (
                value.astype(np.float32) if np.issubdtype(value.dtype, np.floating) else value
            )
        np.savez_compressed(self.file(f"predictions/{set_name}.npz"), **out)

    def save_checkpoint(
        self, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]
    ) -> None:
        """``checkpoint.safetensors`` with the model's constructor arguments in its metadata."""
        save_checkpoint(self.file("checkpoint.safetensors"), dict(tensors), dict(metadata))

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        self.write_text("summary.json", dumps(summary, indent=2) + "\n")

    def commit(self) -> Path:
        """Move the staged files to ``path``; returns the final path."""
        if self.path.exists():
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        os.replace(self.staging, self.path)
        self.committed = True
        return self.path

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def build_summary(
    *,
    kind: str,
    method: str,
    dataset: Mapping[str, Any],
    data_hash: str,
    seed: int,
    split: int | str | None,
    device: str,
    metrics: Mapping[str, float],
    timings: Mapping[str, float],
    params: int,
    peak_memory_mb: float,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``summary.json`` record of DESIGN.md's run-directory contract (schema version :data:`SCHEMA_VERSION`)."""
    summary: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "kind": kind,
        "method": method,
        "dataset": dict(dataset),
        "data_hash": data_hash,
        "seed": seed,
        "split": split,
        "git_commit": git_commit(),
        "versions": versions(),
        "device": device,
        "timings": dict(timings),
        "params": params,
        "peak_memory_mb": peak_memory_mb,
        "metrics": dict(metrics),
    }
    if extra:
        summary.update(extra)
    return summary


def mean_and_stderr(per_run: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Average metric dicts over splits or seeds, adding ``<key>_se`` (standard error) twins.

    The standard error is ``std(ddof=1) / sqrt(n)``; with a single run it is omitted.
    """
    if not per_run:
        raise ValueError("no runs to average")
    keys = list(per_run[0])
    out: dict[str, float] = {}
    for key in keys:
        values = np.array([run[key] for run in per_run], dtype=np.float64)
        out[key] = float(values.mean())
        if len(values) > 1:
            out[f"{key}_se"] = float(values.std(ddof=1) / math.sqrt(len(values)))
    return out
