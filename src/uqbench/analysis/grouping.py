"""Group runs that differ only in seed, split and where they were written.

A group's key is the run's method, data set, post-hoc step and every flag except
:data:`IGNORED_FLAGS`: the seed, the split, the output directory, and flags that do not change a
result (threads, quiet, where the data lies, how many workers ran a search). So 4 and 8 members,
or two protocols, never merge. A group whose runs read different data (``data_hash``) or wrote
different ``schema`` versions is kept but flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from uqbench.analysis.rundirs import Run

IGNORED_FLAGS = frozenset(
    {"seed", "split", "output_dir", "overwrite", "resume", "flagfile"}
    | {"quiet", "threads", "eval_batch_size", "data_dir", "download"}
    | {"workers", "executor", "ray_address", "cpus_per_trial", "gpus_per_trial"}
)
# summary fields that tell runs with the same flags apart (an evaluation, a post-hoc step)
SUMMARY_FIELDS = ("posthoc",)


@dataclass
class Group:
    """Runs of one configuration: ``key`` (method, data set, distinguishing flags) and warnings."""

    method: str
    dataset: str
    settings: tuple[tuple[str, str], ...]
    runs: list[Run] = field(default_factory=list)
    name: str = ""

    @property
    def warnings(self) -> list[str]:
        """Why the group's runs may not be comparable (mixed data or schema versions)."""
        out = []
        by_split: dict[str, set] = {}  # runs on other splits read other files: compare per split
        for run in self.runs:
            by_split.setdefault(str(run.summary.get("split")), set()).add(
                run.summary.get("data_hash")
            )
        mixed = [split for split, hashes in by_split.items() if len(hashes) > 1]
        if mixed:
            out.append(f"mixed data hashes (split {', '.join(sorted(mixed))})")
        schemas = sorted({str(r.summary.get("schema")) for r in self.runs})
        if len(schemas) > 1:
            out.append(f"mixed schema versions ({', '.join(schemas)})")
        return out

    @property
    def protocol_ids(self) -> set[str]:
        return {str(r.summary["protocol_id"]) for r in self.runs if r.summary.get("protocol_id")}

    def units(self) -> dict[tuple[Any, Any], dict[str, float]]:
        """Every (seed, split) evaluation of every run; a repeated key keeps the first run's."""
        out: dict[tuple[Any, Any], dict[str, float]] = {}
        for run in self.runs:
            for key, values in run.units().items():
                out.setdefault(key, values)
        return out


def group_key(run: Run) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """``(method, data set, sorted (flag, value) pairs)`` that defines ``run``'s group."""
    settings = {k: v for k, v in run.flags.items() if k not in IGNORED_FLAGS}
    settings.pop("dataset", None)  # the data set is named by the summary (paths differ)
    for name in SUMMARY_FIELDS:
        if run.summary.get(name) is not None:
            settings[name] = str(run.summary[name])
    return run.method, run.dataset, tuple(sorted(settings.items()))


def _names(groups: list[Group]) -> None:
    """Short unique names: the method, plus the settings in which same-method groups differ."""
    by_method: dict[tuple[str, str], list[Group]] = {}
    for group in groups:
        by_method.setdefault((group.dataset, group.method), []).append(group)
    for same in by_method.values():
        if len(same) == 1:
            same[0].name = same[0].method
            continue
        keys = sorted({k for g in same for k, _ in g.settings})
        varying = [k for k in keys if len({dict(g.settings).get(k) for g in same}) > 1]
        for group in same:
            values = dict(group.settings)
            detail = ", ".join(f"{k}={values.get(k, '-')}" for k in varying)
            group.name = f"{group.method} ({detail})"


def group_runs(runs: Iterable[Run]) -> list[Group]:
    """Runs grouped by :func:`group_key`, in order of data set, method and settings."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        key = group_key(run)
        groups.setdefault(key, Group(*key)).runs.append(run)
    ordered = [groups[k] for k in sorted(groups)]
    _names(ordered)
    return ordered
