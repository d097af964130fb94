"""Small HTML building blocks shared by the summary page and the result sheets.

Every value that reaches the page goes through `esc` (or a helper built on
it): labels, class names, column names and paths come from the user's data
and config and must show as text, never as markup. Pages are self-contained:
CSS and script inline, images as `data:` URIs or relative paths.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd

# One atomic writer for the package; modules that write pages import it from here too.
from spectragrid.core.atomic import write_atomic as write_atomic

BASE_CSS = """
:root { --line: #d8dde3; --head: #f3f5f7; --muted: #5f6b76; --accent: #1f5f99; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2329; margin: 0 2rem 4rem; }
header { border-bottom: 2px solid var(--accent); padding: 1rem 0 .6rem; margin-bottom: 1rem; }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; word-break: break-word; }
h2 { margin: 2.2rem 0 .6rem; font-size: 1.2rem; color: var(--accent); }
h3 { margin: 1.4rem 0 .4rem; font-size: 1.02rem; }
nav a { margin-right: 1rem; color: var(--accent); }
.meta { color: var(--muted); }
.note { color: var(--muted); font-size: .9em; margin: .3rem 0 .6rem; max-width: 70rem; }
.wrap { display: inline-block; max-width: 100%; overflow: auto; max-height: 80vh;
  border: 1px solid var(--line); margin-bottom: .4rem; vertical-align: top; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
thead th { position: sticky; top: 0; background: var(--head); z-index: 1;
  border-bottom: 2px solid var(--line); }
td.num { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  text-align: right; }
td.name { font-size: 12px; color: var(--muted); }
td.margin { background: #f1f3f5; }
td.diag { background: #e3eefa; font-weight: 600; }
tbody tr:hover { background: #f7fafc; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable thead th[data-dir="desc"]::after { content: " \\25BC"; }
th.unflagged, td.unflagged { background: #fbf6e9; }
.better { color: #1b7a3a; } .worse { color: #b3261e; }
.filters { display: flex; flex-wrap: wrap; gap: .4rem .8rem; align-items: center;
  margin: .2rem 0 .5rem; }
input.filter { padding: 4px 8px; width: 22rem; max-width: 100%; }
select.facet { padding: 3px 4px; }
details img, img.chart { max-width: 100%; border: 1px solid var(--line); margin-top: .4rem; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; }
.charts figure { margin: 0; }
.charts figcaption { color: var(--muted); font-size: .9em; max-width: 40rem; }
.empty { color: var(--muted); font-style: italic; }
.cards { display: flex; flex-wrap: wrap; gap: 1rem; margin: .6rem 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .9rem;
  min-width: 18rem; max-width: 34rem; }
.card h3 { margin: 0 0 .3rem; }
.card p { margin: .15rem 0; }
"""


@dataclass(frozen=True)
class Cell:
    """One table cell: its inner HTML (already escaped), classes and a raw sort value."""

    html: str
    css: str = ""
    sort: str | None = None


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def is_nan(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fmt_number(value: object, digits: int = 3) -> str:
    """Fixed decimals, or an en dash for a missing value."""
    if is_nan(value):
        return "–"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def fmt_pct(value: object, digits: int = 1) -> str:
    if is_nan(value):
        return "–"
    return f"{100 * float(value):.{digits}f}%"  # type: ignore[arg-type]


def fmt_mean_sd(mean: object, sd: object, digits: int = 3) -> str:
    """`mean ± sd`; the sd is left out when it does not exist (a single fold)."""
    if is_nan(mean):
        return "–"
    if is_nan(sd):
        return fmt_number(mean, digits)
    return f"{fmt_number(mean, digits)} ± {fmt_number(sd, digits)}"


def fmt_p(value: object) -> str:
    if is_nan(value):
        return "–"
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"  # type: ignore[arg-type]


def sort_value(value: object) -> str:
    if is_nan(value):
        return ""
    try:
        return repr(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def text(value: object, css: str = "") -> Cell:
    return Cell(esc("" if is_nan(value) else value), css)


def num(value: object, digits: int = 3, css: str = "") -> Cell:
    return Cell(esc(fmt_number(value, digits)), f"num {css}".strip(), sort_value(value))


def pct(value: object, digits: int = 1, css: str = "") -> Cell:
    return Cell(esc(fmt_pct(value, digits)), f"num {css}".strip(), sort_value(value))


def integer(value: object, css: str = "") -> Cell:
    shown = "–" if is_nan(value) else f"{int(float(value)):d}"  # type: ignore[arg-type]
    return Cell(esc(shown), f"num {css}".strip(), sort_value(value))


def mean_sd(mean: object, sd: object, css: str = "", digits: int = 3) -> Cell:
    return Cell(esc(fmt_mean_sd(mean, sd, digits)), f"num {css}".strip(), sort_value(mean))


def href(path: object) -> str:
    """A relative path made safe for an attribute: quoting keeps user-named folders from
    breaking the attribute or turning into a scheme."""
    return esc(quote(str(path)))


def link(label: str, target: object) -> Cell:
    if is_nan(target) or not str(target):
        return Cell("")
    return Cell(f'<a href="{href(target)}">{esc(label)}</a>')


def links(pairs: Iterable[tuple[str, object]]) -> Cell:
    """Several links in one cell, the missing ones left out."""
    parts = [link(label, target).html for label, target in pairs]
    return Cell(" ".join(p for p in parts if p))


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def image(payload: bytes, alt: str, css: str = "chart", mime: str = "image/png") -> str:
    return f'<img class="{esc(css)}" src="{data_uri(payload, mime)}" alt="{esc(alt)}">'


def render_table(
    headers: Sequence[str | tuple[str, str]],
    rows: Iterable[Sequence[Cell]],
    table_id: str,
    sortable: bool = False,
    empty: str = "nothing to show",
    facets: Sequence[str] = (),
) -> str:
    """A table; a header is a label or (label, css class). Headers named in `facets` get a
    drop-down filter built by the page script from the column's values."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty" id="{esc(table_id)}">{esc(empty)}</p>'
    heads = []
    for h in headers:
        label, css = (h, "") if isinstance(h, str) else h
        attrs = f' class="{esc(css)}"' if css else ""
        if label in facets:
            attrs += ' data-facet="1"'
        heads.append(f"<th{attrs}>{esc(label)}</th>")
    body = []
    for row in rows:
        tds = []
        for c in row:
            attrs = f' class="{esc(c.css)}"' if c.css else ""
            if c.sort is not None:
                attrs += f' data-v="{esc(c.sort)}"'
            tds.append(f"<td{attrs}>{c.html}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    css = ' class="sortable"' if sortable else ""
    return (
        f'<div class="wrap"><table id="{esc(table_id)}"{css}>'
        f"<thead><tr>{''.join(heads)}</tr></thead>"
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table></div>"
    )


def filter_bar(table_id: str, n_rows: int, placeholder: str = "filter rows (any text)") -> str:
    """A text filter (and room for the drop-downs the script adds) above a table."""
    count = f"{table_id}-count"
    return (
        f'<div class="filters" data-for="{esc(table_id)}">'
        f'<input class="filter" type="search" placeholder="{esc(placeholder)}" '
        f'data-table="{esc(table_id)}" data-count="{esc(count)}" '
        f'aria-label="filter {esc(table_id)}">'
        f' <span class="note" id="{esc(count)}">{n_rows} of {n_rows} rows</span></div>'
    )


# Sorting: on `data-v` when a cell carries one (the raw number behind a formatted one),
# numbers before text, blanks last whichever the direction. Filtering: a row shows when it
# contains the text of the box and matches every drop-down of its table. The binding is
# also `window.spectragridBindTables(root)`, for tables a page inserts after loading.
PAGE_JS = """
(function () {
  "use strict";
  function key(td) {
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    v = v.trim();
    if (v === "" || v === "\\u2013") return {kind: 2, v: ""};
    var n = Number(v);
    return isFinite(n) ? {kind: 0, v: n} : {kind: 1, v: v.toLowerCase()};
  }
  function compare(a, b, dir) {
    if (a.kind === 2 || b.kind === 2) return a.kind === b.kind ? 0 : (a.kind === 2 ? 1 : -1);
    if (a.kind !== b.kind) return (a.kind - b.kind) * dir;
    if (a.kind === 0) return (a.v - b.v) * dir;
    return a.v.localeCompare(b.v, undefined, {numeric: true}) * dir;
  }
  function bind(root) {
    root.querySelectorAll("table.sortable").forEach(function (table) {
      var heads = table.querySelectorAll("thead th");
      heads.forEach(function (th, col) {
        th.setAttribute("title", "click to sort");
        th.addEventListener("click", function () {
          var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
          heads.forEach(function (h) { h.removeAttribute("data-dir"); });
          th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
          var body = table.tBodies[0];
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            return compare(key(a.cells[col]), key(b.cells[col]), dir);
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
    root.querySelectorAll("div.filters").forEach(function (bar) {
      var table = document.getElementById(bar.getAttribute("data-for"));
      if (!table || !table.tBodies || !table.tBodies.length) return;
      var input = bar.querySelector("input.filter");
      var count = document.getElementById(input.getAttribute("data-count"));
      var selects = [];
      table.querySelectorAll("thead th").forEach(function (th, col) {
        if (!th.hasAttribute("data-facet")) return;
        var values = {};
        Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
          if (r.cells[col]) values[r.cells[col].textContent.trim()] = true;
        });
        var names = Object.keys(values).sort();
        if (names.length < 2) return;
        var select = document.createElement("select");
        select.className = "facet";
        select.setAttribute("aria-label", "filter by " + th.textContent);
        var all = document.createElement("option");
        all.value = "";
        all.textContent = th.textContent + ": all";
        select.appendChild(all);
        names.forEach(function (name) {
          var option = document.createElement("option");
          option.value = name;
          option.textContent = name;
          select.appendChild(option);
        });
        select.setAttribute("data-col", String(col));
        bar.insertBefore(select, count && count.parentNode === bar ? count : null);
        selects.push(select);
      });
      function apply() {
        var q = input.value.trim().toLowerCase();
        var rows = table.tBodies[0].rows;
        var shown = 0;
        Array.prototype.forEach.call(rows, function (r) {
          var hit = q === "" || r.textContent.toLowerCase().indexOf(q) !== -1;
          selects.forEach(function (s) {
            var col = Number(s.getAttribute("data-col"));
            if (s.value !== "" && (!r.cells[col] || r.cells[col].textContent.trim() !== s.value)) {
              hit = false;
            }
          });
          r.style.display = hit ? "" : "none";
          if (hit) shown += 1;
        });
        if (count) count.textContent = shown + " of " + rows.length + " rows";
      }
      input.addEventListener("input", apply);
      selects.forEach(function (s) { s.addEventListener("change", apply); });
    });
  }
  window.spectragridBindTables = bind;
  bind(document);
})();
"""


def page(title: str, body: Iterable[str], css: str = BASE_CSS, script: bool = True) -> str:
    """A whole self-contained page."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{css}</style></head><body>\n"
        + "\n".join(body)
        + (f"\n<script>{PAGE_JS}</script>" if script else "")
        + "\n</body></html>\n"
    )
