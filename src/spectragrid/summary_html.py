"""results/summary.html: one self-contained page a scientist opens from disk.

No server, no network: CSS and the small sorting/filtering script are inline,
and the only references are relative paths to files that sit beside the page
(result sheets, ONNX models, predictions). Everything that comes from the
data or the config (target, class, model and column names, display names)
goes through `html.escape`.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from spectragrid.metrics import METRIC_NAMES
from spectragrid.summary import (
    PAIRED_METRICS,
    UNFLAGGED_METRICS,
    add_truth_metrics,
    aggregate,
    given_from_cells,
    issue_stats,
    load_cells,
    paired_raw_clean,
    write_tables,
)
from spectragrid.targets import Target

LOWER_IS_BETTER = frozenset({"log_loss", "ece", "hter"})
UNFLAGGED_NOTE = "test fold without flagged samples (easier, not comparable)"
SHOWN_TEST_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "auc", "hter")

_CSS = """
:root { --line: #d8dde3; --head: #f3f5f7; --muted: #5f6b76; --accent: #1f5f99; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2329; margin: 0 2rem 4rem; }
header { border-bottom: 2px solid var(--accent); padding: 1rem 0 .6rem; margin-bottom: 1rem; }
h1 { margin: 0 0 .3rem; font-size: 1.5rem; }
h2 { margin: 2.2rem 0 .6rem; font-size: 1.2rem; color: var(--accent); }
nav a { margin-right: 1rem; color: var(--accent); }
.meta { color: var(--muted); }
.note { color: var(--muted); font-size: .9em; margin: .3rem 0 .6rem; }
.wrap { overflow: auto; max-height: 80vh; border: 1px solid var(--line); }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
thead th { position: sticky; top: 0; background: var(--head); z-index: 1;
  border-bottom: 2px solid var(--line); }
td.num { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace;
  text-align: right; }
td.name { font-size: 12px; color: var(--muted); }
tbody tr:hover { background: #f7fafc; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[data-dir="asc"]::after { content: " \\25B2"; }
table.sortable thead th[data-dir="desc"]::after { content: " \\25BC"; }
th.unflagged, td.unflagged { background: #fbf6e9; }
.better { color: #1b7a3a; } .worse { color: #b3261e; }
input.filter { margin: .2rem 0 .5rem; padding: 4px 8px; width: 28rem; max-width: 100%; }
details img { max-width: 100%; border: 1px solid var(--line); margin-top: .4rem; }
.empty { color: var(--muted); font-style: italic; }
"""

# Sort on `data-v` when a cell carries one (raw number behind a formatted one), numbers
# before text, blanks last whichever the direction.
_JS = """
(function () {
  function key(td) {
    var v = td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
    v = v.trim();
    if (v === "") return {kind: 2, v: ""};
    var n = Number(v);
    return isFinite(n) ? {kind: 0, v: n} : {kind: 1, v: v.toLowerCase()};
  }
  function compare(a, b, dir) {
    if (a.kind === 2 || b.kind === 2) return a.kind === b.kind ? 0 : (a.kind === 2 ? 1 : -1);
    if (a.kind !== b.kind) return (a.kind - b.kind) * dir;
    if (a.kind === 0) return (a.v - b.v) * dir;
    return a.v.localeCompare(b.v, undefined, {numeric: true}) * dir;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.querySelectorAll("thead th");
    heads.forEach(function (th, col) {
      th.addEventListener("click", function () {
        var dir = th.getAttribute("data-dir") === "asc" ? -1 : 1;
        heads.forEach(function (h) { h.removeAttribute("data-dir"); });
        th.setAttribute("data-dir", dir === 1 ? "asc" : "desc");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) { return compare(key(a.cells[col]), key(b.cells[col]), dir); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.getAttribute("data-count"));
    if (!table || !table.tBodies || !table.tBodies.length) return;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var hit = q === "" || r.textContent.toLowerCase().indexOf(q) !== -1;
        r.style.display = hit ? "" : "none";
        if (hit) shown += 1;
      });
      if (count) count.textContent = shown + " of " + table.tBodies[0].rows.length + " rows";
    });
  });
})();
"""


@dataclass(frozen=True)
class Cell:
    """One table cell: its inner HTML (already escaped), classes and a raw sort value."""

    html: str
    css: str = ""
    sort: str | None = None


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_nan(value: object) -> bool:
    try:
        return value is None or bool(pd.isna(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fmt_number(value: object, digits: int = 3) -> str:
    """Fixed decimals, or an en dash for a missing value."""
    if _is_nan(value):
        return "–"
    return f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def fmt_mean_sd(mean: object, sd: object, digits: int = 3) -> str:
    """`mean ± sd`; the sd is left out when it does not exist (a single fold)."""
    if _is_nan(mean):
        return "–"
    if _is_nan(sd):
        return fmt_number(mean, digits)
    return f"{fmt_number(mean, digits)} ± {fmt_number(sd, digits)}"


def fmt_p(value: object) -> str:
    if _is_nan(value):
        return "–"
    return "<0.001" if float(value) < 0.001 else f"{float(value):.3f}"  # type: ignore[arg-type]


def _sort_value(value: object) -> str:
    return "" if _is_nan(value) else repr(float(value))  # type: ignore[arg-type]


def text(value: object, css: str = "") -> Cell:
    return Cell(_e("" if _is_nan(value) else value), css)


def num(value: object, digits: int = 3, css: str = "") -> Cell:
    return Cell(_e(fmt_number(value, digits)), f"num {css}".strip(), _sort_value(value))


def integer(value: object) -> Cell:
    shown = "–" if _is_nan(value) else f"{int(float(value)):d}"  # type: ignore[arg-type]
    return Cell(_e(shown), "num", _sort_value(value))


def mean_sd(mean: object, sd: object, css: str = "") -> Cell:
    return Cell(_e(fmt_mean_sd(mean, sd)), f"num {css}".strip(), _sort_value(mean))


def link(label: str, href: object) -> Cell:
    if _is_nan(href) or not str(href):
        return Cell("")
    # Relative paths only: quoting keeps user-named folders from breaking the attribute
    # or turning into a scheme.
    return Cell(f'<a href="{_e(quote(str(href)))}">{_e(label)}</a>')


def render_table(
    headers: Sequence[str | tuple[str, str]],
    rows: Iterable[Sequence[Cell]],
    table_id: str,
    sortable: bool = False,
    empty: str = "nothing to show",
) -> str:
    """A table; a header is a label or (label, css class)."""
    rows = list(rows)
    if not rows:
        return f'<p class="empty" id="{_e(table_id)}">{_e(empty)}</p>'
    heads = []
    for h in headers:
        label, css = (h, "") if isinstance(h, str) else h
        heads.append(f'<th class="{_e(css)}">{_e(label)}</th>' if css else f"<th>{_e(label)}</th>")
    body = []
    for row in rows:
        tds = []
        for c in row:
            attrs = f' class="{_e(c.css)}"' if c.css else ""
            if c.sort is not None:
                attrs += f' data-v="{_e(c.sort)}"'
            tds.append(f"<td{attrs}>{c.html}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    css = ' class="sortable"' if sortable else ""
    return (
        f'<div class="wrap"><table id="{_e(table_id)}"{css}>'
        f"<thead><tr>{''.join(heads)}</tr></thead>"
        f"<tbody>\n{chr(10).join(body)}\n</tbody></table></div>"
    )


def _has_any(frame: pd.DataFrame, column: str) -> bool:
    return column in frame and bool(pd.to_numeric(frame[column], errors="coerce").notna().any())


def _metric_label(column: str) -> str:
    return column.replace("_", " ")


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2>\n{body}\n</section>'


def _header(cells: pd.DataFrame, provenance: dict) -> str:
    datasets = sorted({str(d) for d in cells.get("dataset", [])}) or [
        str(provenance.get("dataset", ""))
    ]
    date = provenance.get("date") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    config_hash = provenance.get("config_hash", "–")
    nav = "".join(
        f'<a href="#{a}">{_e(t)}</a>'
        for a, t in (
            ("best", "Best per target"),
            ("raw-vs-clean", "Raw vs clean"),
            ("cells", "All cells"),
            ("issues", "Label issues"),
            ("cleaning", "Cleaning"),
            ("provenance", "Provenance"),
            ("cost", "Cost"),
        )
    )
    return (
        f"<header><h1>spectragrid summary: {_e(', '.join(datasets))}</h1>"
        f'<div class="meta">date {_e(date)} · config hash <code>{_e(config_hash)}</code> · '
        f"{len(cells)} cells</div><nav>{nav}</nav></header>"
    )


def _targets_table(cells: pd.DataFrame) -> str:
    if cells.empty:
        return ""
    rows = []
    # One row per distinct class list: a target whose classes differ between cells shows up
    # as several rows rather than hiding the difference.
    for (name, code, listed), _ in cells.groupby(["target", "target_code", "classes"], sort=True):
        try:
            classes = json.loads(listed)
        except (TypeError, ValueError):
            classes = [listed]
        rows.append([text(name), text(code), text(" | ".join(str(c) for c in classes))])
    return "<h3>Targets</h3>" + render_table(
        ["target", "code", "classes (in order)"], rows, "targets"
    )


def _sheet_links(cells: pd.DataFrame, group: dict) -> tuple[str, str]:
    """Links to every fold's sheet of an aggregate row, and the first sheet as an image."""
    mask = np.ones(len(cells), dtype=bool)
    for key, value in group.items():
        mask &= (cells[key] == value).to_numpy()
    folds = cells.loc[mask].sort_values("fold")
    links = " ".join(
        link(f"f{f}", s).html for f, s in zip(folds["fold"], folds["sheet"], strict=True)
    )
    first = folds["sheet"].dropna()
    image = ""
    if len(first):
        src = _e(quote(str(first.iloc[0])))
        image = (
            f"<details><summary>sheet of fold {_e(folds.loc[first.index[0], 'fold'])}</summary>"
            f'<img loading="lazy" src="{src}" alt="result sheet"></details>'
        )
    return links, image


def _best_section(cells: pd.DataFrame, agg: pd.DataFrame, best_metric: str) -> str:
    column = f"{best_metric}_mean"
    if not agg.empty and column not in agg:
        known = sorted(c[: -len("_mean")] for c in agg if c.endswith("_mean"))
        raise ValueError(f"best_metric {best_metric!r} is not aggregated; choose one of {known}")
    lower = best_metric.split("_", 1)[-1] in LOWER_IS_BETTER
    truth = [m for m in ("truth_accuracy", "truth_macro_f1") if _has_any(agg, f"{m}_mean")]
    headers: list[str | tuple[str, str]] = [
        "target",
        "labels",
        "channels",
        "model",
        "seed",
        "k",
        "folds",
        f"{_metric_label(best_metric)} (best)",
    ]
    shown = [f"test_{m}" for m in SHOWN_TEST_METRICS if f"test_{m}" != best_metric]
    headers += [_metric_label(m) for m in shown] + [_metric_label(m) for m in truth]
    headers += ["sheets", ""]
    rows = []
    if not agg.empty:
        for (_, target, labels), group in agg.groupby(["dataset", "target", "labels"], sort=True):
            scores = pd.to_numeric(group[column], errors="coerce")
            if scores.isna().all():
                continue
            best = group.loc[scores.idxmin() if lower else scores.idxmax()]
            keys = ("dataset", "labels", "target", "channels", "model", "seed", "k")
            links, image = _sheet_links(cells, {k: best[k] for k in keys})
            rows.append(
                [
                    text(target),
                    text(labels),
                    text(best["channels"]),
                    text(best["model"]),
                    integer(best["seed"]),
                    integer(best["k"]),
                    integer(best["n_folds"]),
                    mean_sd(best[column], best[f"{best_metric}_sd"]),
                    *(mean_sd(best[f"{m}_mean"], best[f"{m}_sd"]) for m in shown),
                    *(mean_sd(best[f"{m}_mean"], best[f"{m}_sd"]) for m in truth),
                    Cell(links),
                    Cell(image),
                ]
            )
    direction = "lowest" if lower else "highest"
    note = (
        f'<p class="note">Per target and label set, the grid point with the {direction} '
        f"{_e(_metric_label(best_metric))} on the test folds (mean ± sd over folds). Clean "
        "cells are scored on the same, uncleaned test folds as raw cells.</p>"
    )
    return note + render_table(headers, rows, "best-table", empty="no cells")


def _raw_clean_section(paired: pd.DataFrame) -> str:
    metrics = [m for m in PAIRED_METRICS if _has_any(paired, f"{m}_raw_mean")]
    headers: list[str | tuple[str, str]] = [
        "target",
        "channels",
        "model",
        "seed",
        "k",
        "folds",
        "flagged removed (mean)",
        "metric",
        "raw",
        "clean",
        "Δ clean − raw",
        "p",
        "test",
        "Δ per fold",
        (f"clean, {UNFLAGGED_NOTE}", "unflagged"),
    ]
    rows = []
    for r in paired.to_dict("records"):
        for m in metrics:
            unflagged = m.replace("test_", "unflagged_", 1)
            extra = (
                mean_sd(r[f"{unflagged}_clean_mean"], r[f"{unflagged}_clean_sd"], "unflagged")
                if m.startswith("test_") and unflagged in UNFLAGGED_METRICS
                else Cell("", "unflagged")
            )
            diff = r[f"{m}_diff_mean"]
            tone = "" if _is_nan(diff) or diff == 0 else ("better" if diff > 0 else "worse")
            rows.append(
                [
                    text(r["target"]),
                    text(r["channels"]),
                    text(r["model"]),
                    integer(r["seed"]),
                    integer(r["k"]),
                    integer(r["n_folds"]),
                    num(r["n_removed_flagged_mean"], 1),
                    text(_metric_label(m)),
                    mean_sd(r[f"{m}_raw_mean"], r[f"{m}_raw_sd"]),
                    mean_sd(r[f"{m}_clean_mean"], r[f"{m}_clean_sd"]),
                    mean_sd(diff, r[f"{m}_diff_sd"], tone),
                    Cell(_e(fmt_p(r[f"{m}_p"])), "num", _sort_value(r[f"{m}_p"])),
                    text(r[f"{m}_test"]),
                    text(r[f"{m}_diffs"], "name"),
                    extra,
                ]
            )
    note = (
        '<p class="note">Clean cells retrain on labels with the flagged samples removed and are '
        "scored on the original, uncleaned test fold, like their raw twins (same folds, fold by "
        "fold). “truth” metrics score the same predictions against the noise-free labels. "
        "p: Wilcoxon signed-rank with at least 5 non-zero paired differences, paired t-test "
        f"otherwise. The last column, {_e(UNFLAGGED_NOTE)}, removes the flagged samples from the "
        "test fold as well: it is an easier test and overstates the gain.</p>"
    )
    return note + render_table(
        headers, rows, "raw-vs-clean-table", sortable=True, empty="no raw/clean pairs yet"
    )


def _cells_section(cells: pd.DataFrame) -> str:
    truth = [f"truth_{m}" for m in METRIC_NAMES if _has_any(cells, f"truth_{m}")]
    noise = _has_any(cells, "noise_rate_test")
    headers = ["labels", "target", "channels", "model", "seed", "fold", "k"]
    headers += [_metric_label(f"test_{m}") for m in METRIC_NAMES]
    headers += [_metric_label(m) for m in truth]
    headers += ["given-label noise in test"] if noise else []
    headers += ["n train", "n test", "flagged removed", "sheet", "ONNX", "predictions", "name"]
    rows = []
    for r in cells.to_dict("records"):
        row = [text(r[c]) for c in ("labels", "target", "channels", "model")]
        row += [integer(r["seed"]), integer(r["fold"]), integer(r["k"])]
        row += [num(r[f"test_{m}"]) for m in METRIC_NAMES]
        row += [num(r[m]) for m in truth]
        row += [num(r["noise_rate_test"])] if noise else []
        row += [integer(r["n_train"]), integer(r["n_test"]), integer(r["n_removed_flagged"])]
        row += [link("sheet", r["sheet"]), link("onnx", r["onnx"])]
        row += [link("parquet", r["predictions"]), text(r["display_name"], "name")]
        rows.append(row)
    search = (
        '<input class="filter" type="search" placeholder="filter rows (any text)" '
        'data-table="cells-table" data-count="cells-count" aria-label="filter cells">'
        f' <span class="note" id="cells-count">{len(rows)} of {len(rows)} rows</span>'
    )
    note = '<p class="note">Click a column header to sort; metrics on the test fold.</p>'
    return note + search + render_table(headers, rows, "cells-table", sortable=True)


def _issues_section(issues: pd.DataFrame) -> str:
    detection = _has_any(issues, "precision") or _has_any(issues, "recall")
    known_n = _has_any(issues, "n_samples")
    headers = ["target", "channels", "seed", "k", "n flagged"]
    headers += ["n samples", "flagged share"] if known_n else []
    headers += ["truly mislabelled", "precision", "recall", "F1"] if detection else []
    headers += ["most suspicious (given → suggested)"]
    rows = []
    for r in issues.to_dict("records"):
        row = [text(r["target"]), text(r["channels"]), integer(r["seed"]), integer(r["k"])]
        row += [integer(r["n_flagged"])]
        row += [integer(r["n_samples"]), num(r["flagged_fraction"])] if known_n else []
        if detection:
            row += [integer(r["n_truly_mislabelled"])]
            row += [num(r["precision"]), num(r["recall"]), num(r["f1"])]
        row += [text(r["top_flagged"], "name")]
        rows.append(row)
    note = (
        '<p class="note">Samples flagged by cleanlab from the out-of-fold probabilities of the '
        "raw cells, per target, channel set and seed."
        + (
            " Precision, recall and F1 compare the flagged set with the samples whose given "
            "class differs from the true class."
            if detection
            else ""
        )
        + "</p>"
    )
    return note + render_table(
        headers, rows, "issues-table", sortable=True, empty="no label-issue files"
    )


def _cleaning_section(report: dict) -> str:
    if not report:
        return '<p class="empty">no cleaning report</p>'
    total = report.get("input_rows")
    kept = report.get("kept")
    share = ""
    if isinstance(total, int | float) and isinstance(kept, int | float) and total:
        share = f" ({100 * kept / total:.1f} % kept)"
    summary = (
        f"<p>input rows <b>{_e(total)}</b> · kept <b>{_e(kept)}</b>{_e(share)}</p>"
        if total is not None
        else ""
    )
    dropped = report.get("dropped") or {}
    rows = [
        [
            text(reason),
            integer(count),
            num(100 * count / total if isinstance(total, int | float) and total else None, 2),
        ]
        for reason, count in sorted(dropped.items(), key=lambda kv: (-_as_float(kv[1]), kv[0]))
    ]
    drop_table = render_table(
        ["dropped because", "rows", "% of input"], rows, "dropped", empty="nothing dropped"
    )
    files = [
        [
            text(f.get("file")),
            text(f.get("sha256"), "name"),
            integer(f.get("rows")),
            integer(f.get("kept")),
        ]
        for f in report.get("files") or []
    ]
    file_table = render_table(["file", "sha256", "rows", "kept"], files, "files", empty="no files")
    return summary + drop_table + "<h3>Raw files</h3>" + file_table


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _flatten(value: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, "" if value is None else str(value))]


def _provenance_section(provenance: dict) -> str:
    rows = [[text(k), text(v)] for k, v in _flatten(provenance)]
    return render_table(["key", "value"], rows, "provenance-table", empty="no provenance")


def _cost_section(cells: pd.DataFrame) -> str:
    headers = ["labels", "target", "channels", "model", "seed", "fold", "k", "device"]
    headers += ["parameters", "FLOPs / sample", "wall s", "s / epoch", "train samples / s"]
    headers += ["epochs run", "best epoch"]
    rows = []
    for r in cells.to_dict("records"):
        row = [text(r[c]) for c in ("labels", "target", "channels", "model")]
        row += [integer(r["seed"]), integer(r["fold"]), integer(r["k"]), text(r["device"])]
        row += [integer(r["parameters"]), integer(r["flops_per_sample"])]
        row += [num(r["wall_seconds"], 1), num(r["seconds_per_epoch"], 2)]
        row += [num(r["train_samples_per_second"], 0)]
        row += [integer(r["epochs_run"]), integer(r["best_epoch"])]
        rows.append(row)
    wall = pd.to_numeric(cells.get("wall_seconds", pd.Series(dtype=float)), errors="coerce")
    total = (
        f'<p class="note">Total training wall time {wall.sum() / 3600:.2f} h over '
        f"{int(wall.notna().sum())} cells.</p>"
        if wall.notna().any()
        else ""
    )
    return total + render_table(headers, rows, "cost-table", sortable=True, empty="no cells")


def render_summary_html(
    out_html: Path,
    cells: pd.DataFrame,
    aggregate: pd.DataFrame,
    paired: pd.DataFrame,
    issues: pd.DataFrame,
    cleaning_report: dict,
    provenance: dict,
    best_metric: str = "test_macro_f1",
) -> None:
    """Write the self-contained summary page atomically."""
    provenance = provenance or {}
    body = [
        _header(cells, provenance),
        _targets_table(cells),
        _section("best", "Best per target", _best_section(cells, aggregate, best_metric)),
        _section("raw-vs-clean", "Raw vs clean", _raw_clean_section(paired)),
        _section("cells", "All cells", _cells_section(cells)),
        _section("issues", "Label issues", _issues_section(issues)),
        _section("cleaning", "Cleaning", _cleaning_section(cleaning_report or {})),
        _section("provenance", "Provenance", _provenance_section(provenance)),
        _section("cost", "Cost", _cost_section(cells)),
    ]
    title = "spectragrid summary"
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + f"\n<script>{_JS}</script>\n</body></html>\n"
    )
    out_html = Path(out_html)
    out_html.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_html.with_name(f".{out_html.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, out_html)
    finally:
        tmp.unlink(missing_ok=True)


def write_summary(
    *,
    metrics_paths: Sequence[Path],
    issues_paths: Sequence[Path],
    targets: dict[str, Target],
    out_html: Path,
    out_csv: Path,
    out_parquet: Path,
    truth: pd.DataFrame | None = None,
    given: pd.Series | None = None,
    cleaning_report: dict | None = None,
    provenance: dict | None = None,
    best_metric: str = "test_macro_f1",
) -> pd.DataFrame:
    """Every step from cell outputs to summary.csv/.parquet and summary.html.

    Without `given`, the given labels come from the raw cells' predictions. Returns the
    per-cell table.
    """
    out_html = Path(out_html)
    cells = load_cells(metrics_paths, out_html.parent)
    cells = add_truth_metrics(cells, truth, metrics_paths)
    if given is None:
        given = given_from_cells(metrics_paths)
    issues = issue_stats(issues_paths, given, truth, targets)
    write_tables(cells, out_csv, out_parquet)
    render_summary_html(
        out_html,
        cells,
        aggregate(cells),
        paired_raw_clean(cells),
        issues,
        cleaning_report or {},
        provenance or {},
        best_metric,
    )
    return cells
