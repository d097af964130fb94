from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_cases import (
    CLASSES,
    DATASET,
    SAMPLE_IDS,
    TARGET,
    TRUE,
    K,
    truth_frame,
    write_cell,
    write_grid,
)

from spectragrid.core import layout
from spectragrid.core.metrics import METRIC_NAMES, classification_metrics
from spectragrid.report.summary_tables import (
    COORDINATES,
    GROUP_KEYS,
    PAIR_KEYS,
    SummaryError,
    add_truth_metrics,
    aggregate,
    best_per_target,
    cell_coordinates,
    errors_by_truth,
    folds_of,
    load_cells,
    lower_is_better,
    mean_of,
    pooled_predictions,
    sd_of,
    target_of,
    write_tables,
)


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def predictions_of(metrics_path: Path) -> Path:
    return metrics_path.parent / layout.CELL_FILES["predictions"]


def test_grid_keys_follow_the_layout() -> None:
    assert COORDINATES == layout.CELL_COORDINATES
    assert GROUP_KEYS == ("dataset", "labels", "target", "channels", "model", "seed", "k")
    assert PAIR_KEYS == ("dataset", "target", "channels", "model", "seed", "k")


def test_load_cells_reads_coordinates_metrics_costs_and_links(grid) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    assert len(cells) == 2 * K
    assert list(cells[["labels", "fold"]].itertuples(index=False, name=None))[:2] == [
        ("clean", 0),
        ("clean", 1),
    ]
    assert cells["seed"].dtype == np.int64 and cells["k"].eq(K).all()
    raw0 = cells[(cells.labels == "raw") & (cells.fold == 0)].iloc[0]
    metrics = json.loads(paths[0].read_text())
    for name in METRIC_NAMES:
        assert raw0[f"test_{name}"] == pytest.approx(metrics["test"][name], nan_ok=True)
        assert math.isnan(raw0[f"unflagged_{name}"])
    clean = cells[cells.labels == "clean"].set_index("fold")
    assert clean["unflagged_accuracy"].notna().all()
    assert clean["n_removed_flagged"].eq(3).all()
    assert raw0["parameters"] == 1234 and raw0["device"] == "cpu"
    assert raw0["wall_seconds"] == 3.0
    assert math.isnan(clean.loc[0, "wall_seconds"]) and pd.isna(clean.loc[0, "device"])
    raw0_key = layout.results_key(
        layout.cell_dir(DATASET, "raw", TARGET.name, "all", "cnn", 0, 0, K)
    )
    assert raw0["sheet"] == f"{raw0_key}/{layout.SHEET_FILES['png']}"
    assert raw0["predictions"].endswith(f"f0of5/{layout.CELL_FILES['predictions']}")
    assert pd.isna(raw0["onnx"])  # no model.onnx written: no broken link
    assert pd.isna(clean.loc[1, "sheet"])
    assert raw0["onnx_max_abs_diff"] == pytest.approx(2e-8)
    assert json.loads(raw0["classes"]) == CLASSES


def test_load_cells_rejects_bad_files(tmp_path: Path) -> None:
    path = write_cell(tmp_path, "raw", 0)
    with pytest.raises(SummaryError, match="same cell"):
        load_cells([path, path], tmp_path)
    metrics = json.loads(path.read_text())
    del metrics["cell"]["fold"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(SummaryError, match="fold"):
        load_cells([path], tmp_path)
    path.write_text("{not json")
    with pytest.raises(SummaryError, match=r"metrics\.json"):
        load_cells([path], tmp_path)
    assert load_cells([], tmp_path).empty


def test_truth_metrics_score_against_noise_free_labels(grid) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    raw0 = cells[(cells.labels == "raw") & (cells.fold == 0)].iloc[0]
    predictions = pd.read_parquet(predictions_of(paths[0]))
    truth = dict(zip(SAMPLE_IDS, TRUE, strict=True))
    y_true = TARGET.encode(predictions["sample_id"].map(truth))
    proba = predictions[["prob_OK", "prob_rest"]].to_numpy()
    expected = classification_metrics(y_true, proba)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auc"):
        assert raw0[f"truth_{name}"] == pytest.approx(expected[name])
    # fold 0 holds s000-s004, s025-s029, ...: s000 and s003 are mislabelled, 2 of 20
    assert raw0["n_test_truth"] == 20
    assert raw0["noise_rate_test"] == pytest.approx(2 / 20)
    without = add_truth_metrics(load_cells(paths, base), None, paths)
    assert without["truth_accuracy"].isna().all()


def test_truth_metrics_build_full_truth_from_severity_and_type(grid) -> None:
    base, paths = grid
    truth = truth_frame().drop(columns="full_truth")
    cells = add_truth_metrics(load_cells(paths, base), truth, paths)
    assert cells["truth_accuracy"].notna().all()


def test_aggregate_mean_and_sd_over_folds(grid) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    agg = aggregate(cells)
    assert list(agg["labels"]) == ["clean", "raw"]
    assert agg["n_folds"].eq(K).all()
    raw = agg[agg.labels == "raw"].iloc[0]
    values = cells.loc[cells.labels == "raw", "test_macro_f1"]
    assert raw["test_macro_f1_mean"] == pytest.approx(values.mean())
    assert raw["test_macro_f1_sd"] == pytest.approx(values.std(ddof=1))
    assert math.isnan(raw["unflagged_accuracy_mean"])
    single = aggregate(cells[cells.fold == 0])
    assert single["n_folds"].eq(1).all() and single["test_accuracy_sd"].isna().all()


def test_write_tables_round_trip(grid, tmp_path: Path) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    out = tmp_path / "out"
    out_csv, out_parquet = out / "summary.csv", out / "summary.parquet"
    write_tables(cells, out_csv, out_parquet)
    back = pd.read_parquet(out_parquet)
    assert len(back) == len(cells) and list(back.columns) == list(cells.columns)
    assert back["test_accuracy"].tolist() == pytest.approx(cells["test_accuracy"].tolist())
    assert len(pd.read_csv(out_csv)) == len(cells)
    assert sorted(p.name for p in out_csv.parent.iterdir()) == ["summary.csv", "summary.parquet"]


def test_errors_by_truth_hand_computed() -> None:
    predictions = pd.DataFrame(
        {
            "full_truth": ["OK0", "OK0", "OK0", "VR2", "VR2", "NC4"],
            "label_index": [0, 0, 0, 1, 1, 1],
            "pred_index": [0, 1, 1, 0, 1, 0],
        }
    )
    table = errors_by_truth(predictions, ["OK", "rest"])
    assert table["full_truth"].tolist() == ["OK0", "NC4", "VR2"]
    assert table["n"].tolist() == [3, 1, 2]
    assert table["n_errors"].tolist() == [2, 1, 1]
    assert table["error_rate"].tolist() == pytest.approx([2 / 3, 1.0, 0.5])
    assert table["top_wrong"].tolist() == ["rest", "OK", "OK"]
    assert errors_by_truth(predictions.iloc[0:0], ["OK", "rest"]).empty


def test_best_per_target_and_direction(grid) -> None:
    base, paths = grid
    agg = aggregate(load_cells(paths, base))
    best = best_per_target(agg, "test_macro_f1")
    assert len(best) == 2 and set(best["labels"]) == {"raw", "clean"}
    assert lower_is_better("test_log_loss") and lower_is_better("truth_ece")
    assert not lower_is_better("test_macro_f1")
    with pytest.raises(ValueError, match="best_metric"):
        best_per_target(agg, "test_nonsense")


def test_cell_coordinates_and_target_of_a_metrics_file(grid) -> None:
    _, paths = grid
    coordinates = cell_coordinates(paths[K + 2])  # the clean cell of fold 2
    assert coordinates == layout.parse_cell_dir(paths[K + 2].parent)
    assert coordinates["labels"] == "clean" and coordinates["fold"] == 2
    assert target_of(json.loads(paths[0].read_text())) == TARGET
    with pytest.raises(SummaryError, match="needs name, classes and members"):
        target_of({"target": {"name": "OVA_OK"}}, paths[0])


def test_fold_mean_and_sd_skip_what_is_missing() -> None:
    values = pd.Series([0.5, math.nan, 0.7])
    assert mean_of(values) == pytest.approx(0.6)
    assert sd_of(values) == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert math.isnan(sd_of(pd.Series([0.5]))) and math.isnan(mean_of(pd.Series([math.nan])))


def test_pooled_predictions_of_a_grid_point(grid) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    point = cells[cells.labels == "raw"].iloc[0]
    folds = folds_of(cells, point)
    assert folds["fold"].tolist() == list(range(K)) and (folds["labels"] == "raw").all()
    predictions, classes = pooled_predictions(folds, base)
    assert classes == CLASSES
    assert sorted(predictions["sample_id"]) == SAMPLE_IDS  # the folds cover every sample once
