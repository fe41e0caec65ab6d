"""Results tables: one per data set and section, each group a row, the best per column marked.

Sections split a data set's metrics so that no table is hundreds of columns wide: ``test``
(prediction, calibration, selective prediction, diversity, regression), ``ood: <set>`` (the
max-probability score) and ``ood: <set> (other scores)``, ``corrupted`` (the means over corruption types: UB's cAcc, cNLL, cECE, and per
severity), ``corrupted by type`` (every type and severity), ``cost`` and ``other``. Published
rows (``uqbench.analysis.references``) appear beside ours, marked, never in the best marks.
A column's best is the lowest or highest mean among our rows (:func:`direction`); columns
without a direction (coverage, diversity, ...) have none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from uqbench.analysis.aggregate import Estimate, aggregate, paired
from uqbench.analysis.grouping import Group

HIGHER = frozenset({"accuracy", "accuracy_at_90", "auroc", "aupr_in", "aupr_out", "tnr_at_95_tpr"})
LOWER = frozenset(
    {"nll", "brier", "ece", "mce", "adaptive_ece", "classwise_ece", "aurc", "augrc", "rmse"}
    | {"crps", "calibration_error", "fpr95", "train_seconds", "ms_per_example"}
    | {"params", "peak_memory_mb"}
)
SECTIONS = ("test", "ood", "corrupted", "corrupted by type", "cost", "other")
HEADLINE = ("test/accuracy", "test/nll", "test/ece", "test/rmse", "test/crps")


def direction(key: str) -> str | None:
    """``"higher"`` or ``"lower"`` is better for metric ``key`` (by its last part), else None."""
    last = key.split("/")[-1]
    if last.startswith(("ece_", "classwise_ece_")):  # recomputed calibration errors
        return "lower"
    return "higher" if last in HIGHER else "lower" if last in LOWER else None


def section(key: str) -> str:
    """Which table a metric key goes into."""
    head = key.split("/")[0]
    if head in ("test", "recomputed"):
        return "test"
    parts = key.split("/")
    if head == "corrupted":
        return "corrupted" if parts[1] == "mean" else "corrupted by type"
    if head == "ood" and len(parts) >= 3:
        return f"ood: {parts[1]}" + (" (other scores)" if len(parts) > 3 else "")
    return head if head == "cost" else "other"


@dataclass
class Row:
    """One table row: a group's estimates, or published numbers (``source`` says whose)."""

    name: str
    cells: dict[str, Estimate]
    runs: int = 0
    notes: list[str] = field(default_factory=list)
    source: str = ""
    texts: dict[str, str] = field(default_factory=dict)  # published values as printed

    @property
    def published(self) -> bool:
        return bool(self.source)


@dataclass
class Table:
    """The rows of one data set and section; ``best[column]`` holds the best rows' indices."""

    dataset: str
    section: str
    columns: list[str]
    rows: list[Row]
    best: dict[str, set[int]] = field(default_factory=dict)
    caption: str = ""
    show_n: bool = False  # cells say how many values (pairs) they average


def mark_best(table: Table) -> None:
    """Fill ``table.best``: per column with a direction, our rows with the best mean (ties all)."""
    for column in table.columns:
        way = direction(column)
        values = {
            i: row.cells[column].mean
            for i, row in enumerate(table.rows)
            if not row.published and column in row.cells
        }
        if way is None or len(values) < 2:
            continue
        target = max(values.values()) if way == "higher" else min(values.values())
        table.best[column] = {i for i, v in values.items() if v == target}


def group_rows(groups: Iterable[Group], extra: Mapping[str, Mapping[str, Estimate]]) -> list[Row]:
    """A row per group: its aggregated metrics plus ``extra[group.name]`` (recomputed ones)."""
    rows = []
    for group in groups:
        cells = aggregate(group.units())
        cells.update(extra.get(group.name, {}))
        rows.append(Row(group.name, cells, runs=len(group.runs), notes=group.warnings))
    return rows


def _sections(keys: set[str]) -> list[str]:
    """The sections of these keys in :data:`SECTIONS` order (OOD sets by name)."""
    names = {section(k) for k in keys}
    order = {name: i for i, name in enumerate(SECTIONS)}
    return sorted(names, key=lambda n: (order.get(n.split(":")[0], len(SECTIONS)), n))


def dataset_tables(dataset: str, rows: list[Row], published: list[Row]) -> list[Table]:
    """The tables of one data set, a section each, with published rows that share a column."""
    tables = []
    for name in _sections({k for r in rows for k in r.cells}):
        columns = sorted({k for r in rows for k in r.cells if section(k) == name})
        if not columns:
            continue
        mine = [r for r in rows if any(k in columns for k in r.cells)]
        refs = [r for r in published if any(k in columns for k in r.cells)]
        table = Table(dataset, name, columns, [*mine, *refs])
        mark_best(table)
        tables.append(table)
    return tables


def paired_table(dataset: str, groups: list[Group], rows: list[Row]) -> Table | None:
    """Paired differences to the best group (of those with two or more values) of each headline
    metric, over shared seeds and splits; ``None`` when no two groups share two units."""
    diffs: dict[str, dict[str, Estimate]] = {g.name: {} for g in groups}
    for column in HEADLINE:
        way = direction(column)
        scored = [
            (r.cells[column].mean, g)
            for r, g in zip(rows, groups, strict=True)
            if column in r.cells and r.cells[column].n >= 2
        ]
        if way is None or len(scored) < 2:
            continue
        best = (max if way == "higher" else min)(scored, key=lambda p: p[0])[1]
        for _, group in scored:
            if group is not best and (d := paired(group, best, column)) is not None:
                diffs[group.name][column] = d
    kept = [Row(name, cells) for name, cells in diffs.items() if cells]
    columns = [k for k in HEADLINE if any(k in r.cells for r in kept)]
    if not kept:
        return None
    return Table(
        dataset,
        "paired differences to the best",
        columns,
        kept,
        caption="each row minus the best row of that column, over the seeds and splits both "
        "ran: mean ± standard error (n pairs)",
        show_n=True,
    )


def fmt_number(value: float) -> str:
    """Four decimals, or none for large values (parameters, milliseconds in thousands)."""
    if abs(value) >= 1000:
        return f"{value:.0f}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}"


def fmt_estimate(cell: Estimate | None, with_n: bool = False) -> str:
    """``mean ± se`` (``mean`` alone for one value), optionally with ``(n)``."""
    if cell is None:
        return ""
    text = fmt_number(cell.mean)
    if cell.se is not None:
        text += f" ± {fmt_number(cell.se)}"
    return text + (f" ({cell.n})" if with_n else "")


def row_label(row: Row) -> str:
    """The row's name with its run count, warnings, or published source."""
    if row.published:
        return f"{row.name} (published: {row.source})"
    if not row.runs:
        return row.name
    label = f"{row.name} [{row.runs} run{'s' if row.runs != 1 else ''}]"
    return label + "".join(f" ⚠ {n}" for n in row.notes)


def cells_of(table: Table) -> list[list[str]]:
    """The table's rows as text cells (label first), best cells not yet marked."""
    return [
        [
            row_label(row),
            *(
                row.texts.get(c) or fmt_estimate(row.cells.get(c), table.show_n)
                for c in table.columns
            ),
        ]
        for row in table.rows
    ]
