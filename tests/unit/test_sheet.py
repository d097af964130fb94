from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.sheet import (
    best_cutoff,
    confusion_with_margins,
    per_class_rows,
    render_sheet,
    top_errors,
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
            "val_macro_f1": [0.3, 0.5, 0.6, 0.65, 0.7, 0.69],
            "lr": [1e-3] * 6,
        }
    )


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


def test_best_cutoff_maximises_specificity_times_sensitivity() -> None:
    is_class = np.array([True, True, True, False, False, False])
    score = np.array([0.9, 0.8, 0.3, 0.4, 0.2, 0.1])
    cutoff, kept, fpr = best_cutoff(is_class, score)
    # at 0.8: TPR 2/3, FPR 0 -> 0.667; at 0.3: TPR 1, FPR 1/3 -> 0.667; first maximum wins
    assert (1 - fpr) * kept == pytest.approx(2 / 3)
    assert cutoff in (0.8, 0.3)
    assert all(math.isnan(v) for v in best_cutoff(np.ones(3, bool), np.ones(3)))


def test_top_errors_groups_by_truth_and_prediction() -> None:
    classes = ["OK", "rest"]
    predictions = pd.DataFrame(
        {
            "full_truth": ["OK0", "OK0", "VR2", "NC4", "OK0"],
            "label_index": [0, 0, 1, 1, 0],
        }
    )
    proba = np.array([[0.2, 0.8], [0.4, 0.6], [0.7, 0.3], [0.1, 0.9], [0.9, 0.1]])
    errors = top_errors(predictions, predictions["label_index"].to_numpy(), proba, classes)
    assert list(errors["full_truth"]) == ["OK0", "VR2"]
    assert list(errors["predicted"]) == ["rest", "OK"]
    assert list(errors["n_errors"]) == [2, 1]
    assert errors["share"].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert errors.loc[0, "p_true_mean"] == pytest.approx(0.3)


def test_per_class_rows_handle_absent_class() -> None:
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.4, 0.1]])
    rows = per_class_rows(y, proba, ["a", "b", "c"])
    assert [r[0] for r in rows] == ["a", "b", "c"]
    assert rows[2][1] == "0" and rows[2][4] == "–"
    assert rows[0][2] == "100.0%"  # recall of "a"


def test_render_binary_sheet_is_deterministic(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"])
    first, second = tmp_path / "a" / "sheet.png", tmp_path / "b" / "sheet.png"
    title = "cnn y=['OVA', 'OK'] c=('277', '380', '425') t=() 0-5 s=0 eps=0.0"
    render_sheet(predictions, ["OK", "rest"], title, first, history=fake_history())
    render_sheet(predictions, ["OK", "rest"], title, second, history=fake_history())
    data = first.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 20_000
    assert data == second.read_bytes()
    assert b"Software" not in data
    assert sorted(p.name for p in first.parent.iterdir()) == ["sheet.png"]


def test_render_multiclass_with_absent_class_and_odd_names(tmp_path: Path) -> None:
    classes = ["OK", "C$R$", "<script>alert(1)</script>", "NC"]
    predictions = fake_predictions(classes, absent=3)
    out = tmp_path / "sheet.png"
    render_sheet(predictions, classes, "$\\frac{1}{0}$ multi", out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_render_rejects_missing_probability_column(tmp_path: Path) -> None:
    predictions = fake_predictions(["OK", "rest"]).drop(columns="prob_rest")
    with pytest.raises(ValueError, match="prob_rest"):
        render_sheet(predictions, ["OK", "rest"], "t", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
