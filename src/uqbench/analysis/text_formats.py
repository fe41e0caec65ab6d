"""The tables as Markdown (best in bold), CSV (one line per row and metric) and aligned text
for the terminal (best marked ``*``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from uqbench.analysis.tables import Table, cells_of

CSV_HEADER = ("dataset", "table", "row", "published_source", "runs", "metric", "mean", "se", "n")


def _title(table: Table) -> str:
    return f"{table.dataset}: {table.section}"


def markdown(tables: Sequence[Table]) -> str:
    """Every table as a Markdown section; best cells bold, published rows in italics."""
    out = []
    for table in tables:
        out += [f"### {_title(table)}", ""]
        if table.caption:
            out += [table.caption[0].upper() + table.caption[1:] + ".", ""]
        out.append("| " + " | ".join(["", *table.columns]) + " |")
        out.append("|" + "---|" * (len(table.columns) + 1))
        for i, (row, cells) in enumerate(zip(table.rows, cells_of(table), strict=True)):
            shown = [c.replace("|", "\\|") for c in cells]
            for j, column in enumerate(table.columns, start=1):
                if shown[j] and i in table.best.get(column, ()):
                    shown[j] = f"**{shown[j]}**"
            if row.published:
                shown = [f"*{c}*" if c else c for c in shown]
            out.append("| " + " | ".join(shown) + " |")
        out.append("")
    return "\n".join(out)


def csv_text(tables: Sequence[Table]) -> str:
    """One CSV line per (table, row, metric): mean, standard error and count, unrounded."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_HEADER, "best"])
    for table in tables:
        for i, row in enumerate(table.rows):
            for column in table.columns:
                cell = row.cells.get(column)
                if cell is None:
                    continue
                writer.writerow(
                    [
                        table.dataset,
                        table.section,
                        row.name,
                        row.source,
                        row.runs if not row.published else "",
                        column,
                        repr(cell.mean),
                        "" if cell.se is None else repr(cell.se),
                        cell.n,
                        int(i in table.best.get(column, ())),
                    ]
                )
    return buffer.getvalue()


def aligned(tables: Sequence[Table], max_columns: int = 8) -> str:
    """Every table aligned for a terminal, at most ``max_columns`` metrics per block; the best
    cell of each column ends in ``*``."""
    out = []
    for table in tables:
        rows = cells_of(table)
        for i, _row in enumerate(rows):
            for j, column in enumerate(table.columns, start=1):
                if rows[i][j] and i in table.best.get(column, ()):
                    rows[i][j] += "*"
        for start in range(0, len(table.columns), max_columns):
            block = slice(start + 1, start + 1 + max_columns)
            headers = ["", *table.columns[start : start + max_columns]]
            body = [[r[0], *r[block]] for r in rows]
            widths = [max(len(line[k]) for line in [headers, *body]) for k in range(len(headers))]
            out.append(_title(table) + (f" ({start // max_columns + 1})" if start else ""))
            out.append(_line(headers, widths))
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
            out += [_line(line, widths) for line in body]
            out.append("")
    return "\n".join(out)


def _line(cells: list[str], widths: list[int]) -> str:
    first, *rest = cells
    return "  ".join(
        [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
    ).rstrip()
