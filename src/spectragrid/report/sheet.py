"""The sheet job: one cell's result sheet, PNG and HTML, from its files and the `report`
config (docs/lab_facts.md, "The result sheet").

The numbers come from `sheet_data`, once; `sheet_png` draws them and
`sheet_html` lays the same numbers out as a page around that drawing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from spectragrid.core.atomic import write_atomic
from spectragrid.report.business_cost import CostTable
from spectragrid.report.cutoffs import CutoffRule
from spectragrid.report.sheet_data import SheetData, sheet_data
from spectragrid.report.sheet_html import sheet_page
from spectragrid.report.sheet_png import sheet_png
from spectragrid.train.output_checksums import verify_cell


def render_sheet(
    predictions: pd.DataFrame,
    classes: Sequence[str],
    title: str,
    out_png: Path,
    history: pd.DataFrame | None = None,
    *,
    rule: CutoffRule,
    costs: CostTable,
    out_html: Path | None = None,
    card: Mapping | None = None,
    metrics: Mapping | None = None,
) -> SheetData:
    """Render one cell's sheet to `out_png` (and `out_html` when given), atomically."""
    data = sheet_data(
        predictions,
        classes,
        title,
        rule=rule,
        costs=costs,
        history=history,
        card=card,
        metrics=metrics,
    )
    png = sheet_png(data)
    write_atomic(Path(out_png), png)
    if out_html is not None:
        write_atomic(Path(out_html), sheet_page(data, png))
    return data


def build_sheet(
    predictions_path: Path,
    metrics_path: Path,
    history_path: Path | None,
    card_path: Path | None,
    out_png: Path,
    out_html: Path | None,
    *,
    cutoff: Mapping,
    costs: Mapping,
    check_outputs: bool = True,
) -> SheetData:
    """One cell's sheet (PNG and HTML) from its outputs and the validated `report.cutoff`
    and `report.costs`. With `check_outputs`, the cell's files are first checked against
    the checksums its metrics.json records (train.output_checksums)."""
    # The settings first: a config that cannot be applied fails before any file is read.
    rule = CutoffRule.from_config(cutoff)
    table = CostTable.from_config(costs)
    if check_outputs:
        verify_cell(Path(metrics_path).parent)
    metrics = json.loads(Path(metrics_path).read_text())
    history = pd.read_csv(history_path) if history_path and Path(history_path).exists() else None
    card = (
        json.loads(Path(card_path).read_text()) if card_path and Path(card_path).exists() else None
    )
    return render_sheet(
        pd.read_parquet(predictions_path),
        metrics["target"]["classes"],
        metrics["display_name"],
        Path(out_png),
        history,
        rule=rule,
        costs=table,
        out_html=Path(out_html) if out_html else None,
        card=card,
        metrics=metrics,
    )
