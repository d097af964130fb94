from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.report.business_cost import CostTable
from spectragrid.report.cutoffs import CutoffRule
from spectragrid.report.jobs import build_sheet
from spectragrid.report.sheet_data import (
    confusion_with_margins,
    error_contributions,
    render_sheet,
    sheet_data,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_predictions(classes: list[str], n: int = 120, absent: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    y = rng.integers(0, len(classes), n)
    if absent is not None:
        y[y == absent] = (absent + 1) % len(classes)
    logits = rng.normal(size=(n, len(classes)))
    logits[np.arange(n), y] += 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    frame = pd.DataFrame(
        {
            "sample_id": [f"s{i}" for i in range(n)],
            "full_truth": np.array(["OK0", "VR11", "NC4", "CROCHET0"])[y % 4],
            "label": np.array(classes)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
            "flagged": np.zeros(n, bool),
        }
    )
    for i, name in enumerate(classes):
        frame[f"prob_{name}"] = proba[:, i]
    return frame


def fake_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "epoch": range(6),
            "train_loss": [math.nan, 0.9, 0.7, 0.6, 0.5, 0.45],
            "val_loss": [1.0, 0.8, 0.7, 0.65, 0.6, 0.62],
            "val_accuracy": [0.4, 0.6, 0.7, 0.72, 0.75, 0.74],
            "val_balanced_accuracy": [0.35, 0.55, 0.66, 0.7, 0.72, 0.71],
            "val_macro_f1": [0.3, 0.5, 0.6, 0.65, 0.7, 0.69],
            "lr": [1e-3] * 6,
        }
    )


CARD = {
    "parameters": 4482,
    "flops_per_sample": 280160,
    "seconds_per_epoch": 0.12,
    "train_samples_per_second": 762.2,
    "wall_seconds": 0.95,
    "device": "cpu",
    "threads": 1,
}


def test_confusion_with_margins_hand_computed() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([0, 1, 0, 1, 1, 1])
    counts, recall, precision, accuracy = confusion_with_margins(y, pred, 3)
    np.testing.assert_array_equal(counts, [[2, 1, 0], [0, 2, 0], [0, 1, 0]])
    np.testing.assert_allclose(recall, [2 / 3, 1.0, 0.0])
    # column 2 is never predicted: its precision does not exist
    np.testing.assert_allclose(precision[:2], [1.0, 0.5])
    assert math.isnan(precision[2])
    assert accuracy == pytest.approx(4 / 6)


def test_confusion_with_margins_absent_row_and_empty() -> None:
    counts, recall, precision, accuracy = confusion_with_margins(
        np.array([0, 0]), np.array([0, 1]), 3
    )
    assert counts.sum() == 2
    assert math.isnan(recall[1]) and math.isnan(recall[2])
    assert precision[0] == 1.0 and precision[1] == 0.0
    assert accuracy == 0.5
    _, _, _, empty = confusion_with_margins(np.array([], int), np.array([], int), 2)
    assert math.isnan(empty)


def test_confusion_with_margins_rejects_out_of_range() -> None:
    with pytest.raises(ValueError, match="class indices"):
        confusion_with_margins(np.array([0, 3]), np.array([0, 1]), 3)
    with pytest.raises(ValueError, match="shape"):
        confusion_with_margins(np.array([0, 1]), np.array([0]), 2)


# Error-table case: classes A, B, C.
#  i  full truth  given  proba               predicted
#  0  A1          A      .20 .70 .10          B
#  1  A1          A      .40 .50 .10          B
#  2  A2          A      .10 .10 .80          C
#  3  B0          B      .60 .30 .10          A
#  4  A1          A      .30 .30 .40          C
#  5  A1          A      .90 .05 .05          A (right)
#  6  C0          C      .50 .20 .30          A
#  7  B0          B      .70 .20 .10          A
#  8  A1          A      .35 .60 .05          B
ERR_CLASSES = ["A", "B", "C"]
ERR_TRUTH = ["A1", "A1", "A2", "B0", "A1", "A1", "C0", "B0", "A1"]
ERR_Y = np.array([0, 0, 0, 1, 0, 0, 2, 1, 0])
ERR_PROBA = np.array(
    [
        [0.20, 0.70, 0.10],
        [0.40, 0.50, 0.10],
        [0.10, 0.10, 0.80],
        [0.60, 0.30, 0.10],
        [0.30, 0.30, 0.40],
        [0.90, 0.05, 0.05],
        [0.50, 0.20, 0.30],
        [0.70, 0.20, 0.10],
        [0.35, 0.60, 0.05],
    ]
)


def test_error_contributions_hand_computed_rows_and_statistics() -> None:
    errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES)
    rows = list(errors[["full_truth", "predicted", "count"]].itertuples(index=False, name=None))
    # largest count first; ties by full truth, then predicted class
    assert rows == [("A1", "B", 3), ("B0", "A", 2), ("A1", "C", 1), ("A2", "C", 1), ("C0", "A", 1)]
    assert errors["share"].tolist() == pytest.approx([3 / 8, 2 / 8, 1 / 8, 1 / 8, 1 / 8])
    first = errors.iloc[0]  # samples 0, 1, 8
    assert first["p_true_mean"] == pytest.approx((0.20 + 0.40 + 0.35) / 3)
    assert first["p_true_sd"] == pytest.approx(np.std([0.20, 0.40, 0.35], ddof=1))
    assert first["p_pred_mean"] == pytest.approx(0.6)
    assert first["p_pred_sd"] == pytest.approx(0.1)
    second = errors.iloc[1]  # samples 3, 7
    assert second["p_true_mean"] == pytest.approx(0.25)
    assert second["p_pred_mean"] == pytest.approx(0.65)
    assert second["p_true_sd"] == pytest.approx(np.std([0.3, 0.2], ddof=1))
    # single-sample groups: their own scores, and no sd
    singles = errors.iloc[2:].set_index(["full_truth", "predicted"])
    assert singles.loc[("A1", "C"), "p_true_mean"] == pytest.approx(0.30)
    assert singles.loc[("A1", "C"), "p_pred_mean"] == pytest.approx(0.40)
    assert singles.loc[("A2", "C"), "p_true_mean"] == pytest.approx(0.10)
    assert singles.loc[("A2", "C"), "p_pred_mean"] == pytest.approx(0.80)
    assert singles.loc[("C0", "A"), "p_true_mean"] == pytest.approx(0.30)
    assert singles.loc[("C0", "A"), "p_pred_mean"] == pytest.approx(0.50)
    assert singles["p_true_sd"].isna().all()


def test_error_contributions_after_cutoffs_leave_abstentions_out() -> None:
    keep = np.array([True, False, True, True, True, True, False, True, True])
    errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, keep=keep)
    rows = list(errors[["full_truth", "predicted", "count"]].itertuples(index=False, name=None))
    assert rows == [("A1", "B", 2), ("B0", "A", 2), ("A1", "C", 1), ("A2", "C", 1)]
    assert errors["share"].tolist() == pytest.approx([2 / 6, 2 / 6, 1 / 6, 1 / 6])
    assert errors.iloc[0]["p_true_mean"] == pytest.approx((0.20 + 0.35) / 2)
    assert errors.iloc[0]["p_pred_mean"] == pytest.approx((0.70 + 0.60) / 2)
    none = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, keep=np.zeros(9, bool))
    assert none.empty and list(none.columns)[:3] == ["full_truth", "predicted", "count"]


def err_predictions() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "sample_id": [f"e{i}" for i in range(9)],
            "full_truth": ERR_TRUTH,
            "label_index": ERR_Y,
        }
    )
    for j, name in enumerate(ERR_CLASSES):
        frame[f"prob_{name}"] = ERR_PROBA[:, j]
    return frame


def test_sheet_data_cutoffs_abstentions_and_after_matrix_agree() -> None:
    data = sheet_data(err_predictions(), ERR_CLASSES, "t", rule=CutoffRule())
    # class A on p(A): given A 0.2 .4 .1 .3 .9 .35 vs others .6 .5 .7 -> best product at 0.9
    # (TPR 1/6, FPR 0 -> 1/6) vs 0.35 (TPR 3/6, FPR 1 -> 0)... checked through the rule itself
    cuts = [c.cutoff for c in data.cutoffs]
    pred = ERR_PROBA.argmax(axis=1)
    expected = np.array(
        [
            ERR_PROBA[i, pred[i]] < cuts[pred[i]] if not math.isnan(cuts[pred[i]]) else False
            for i in range(9)
        ]
    )
    np.testing.assert_array_equal(data.abstain, expected)
    counts, _, _, accuracy = confusion_with_margins(ERR_Y[~expected], pred[~expected], 3)
    np.testing.assert_array_equal(data.after.counts, counts)
    assert data.after.accuracy == pytest.approx(accuracy, nan_ok=True)
    assert data.abstention_rate == pytest.approx(expected.mean())
    for c, row in data.per_class.iterrows():
        mine = np.equal(ERR_Y, c)
        assert row["kept"] == pytest.approx(np.mean(ERR_PROBA[mine, c] >= cuts[c]))
        assert row["abstained"] == pytest.approx(expected[mine].mean())
    expected_errors = error_contributions(ERR_TRUTH, ERR_Y, ERR_PROBA, ERR_CLASSES, ~expected)
    pd.testing.assert_frame_equal(data.errors_after, expected_errors)
    assert data.cost is None and "binary" in data.cost_note


def test_sheet_data_binary_has_a_cost_curve() -> None:
    predictions = fake_predictions(["OK", "rest"])
    data = sheet_data(predictions, ["OK", "rest"], "t", costs=CostTable.from_config({"OK0": -1}))
    assert data.cost is not None
    assert data.cost.unmatched == ["VR11"]  # binary y: OK0 and VR11 only
    assert data.per_class["class"].tolist() == ["OK", "rest"]


def test_render_binary_sheet_is_deterministic(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"])
    title = "cnn y=['OVA', 'OK'] c=('277', '380', '425') t=() 0-5 s=0 eps=0.0"
    outputs = []
    for name in ("a", "b"):
        png, page = tmp_path / name / "sheet.png", tmp_path / name / "sheet.html"
        render_sheet(
            predictions,
            ["OK", "rest"],
            title,
            png,
            fake_history(),
            out_html=page,
            card=CARD,
            metrics={"best_epoch": 4, "epochs_run": 5},
        )
        outputs.append((png.read_bytes(), page.read_text(encoding="utf-8")))
    data, page = outputs[0]
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 50_000
    assert outputs[0] == outputs[1]
    assert b"Software" not in data
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["sheet.html", "sheet.png"]
    assert "data:image/png;base64," in page and "http" not in page


class Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.scripts = 0
        self._table: list | None = None
        self._row: list | None = None
        self._cell: list | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def test_html_sheet_tables_match_the_numbers(tmp_path: Path) -> None:
    out = tmp_path / "sheet.html"
    data = render_sheet(
        err_predictions(), ERR_CLASSES, "three classes", tmp_path / "sheet.png", out_html=out
    )
    parsed = Tables()
    parsed.feed(out.read_text(encoding="utf-8"))
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


def test_render_multiclass_with_absent_class_and_odd_names(tmp_path: Path) -> None:
    classes = ["OK", "C$R$", "<script>alert(1)</script>", "NC"]
    predictions = fake_predictions(classes, absent=3)
    out = tmp_path / "sheet.png"
    render_sheet(
        predictions,
        classes,
        "$\\frac{1}{0}$ <b>multi</b>",
        out,
        out_html=tmp_path / "s.html",
        rule=CutoffRule("precision", precision=0.99),
    )
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>multi" not in page
    assert "does not apply" in page or "binary targets" in page


def test_render_rejects_missing_probability_column(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"]).drop(columns="prob_rest")
    with pytest.raises(ValueError, match="prob_rest"):
        render_sheet(predictions, ["OK", "rest"], "t", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_build_sheet_from_cell_files(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"])
    predictions.to_parquet(tmp_path / "predictions.parquet")
    metrics = {
        "cell": {
            "dataset": "demo",
            "labels": "clean",
            "target": "OVA_OK",
            "channels": "all",
            "model": "cnn",
            "seed": 0,
            "fold": 1,
            "k": 5,
        },
        "display_name": "cnn y=['OVA', 'OK']",
        "target": {"name": "OVA_OK", "classes": ["OK", "rest"], "members": [["OK0"], ["NC4"]]},
        "n_train": 80,
        "n_val": 20,
        "n_removed_flagged": 3,
        "best_epoch": 4,
        "epochs_run": 5,
        "test_unflagged": {"accuracy": 0.9},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "card.json").write_text(json.dumps(CARD))
    fake_history().to_csv(tmp_path / "history.csv", index=False)
    build_sheet(
        tmp_path / "predictions.parquet",
        tmp_path / "metrics.json",
        tmp_path / "history.csv",
        tmp_path / "card.json",
        tmp_path / "sheet.png",
        tmp_path / "sheet.html",
        cutoff={"rule": "recall", "recall": 0.9},
        costs={"OK0": -2, "NC*": 10},
    )
    parsed = Tables()
    parsed.feed((tmp_path / "sheet.html").read_text(encoding="utf-8"))
    card = dict(tuple(r) for r in parsed.tables["card"][1:])
    assert card["parameters"] == "4,482" and card["removed as flagged"] == "3"
    metrics_table = {r[0]: r[1:] for r in parsed.tables["metrics"][1:]}
    assert metrics_table["accuracy"][1] == "0.900"
    assert dict(tuple(r) for r in parsed.tables["cost-config"][1:]) == {
        "OK0": "-2.0",
        "NC*": "10.0",
    }
