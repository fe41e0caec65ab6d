"""The report as one self-contained HTML file: figures embedded as base64 PNG, style and a few
lines of plain JavaScript inline (click a column heading to sort), nothing fetched."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

from uqbench.analysis.plotting import Figure
from uqbench.analysis.tables import Table, cells_of

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
h3 { font-size: 1.05em; margin-top: 1.5em; }
.scroll { overflow-x: auto; }
table.results { border-collapse: collapse; font-size: 12px; margin: 0.5em 0; }
table.results th, table.results td { border: 1px solid #ddd; padding: 2px 6px; white-space: nowrap; }
table.results th { background: #f2f2f2; cursor: pointer; position: sticky; top: 0; }
table.results th.sorted-asc::after { content: " \\25B2"; }
table.results th.sorted-desc::after { content: " \\25BC"; }
table.results td { text-align: right; } table.results td:first-child { text-align: left; }
td.best { font-weight: bold; background: #e3f5e1; }
tr.published td { font-style: italic; color: #555; background: #fafafa; }
.warn { color: #a40; }
figure.fig { display: inline-block; margin: 0.5em; vertical-align: top; max-width: 100%; }
figure.fig img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 12px; max-width: 60em; }
"""

# Sort a table by the clicked column: numbers (data-v) numerically, text otherwise; empty last.
SCRIPT = """
document.querySelectorAll("table.results").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = !th.classList.contains("sorted-asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("sorted-asc", "sorted-desc"); });
      th.classList.add(ascending ? "sorted-asc" : "sorted-desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[column];
        var v = cell.getAttribute("data-v");
        return v === null || v === "" ? null : (isNaN(Number(v)) ? v : Number(v));
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        var order = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def table_html(table: Table, table_id: str) -> str:
    """One sortable table; best cells and published rows carry classes."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in ["", *table.columns])
    body = []
    for i, (row, cells) in enumerate(zip(table.rows, cells_of(table), strict=True)):
        tds = [f'<td data-v="{esc(row.name)}">{esc(cells[0])}</td>']
        for column, text in zip(table.columns, cells[1:], strict=True):
            cell = row.cells.get(column)
            value = "" if cell is None else repr(cell.mean)
            best = ' class="best"' if i in table.best.get(column, ()) else ""
            tds.append(f'<td data-v="{value}"{best}>{esc(text)}</td>')
        kind = ' class="published"' if row.published else ""
        body.append(f"<tr{kind}>{''.join(tds)}</tr>")
    caption = f"<p>{esc(table.caption)}</p>" if table.caption else ""
    return (
        f"<h3>{esc(table.section)}</h3>{caption}<div class='scroll'>"
        f'<table class="results" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def figure_html(figure: Figure) -> str:
    """One figure, its PNG embedded as a data URI."""
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure class="fig" id="fig-{html.escape(figure.name)}"><img alt="{html.escape(figure.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption><b>{html.escape(figure.title)}.</b> '
        f"{html.escape(figure.caption)}</figcaption></figure>"
    )


def page(
    title: str,
    intro: Sequence[str],
    datasets: Sequence[str],
    tables: Sequence[Table],
    figures: Sequence[Figure],
    notes: Sequence[str],
) -> str:
    """The whole report: per data set its tables then its figures, then the notes."""
    esc = html.escape
    parts = [f"<h1>{esc(title)}</h1>", *(f"<p>{esc(line)}</p>" for line in intro)]
    parts.append(
        "<ul>"
        + "".join(f'<li><a href="#ds-{i}">{esc(d)}</a></li>' for i, d in enumerate(datasets))
        + "</ul>"
    )
    for i, dataset in enumerate(datasets):
        parts.append(f'<h2 id="ds-{i}">{esc(dataset)}</h2>')
        for j, table in enumerate(t for t in tables if t.dataset == dataset):
            parts.append(table_html(table, f"t-{i}-{j}"))
        shown = [f for f in figures if f.dataset == dataset]
        if shown:
            parts.append("<h3>figures</h3>" + "".join(figure_html(f) for f in shown))
    if notes:
        parts.append("<h2>notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(parts)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )
