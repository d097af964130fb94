from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_cases import SheetTables, default_costs, default_rule, schema_report
from sheet_cases import CARD, PNG_SIGNATURE, fake_history, fake_predictions

from spectragrid.core import layout
from spectragrid.report.cutoffs import CutoffError
from spectragrid.report.sheet import build_sheet, render_sheet


def test_render_binary_sheet_is_deterministic(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"])
    title = "cnn y=['OVA', 'OK'] c=('277', '380', '425') t=() 0-5 s=0 eps=0.0"
    outputs = []
    for name in ("a", "b"):
        png, page = (tmp_path / name / layout.SHEET_FILES[f] for f in ("png", "html"))
        render_sheet(
            predictions,
            ["OK", "rest"],
            title,
            png,
            fake_history(),
            out_html=page,
            card=CARD,
            metrics={"best_epoch": 4, "epochs_run": 5},
            rule=default_rule(),
            costs=default_costs(),
        )
        outputs.append((png.read_bytes(), page.read_text(encoding="utf-8")))
    data, page = outputs[0]
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 50_000
    assert outputs[0] == outputs[1]
    assert b"Software" not in data
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(layout.SHEET_FILES.values())
    assert "data:image/png;base64," in page and "http" not in page


def test_render_multiclass_with_absent_class_and_odd_names(tmp_path: Path) -> None:
    classes = ["OK", "C$R$", "<script>alert(1)</script>", "NC"]
    predictions = fake_predictions(classes, absent=3)
    out = tmp_path / layout.SHEET_FILES["png"]
    render_sheet(
        predictions,
        classes,
        "$\\frac{1}{0}$ <b>multi</b>",
        out,
        out_html=tmp_path / "s.html",
        rule=default_rule(rule="precision", precision=0.99),
        costs=default_costs(),
    )
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>multi" not in page
    assert "does not apply" in page or "binary targets" in page


def test_render_rejects_missing_probability_column(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"]).drop(columns="prob_rest")
    with pytest.raises(ValueError, match="prob_rest"):
        render_sheet(
            predictions,
            ["OK", "rest"],
            "t",
            tmp_path / "x.png",
            rule=default_rule(),
            costs=default_costs(),
        )
    assert not (tmp_path / "x.png").exists()


def test_build_sheet_from_cell_files(tmp_path: Path) -> None:
    cell = tmp_path / layout.cell_dir("demo", "clean", "OVA_OK", "all", "cnn", 0, 1, 5)
    files = {name: cell / file for name, file in layout.CELL_FILES.items()}
    sheet = {name: cell / file for name, file in layout.SHEET_FILES.items()}
    cell.mkdir(parents=True)
    predictions = fake_predictions(["OK", "rest"])
    predictions.to_parquet(files["predictions"])
    metrics = {
        "cell": layout.parse_cell_dir(cell),
        "display_name": "cnn y=['OVA', 'OK']",
        "target": {"name": "OVA_OK", "classes": ["OK", "rest"], "members": [["OK0"], ["NC4"]]},
        "n_train": 80,
        "n_val": 20,
        "n_removed_flagged": 3,
        "best_epoch": 4,
        "epochs_run": 5,
        "test_unflagged": {"accuracy": 0.9},
    }
    files["metrics"].write_text(json.dumps(metrics))
    files["card"].write_text(json.dumps(CARD))
    fake_history().to_csv(files["history"], index=False)
    build_sheet(
        files["predictions"],
        files["metrics"],
        files["history"],
        files["card"],
        sheet["png"],
        sheet["html"],
        cutoff={**schema_report()["cutoff"], "rule": "recall", "recall": 0.9},
        costs={"OK0": -2, "NC*": 10},
        check_outputs=False,
    )
    parsed = SheetTables()
    parsed.feed(sheet["html"].read_text(encoding="utf-8"))
    card = dict(tuple(r) for r in parsed.tables["card"][1:])
    assert card["parameters"] == "4,482" and card["removed as flagged"] == "3"
    metrics_table = {r[0]: r[1:] for r in parsed.tables["metrics"][1:]}
    assert metrics_table["accuracy"][1] == "0.900"
    assert dict(tuple(r) for r in parsed.tables["cost-config"][1:]) == {
        "OK0": "-2.0",
        "NC*": "10.0",
    }
    assert sheet["png"].read_bytes().startswith(PNG_SIGNATURE)


def test_build_sheet_without_history_or_card(tmp_path: Path) -> None:
    fake_predictions(["OK", "rest"]).to_parquet(tmp_path / layout.CELL_FILES["predictions"])
    metrics = {"display_name": "bare", "target": {"classes": ["OK", "rest"]}}
    (tmp_path / layout.CELL_FILES["metrics"]).write_text(json.dumps(metrics))
    report = schema_report()
    data = build_sheet(
        tmp_path / layout.CELL_FILES["predictions"],
        tmp_path / layout.CELL_FILES["metrics"],
        None,
        tmp_path / layout.CELL_FILES["card"],  # absent: the card table says so
        tmp_path / layout.SHEET_FILES["png"],
        None,
        cutoff=report["cutoff"],
        costs=report["costs"],
        check_outputs=False,
    )
    assert data.history is None and data.card == {}
    assert data.rule == default_rule() and data.cost_table == default_costs()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [layout.CELL_FILES["predictions"], layout.CELL_FILES["metrics"], layout.SHEET_FILES["png"]]
    )


def test_build_sheet_needs_the_whole_validated_cutoff(tmp_path: Path) -> None:
    with pytest.raises(CutoffError, match="precision"):
        build_sheet(
            tmp_path / "p",
            tmp_path / "m",
            None,
            None,
            tmp_path / "s.png",
            None,
            cutoff={"rule": "recall", "recall": 0.9},
            costs={},
        )
