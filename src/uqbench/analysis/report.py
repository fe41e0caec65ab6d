"""``uqbench report`` and ``uqbench compare``: run and search directories in, tables, figures and
a self-contained HTML page out.

:func:`build_report` discovers the directories, groups runs (``grouping``), aggregates seeds and
splits (``aggregate``), adds recomputed calibration errors (``recompute``) and published numbers
of the same protocol (``references``), and draws the figures; :func:`write_report` writes
``report.html``, ``report.md`` (with ``figures/*.png``) and one CSV per data set.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from uqbench.analysis import references
from uqbench.analysis.aggregate import Estimate, aggregate
from uqbench.analysis.discover import discover
from uqbench.analysis.grouping import Group, group_runs
from uqbench.analysis.html import page
from uqbench.analysis.plotting import Figure, PredictionCache, slug
from uqbench.analysis.recompute import Calibration
from uqbench.analysis.searches import Search, read_search
from uqbench.analysis.tables import Row, Table, dataset_tables, group_rows, paired_table
from uqbench.analysis.text_formats import csv_text, markdown
from uqbench.protocol_ids import protocol_id

FORMATS = ("html", "md", "csv")


@dataclass
class Report:
    """Everything a report shows; ``skipped`` lists directories not read and why."""

    datasets: list[str]
    tables: list[Table]
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    runs: int = 0
    searches: int = 0


def _recomputed(
    group: Group, calibration: Calibration, cache: PredictionCache
) -> dict[str, Estimate]:
    """The user's calibration error of each run of ``group``, averaged like recorded metrics."""
    values = {}
    for run in group.runs:
        arrays = cache.get(run, "test")
        if arrays is None or "probs" not in arrays or "split" in arrays:
            continue
        values[run.path] = {calibration.key: calibration(arrays["probs"], arrays["labels"])}
    return aggregate(values) if values else {}


def _protocols(groups: Sequence[Group]) -> set[str]:
    ids = set()
    for group in groups:
        for run in group.runs:
            found = protocol_id(run.summary, run.flags)
            if found:
                ids.add(found)
    return ids


def _search_table(dataset: str, searches: Sequence[Search]) -> Table:
    """One row per search: status, trials, its best trial and final ensemble."""
    columns = ["status", "trials done", "best trial", "objective", "best objective"]
    columns += ["best test/accuracy", "best test/nll", "ensemble test/nll"]
    rows = []
    for search in searches:
        summary = search.run.summary
        best = summary.get("best_trial") or {}
        ensemble = ((summary.get("ensemble") or {}).get("metrics")) or {}
        counts = summary.get("trials") or {}
        numbers = {
            "trials done": counts.get("done"),
            "best trial": best.get("trial"),
            "best objective": best.get("objective"),
            "best test/accuracy": best.get("test/accuracy"),
            "best test/nll": best.get("test/nll"),
            "ensemble test/nll": ensemble.get("test/nll"),
        }
        cells = {k: Estimate(float(v), None, 1) for k, v in numbers.items() if v is not None}
        texts = {"status": str(summary.get("status")), "objective": search.objective}
        texts.update({k: str(v) for k, v in numbers.items() if isinstance(v, int)})
        rows.append(Row(search.name, cells, runs=1, texts=texts))
    return Table(dataset, "searches", columns, rows)


def build_report(
    paths: Sequence[str | Path],
    calibration: Calibration | None = None,
    figures: bool = True,
) -> Report:
    """Read every run and search under ``paths`` and build the report (nothing is written)."""
    found = discover(list(paths))
    if not found.runs and not found.searches:
        skipped = "".join(f"\n  {p}: {why}" for p, why in found.skipped)
        raise ValueError(
            f"no run or search directories under {', '.join(map(str, paths))}" + skipped
        )
    groups = group_runs(found.runs)
    searches = []
    for run in found.searches:
        try:
            searches.append(read_search(run))
        except (FileNotFoundError, ValueError, KeyError) as err:
            found.skipped.append((run.path, f"search not readable: {err}"))
    datasets = sorted({g.dataset for g in groups} | {s.run.dataset for s in searches})
    cache = PredictionCache()
    report = Report(
        datasets, [], skipped=found.skipped, runs=len(found.runs), searches=len(searches)
    )
    for dataset in datasets:
        mine = [g for g in groups if g.dataset == dataset]
        extra = {g.name: _recomputed(g, calibration, cache) for g in mine} if calibration else {}
        rows = group_rows(mine, extra)
        published = references.published_rows(_protocols(mine), dataset)
        report.tables += dataset_tables(dataset, rows, published)
        paired_diffs = paired_table(dataset, mine, rows)
        if paired_diffs is not None:
            report.tables.append(paired_diffs)
        theirs = [s for s in searches if s.run.dataset == dataset]
        if theirs:
            report.tables.append(_search_table(dataset, theirs))
        if figures:
            from uqbench.analysis.run_figures import run_figures
            from uqbench.analysis.search_figures import search_figures

            num_bins = calibration.num_bins if calibration else 15
            report.figures += run_figures(dataset, mine, cache, num_bins)
            report.figures += search_figures(dataset, theirs)
    report.notes = _notes(report, groups, calibration)
    return report


def _notes(report: Report, groups: Sequence[Group], calibration: Calibration | None) -> list[str]:
    notes = [
        "Means over seeds and splits (each run's (seed, split) evaluations) ± standard error "
        "std(ddof=1)/sqrt(n); the best mean per column is marked (bold, green).",
        "Groups: runs with the same method, data set, post-hoc step and flags apart from seed, "
        "split, output directory and flags that do not change results (threads, quiet, data_dir, "
        "workers).",
    ]
    if calibration:
        notes.append("Recomputed: " + calibration.describe())
    for group in groups:
        for warning in group.warnings:
            notes.append(f"{group.dataset} / {group.name}: {warning}")
    used = {r.source for t in report.tables for r in t.rows if r.published}
    if used:
        notes.append(
            "Published rows (italic) are as printed by their source, never averaged with ours:"
        )
        notes += [f"  {cite}" for cite in sorted(used)]
        for pid, text in references.protocols().items():
            if any(f"[{pid}]" in r.name for t in report.tables for r in t.rows if r.published):
                notes.append(f"  protocol {pid}: {text}")
    for path, why in report.skipped:
        notes.append(f"skipped {path}: {why}")
    return notes


def _write(path: Path, text: str | bytes) -> None:
    """Write atomically (a temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text)
    os.replace(tmp, path)


def check_formats(formats: Sequence[str]) -> None:
    """A clear error for an output format other than :data:`FORMATS` (or none)."""
    if not formats or set(formats) - set(FORMATS):
        raise ValueError(f"--format takes {', '.join(FORMATS)}; got {', '.join(formats) or 'none'}")


def write_report(report: Report, out: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write the report's files into ``out`` (created); returns their paths."""
    check_formats(formats)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    intro = [
        f"{report.runs} run directories and {report.searches} searches; "
        f"generated {time.strftime('%Y-%m-%d %H:%M')} by uqbench report."
    ]
    if "html" in formats:
        text = page(
            "uqbench report", intro, report.datasets, report.tables, report.figures, report.notes
        )
        _write(out / "report.html", text)
        written.append(out / "report.html")
    if "md" in formats:
        (out / "figures").mkdir(exist_ok=True)
        lines = ["# uqbench report", "", *intro, ""]
        for dataset in report.datasets:
            lines += [
                f"## {dataset}",
                "",
                markdown([t for t in report.tables if t.dataset == dataset]),
            ]
            for figure in (f for f in report.figures if f.dataset == dataset):
                _write(out / "figures" / f"{figure.name}.png", figure.png)
                lines += [
                    f"![{figure.title}](figures/{figure.name}.png)",
                    "",
                    f"*{figure.caption}*",
                    "",
                ]
        lines += ["## Notes", "", *(f"- {n.strip()}" for n in report.notes), ""]
        _write(out / "report.md", "\n".join(lines))
        written.append(out / "report.md")
    if "csv" in formats:
        for dataset in report.datasets:
            path = out / f"{slug(dataset)}.csv"
            _write(path, csv_text([t for t in report.tables if t.dataset == dataset]))
            written.append(path)
    return written
