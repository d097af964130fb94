from __future__ import annotations

import numpy as np
from report_cases import SheetTables, default_costs, default_rule
from sheet_cases import ERR_CLASSES, err_predictions, fake_predictions

from spectragrid.report.sheet_data import sheet_data
from spectragrid.report.sheet_html import sheet_page

PNG = b"\x89PNG\r\n\x1a\nnot a real picture"


def test_html_sheet_tables_match_the_numbers() -> None:
    data = sheet_data(
        err_predictions(),
        ERR_CLASSES,
        "three classes",
        rule=default_rule(),
        costs=default_costs(),
    )
    parsed = SheetTables()
    parsed.feed(sheet_page(data, PNG))
    confusion = parsed.tables["confusion"]
    assert confusion[0] == ["given \\ predicted", "A", "B", "C", "recall"]
    assert confusion[1][1].startswith("1 ") and confusion[1][2].startswith("3 ")
    errors = parsed.tables["errors-before"]
    assert errors[1][:4] == ["A1", "B", "3", "37.5%"]
    assert errors[1][4] == f"{(0.2 + 0.4 + 0.35) / 3:.3f} ± {np.std([0.2, 0.4, 0.35], ddof=1):.3f}"
    assert errors[3][:3] == ["A1", "C", "1"] and errors[3][4] == "0.300"
    assert len(parsed.tables["errors-after"]) == data.errors_after.shape[0] + 1
    per_class = parsed.tables["per-class"]
    assert [r[0] for r in per_class[1:]] == ERR_CLASSES
    assert parsed.scripts == 1


def test_html_sheet_holds_the_png_and_the_cost_table_of_a_binary_target() -> None:
    data = sheet_data(
        fake_predictions(["OK", "rest"]),
        ["OK", "rest"],
        "<b>binary</b>",
        rule=default_rule(),
        costs=default_costs(),
    )
    page = sheet_page(data, PNG)
    assert "data:image/png;base64,iVBORw0KGgpub3QgYSByZWFsIHBpY3R1cmU=" in page
    assert "<b>binary" not in page and "&lt;b&gt;binary&lt;/b&gt;" in page
    parsed = SheetTables()
    parsed.feed(page)
    breakdown = parsed.tables["cost-table"]
    assert [r[0] for r in breakdown[1:]] == sorted(set(data.full_truth))
    configured = dict(tuple(r) for r in parsed.tables["cost-config"][1:])
    assert configured == {key: f"{value:.1f}" for key, value in data.cost_table.as_rows()}
