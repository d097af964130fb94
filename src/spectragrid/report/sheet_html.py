"""The result sheet as HTML: the PNG inline plus its tables as real, copyable tables.

Self-contained (the image is a `data:` URI) so the file survives being mailed
or opened from a zip; every user string is escaped.
"""

from __future__ import annotations

import math

from spectragrid.report.formatting import fmt_pct, fmt_pm, fmt_threshold
from spectragrid.report.htmlkit import (
    BASE_CSS,
    Cell,
    esc,
    image,
    integer,
    num,
    page,
    pct,
    render_table,
    text,
)
from spectragrid.report.sheet_data import Confusion, SheetData
from spectragrid.report.sheet_text import (
    COST_HEADER,
    ERROR_HEADER,
    card_rows,
    definitions,
    metric_rows,
)


def _cutoff_cell(value: float) -> Cell:
    if math.isnan(value):
        return Cell("none", "num", "")
    if math.isinf(value):
        return Cell("unreachable", "num", "")
    return num(value)


def confusion_table(confusion: Confusion, classes: list[str], table_id: str, abstained=None) -> str:
    total = max(int(confusion.counts.sum()), 1)
    headers = ["given \\ predicted", *classes, "recall"]
    headers += ["abstained"] if abstained is not None else []
    rows = []
    for i, name in enumerate(classes):
        row = [text(name)]
        for j in range(len(classes)):
            count = int(confusion.counts[i, j])
            row.append(
                Cell(
                    f"{count} <span class='name'>({100 * count / total:.1f}%)</span>",
                    "num diag" if i == j else "num",
                    str(count),
                )
            )
        row.append(pct(confusion.recall[i], css="margin"))
        if abstained is not None:
            row.append(pct(abstained[i], css="margin"))
        rows.append(row)
    last = [text("precision", "margin")]
    last += [pct(p, css="margin") for p in confusion.precision]
    last.append(Cell(f"<b>accuracy {esc(fmt_pct(confusion.accuracy))}</b>", "num margin"))
    if abstained is not None:
        last.append(Cell("", "margin"))
    rows.append(last)
    return render_table(headers, rows, table_id)


def per_class_table(data: SheetData) -> str:
    headers = [
        "class",
        "n",
        "recall (accuracy)",
        "precision",
        "AUC",
        "AP",
        "cutoff",
        "status",
        "kept",
        "FPR at cutoff",
        "precision at cutoff",
        "abstained",
        "recall after cutoffs",
    ]
    rows = [
        [
            text(r["class"]),
            integer(r["n"]),
            pct(r["recall"]),
            pct(r["precision"]),
            num(r["auc"]),
            num(r["ap"]),
            _cutoff_cell(r["cutoff"]),
            text(r["status"]),
            pct(r["kept"]),
            pct(r["fpr_at_cutoff"]),
            pct(r["precision_at_cutoff"]),
            pct(r["abstained"]),
            pct(r["recall_after"]),
        ]
        for r in data.per_class.to_dict("records")
    ]
    return render_table(headers, rows, "per-class", sortable=True)


def errors_table(errors, table_id: str) -> str:
    rows = [
        [
            text(r["full_truth"]),
            text(r["predicted"]),
            integer(r["count"]),
            pct(r["share"]),
            Cell(esc(fmt_pm(r["p_true_mean"], r["p_true_sd"])), "num", repr(r["p_true_mean"])),
            Cell(esc(fmt_pm(r["p_pred_mean"], r["p_pred_sd"])), "num", repr(r["p_pred_mean"])),
        ]
        for r in errors.to_dict("records")
    ]
    return render_table(ERROR_HEADER, rows, table_id, sortable=True, empty="no errors")


def cost_section(data: SheetData) -> str:
    curve = data.cost
    if curve is None:
        return f'<p class="note">{esc(data.cost_note)}</p>'
    first = data.classes[0]
    if math.isfinite(curve.best_threshold):
        best = (
            f"Minimum cost <b>{esc(f'{curve.best_cost:g}')}</b> at t = "
            f"<b>{esc(fmt_threshold(curve.best_threshold))}</b>: {curve.best_n_accepted} samples "
            f"accepted, {esc(fmt_pct(curve.best_accept_fraction))} of given {esc(first)}."
        )
    else:
        best = "Every cutoff costs more than accepting nothing."
    unmatched = (
        f" Full truths matched by no key (cost 0): {esc(', '.join(curve.unmatched))}."
        if curve.unmatched
        else ""
    )
    summary = (
        f"<p>{best} Accepting every sample predicted {esc(first)} (argmax alone) costs "
        f"{esc(f'{curve.argmax_cost:g}')}.{unmatched}</p>"
    )
    rows = [
        [
            text(r["full_truth"]),
            text(r["key"]),
            num(r["unit_cost"], 1),
            integer(r["n"]),
            integer(r["accepted_argmax"]),
            integer(r["accepted"]),
            num(r["cost"], 1),
        ]
        for r in curve.breakdown.to_dict("records")
    ]
    configured = render_table(
        ["key", "cost"],
        [[text(k), num(v, 1)] for k, v in data.cost_table.as_rows()],
        "cost-config",
    )
    return (
        summary
        + render_table(COST_HEADER, rows, "cost-table", sortable=True)
        + "<h3>Cost table as configured</h3>"
        + configured
    )


def _pairs_table(rows: list[list[str]], header: list[str], table_id: str) -> str:
    return render_table(header, [[text(v) for v in row] for row in rows], table_id)


def sheet_page(data: SheetData, png: bytes) -> str:
    """The whole HTML sheet, with `png` (the rendered sheet) inline."""
    cell = data.metrics.get("cell") or {}
    coordinates = " · ".join(f"{k} {v}" for k, v in cell.items())
    abstained = data.per_class["abstained"].to_numpy(dtype=float)
    body = [
        f"<header><h1>{esc(data.title)}</h1>"
        f'<div class="meta">{esc(coordinates)} · n test {data.n}</div></header>',
        f"<details open><summary>Result sheet (PNG)</summary>"
        f"{image(png, 'result sheet of ' + data.title, css='sheet')}</details>",
        "<h2>Confusion matrix (rows: given class, columns: predicted)</h2>",
        confusion_table(data.before, data.classes, "confusion"),
        f"<h2>Per class ({esc(data.rule.describe())})</h2>",
        per_class_table(data),
        f"<h2>After cutoffs: {data.n_abstained} of {data.n} abstained "
        f"({esc(fmt_pct(data.abstention_rate))}), left out</h2>",
        confusion_table(data.after, data.classes, "confusion-after", abstained),
        f"<h2>Top error contributions, before cutoffs ({data.n_errors} errors)</h2>",
        errors_table(data.errors_before, "errors-before"),
        f"<h2>Top error contributions, after cutoffs ({data.n_errors_after} errors)</h2>",
        errors_table(data.errors_after, "errors-after"),
        "<h2>Business cost</h2>",
        cost_section(data),
        "<h2>Model card</h2>",
        _pairs_table(card_rows(data), ["", "value"], "card"),
        "<h2>Test metrics</h2>",
        _pairs_table(metric_rows(data), ["metric", "test", "test without flagged"], "metrics"),
        "<h2>Definitions</h2>",
        "".join(
            f'<p class="note">{esc(line)}</p>' for line in definitions(data, 10_000).split("\n")
        ),
    ]
    css = "img.sheet { max-width: 100%; border: 1px solid #d8dde3; }"
    return page(data.title, body, css=BASE_CSS + css)
