"""Published numbers kept in the package as data (``references.json``), keyed by protocol id.

Each result is a method's numbers on one data set under one protocol (``uqbench.protocol_ids``)
from one source (a paper's table, a README), as printed: a value is the printed text, or
``[mean, error]`` with the error its source prints (standard deviation or standard error over
splits). ``uqbench report`` shows them beside our groups whose runs recorded the same protocol
id, marked as published and never averaged with ours; the benchmark scripts read them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from uqbench.analysis.aggregate import Estimate
from uqbench.analysis.tables import Row


@dataclass(frozen=True)
class Reference:
    """One published result: protocol, data set, our method it corresponds to, and metrics."""

    protocol_id: str
    dataset: str
    method: str
    label: str
    source: str
    metrics: dict[str, tuple[str, str | None]]  # key -> (printed mean, printed error or None)

    def value(self, key: str) -> float:
        """The published mean of ``key`` as a number."""
        return float(self.metrics[key][0])

    def pair(self, key: str) -> tuple[float, float]:
        """``(mean, error)`` of ``key`` as numbers (error 0 where none is printed)."""
        mean, error = self.metrics[key]
        return float(mean), float(error or 0.0)

    def text(self, key: str) -> str:
        mean, error = self.metrics[key]
        return mean if error is None else f"{mean} ± {error}"


@cache
def _data() -> dict[str, Any]:
    text = resources.files("uqbench.analysis").joinpath("references.json").read_text()
    return json.loads(text)


def _metric(value: Any) -> tuple[str, str | None]:
    return (str(value[0]), str(value[1])) if isinstance(value, list) else (str(value), None)


def all_references() -> list[Reference]:
    """Every published result in the table."""
    return [
        Reference(
            r["protocol_id"],
            r["dataset"],
            r["method"],
            r["label"],
            r["source"],
            {k: _metric(v) for k, v in r["metrics"].items()},
        )
        for r in _data()["results"]
    ]


def sources() -> dict[str, dict[str, str]]:
    """``{source id: {cite, url, error}}``."""
    return dict(_data()["sources"])


def protocols() -> dict[str, str]:
    """``{protocol id: what it fixes}``."""
    return dict(_data()["protocols"])


def find(
    protocol_id: str, dataset: str, method: str | None = None, label: str | None = None
) -> list[Reference]:
    """The published results of a protocol and data set (and method, and label, if given)."""
    return [
        r
        for r in all_references()
        if r.protocol_id == protocol_id
        and r.dataset == dataset
        and (method is None or r.method == method)
        and (label is None or r.label == label)
    ]


def one(protocol_id: str, dataset: str, method: str, label: str | None = None) -> Reference:
    """Exactly one published result; a clear error otherwise."""
    found = find(protocol_id, dataset, method, label)
    if len(found) != 1:
        raise KeyError(
            f"{len(found)} published results for {protocol_id}/{dataset}/{method}"
            + (f"/{label}" if label else "")
        )
    return found[0]


def published_rows(protocol_ids: set[str], dataset: str) -> list[Row]:
    """Table rows of the published results of these protocols on ``dataset``."""
    rows = []
    for protocol_id in sorted(protocol_ids):
        for ref in find(protocol_id, dataset):
            cite = sources().get(ref.source, {}).get("cite", ref.source)
            rows.append(
                Row(
                    f"{ref.label} [{protocol_id}]",
                    {k: Estimate(ref.value(k), None, 0) for k in ref.metrics},
                    source=cite,
                    texts={k: ref.text(k) for k in ref.metrics},
                )
            )
    return rows
