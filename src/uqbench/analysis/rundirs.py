"""One run directory as analysis sees it: its summary, its flags and where its predictions are.

Only files are read (DESIGN.md: analysis reads only files): ``summary.json``, ``flags.txt`` and,
on demand, ``predictions/<set>.npz``. Nothing here imports torch or the training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class NotARun(ValueError):
    """A directory that is not a run or search directory analysis can read; the message says why."""


def parse_flags(text: str) -> dict[str, str]:
    """``flags.txt`` as ``{name: value}``: ``--name=value``, ``--name`` (true) and ``--noname``
    (false) lines; comment lines (unset flags, ``--output_dir``) are left out."""
    flags: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("--"):
            continue
        name, sep, value = line[2:].partition("=")
        if sep:
            flags[name] = value
        elif name.startswith("no") and len(name) > 2:
            flags[name[2:]] = "false"
        else:
            flags[name] = "true"
    return flags


@dataclass
class Run:
    """A run directory: ``summary.json`` parsed, the flags of ``flags.txt`` and its path."""

    path: Path
    summary: dict[str, Any]
    flags: dict[str, str] = field(default_factory=dict)
    label: str = ""

    @property
    def method(self) -> str:
        return str(self.summary.get("method", "?"))

    @property
    def dataset(self) -> str:
        dataset = self.summary.get("dataset") or {}
        return str(dataset.get("name", "?")) if isinstance(dataset, dict) else str(dataset)

    @property
    def metrics(self) -> dict[str, float]:
        """The recorded metrics without the ``_se`` twins (analysis computes its own)."""
        values = self.summary.get("metrics") or {}
        return {
            k: float(v)
            for k, v in values.items()
            if not k.endswith("_se") and isinstance(v, int | float)
        }

    def units(self) -> dict[tuple[Any, Any], dict[str, float]]:
        """The run's independent evaluations, keyed by ``(seed, split)``: one per split of a
        regression run over several splits (its ``splits`` record), else the run itself.
        Metrics outside the per-split record (costs) stay with every unit of the run."""
        seed = self.summary.get("seed")
        splits = self.summary.get("splits")
        if isinstance(splits, dict) and splits:
            shared = {k: v for k, v in self.metrics.items() if k.startswith("cost/")}
            return {
                (seed, str(split)): {
                    **shared,
                    **{k: float(v) for k, v in m.items() if v is not None},
                }
                for split, m in splits.items()
            }
        split = self.summary.get("split")
        return {(seed, None if split in ("test", None) else str(split)): self.metrics}

    def prediction_sets(self) -> list[str]:
        """Names of the saved prediction sets (``test``, ``ood_<set>``, ``corrupted_<t>_<s>``)."""
        folder = self.path / "predictions"
        return sorted(p.stem for p in folder.glob("*.npz")) if folder.is_dir() else []

    def predictions(self, name: str) -> dict[str, np.ndarray]:
        """``predictions/<name>.npz`` as a dict of arrays; a clear error if it is missing."""
        path = self.path / "predictions" / f"{name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"{self.path} has no predictions/{name}.npz")
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; :class:`NotARun` if it is not one."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NotARun(f"{path.name} is not readable JSON ({err})") from None
    if not isinstance(value, dict):
        raise NotARun(f"{path.name} is not a JSON object")
    return value


def read_run(path: str | Path) -> Run:
    """The run directory at ``path``; :class:`NotARun` when it has no readable summary."""
    path = Path(path)
    summary_path = path / "summary.json"
    if not summary_path.is_file():
        raise NotARun("no summary.json")
    summary = read_json(summary_path)
    flags_path = path / "flags.txt"
    flags = parse_flags(flags_path.read_text()) if flags_path.is_file() else {}
    return Run(path=path, summary=summary, flags=flags, label=path.name)
