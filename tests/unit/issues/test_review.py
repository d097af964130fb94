import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oof_cases import CLASSES, DATASET, prediction_file, write_cells

from spectragrid.core import layout
from spectragrid.data.targets import Target
from spectragrid.issues.review import (
    AGREEMENT_COLUMNS,
    REVIEW_COLUMNS,
    flagged_overlap,
    issues_coordinates,
    issues_name,
    model_agreement,
    review_table,
    write_review_csv,
)

K = 3
FLAGGED = ["s000", "s003", "s007"]
TARGET = Target("OVA_OK", "OVA OK", ("OK", "rest"), (("OK0",), ("VR11", "NC4")))


def write_issues(work: Path, flagged: list[str], seed: int = 0) -> Path:
    folder = work / layout.issues_dir(DATASET, "OVA_OK", "all", seed, K)
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "sample_id": flagged,
            "given_label": "OK",
            "suggested_label": "rest",
            "label_quality": np.linspace(0.01, 0.2, len(flagged)),
            "rank": range(1, len(flagged) + 1),
        }
    ).to_csv(folder / layout.ISSUES_FILES["issues"], index=False)
    return folder / layout.ISSUES_FILES["issues"]


def raw_cells(work: Path, base: Path) -> pd.DataFrame:
    """The summary's view of model m's raw cells: coordinates, classes, predictions."""
    rows = []
    for fold in range(K):
        path = prediction_file(work, fold, K)
        rows.append(
            {
                **layout.parse_cell_dir(path.parent),
                "classes": json.dumps(CLASSES),
                "predictions": path.relative_to(base).as_posix(),
            }
        )
    return pd.DataFrame(rows)


def test_issues_coordinates_come_from_the_layout():
    path = Path(layout.issues_dir(DATASET, "OVA_OK", "all", 42, 20)) / layout.ISSUES_FILES["issues"]
    coords = issues_coordinates(path)
    assert coords == {"target": "OVA_OK", "channels": "all", "seed": 42, "k": 20}
    assert issues_name(coords) == "issues_OVA_OK_all_s42_k20"
    with pytest.raises(layout.LayoutError, match="label_issues"):
        issues_coordinates(Path("results/demo/label_issues/OVA_OK/s42/k20/issues.csv"))
    with pytest.raises(layout.LayoutError, match=r"issues\.csv"):
        issues_coordinates(path.with_name(layout.ISSUES_FILES["oof"]))


def test_agreement_and_overlap_of_flagged_sets(tmp_path):
    write_cells(tmp_path, k=K)
    base = tmp_path / layout.RESULTS
    issues_path = write_issues(tmp_path, FLAGGED)
    other = write_issues(tmp_path, ["s000", "s010"], seed=1)
    overlap = flagged_overlap([issues_path, other])
    row = overlap.iloc[0]
    assert (row["n_a"], row["n_b"], row["n_both"]) == (3, 2, 1)
    assert row["jaccard"] == pytest.approx(1 / 4)
    agreement = model_agreement([issues_path], raw_cells(tmp_path, base), base)
    assert agreement["model"].tolist() == ["m"]
    assert list(agreement.columns) == list(AGREEMENT_COLUMNS)
    predictions = pd.concat(pd.read_parquet(prediction_file(tmp_path, f, K)) for f in range(K))
    mine = predictions[predictions.sample_id.isin(FLAGGED)]
    disagree = (mine.pred_index != mine.label_index).mean()
    assert agreement.iloc[0]["flagged_model_disagrees"] == pytest.approx(disagree)
    assert agreement.iloc[0]["n_predicted"] == 3
    rest = predictions[~predictions.sample_id.isin(FLAGGED)]
    assert agreement.iloc[0]["unflagged_model_disagrees"] == pytest.approx(
        (rest.pred_index != rest.label_index).mean()
    )
    suggests = (np.array(CLASSES)[mine.pred_index] == "rest").mean()
    assert agreement.iloc[0]["flagged_model_suggests"] == pytest.approx(suggests)


def test_agreement_leaves_out_files_of_other_grid_points_and_missing_predictions(tmp_path):
    write_cells(tmp_path, k=K)
    base = tmp_path / layout.RESULTS
    cells = raw_cells(tmp_path, base)
    seed1 = write_issues(tmp_path, FLAGGED, seed=1)  # no raw cell of seed 1
    assert model_agreement([seed1], cells, base).empty
    lost = cells.assign(predictions="nowhere.parquet")
    assert model_agreement([write_issues(tmp_path, FLAGGED)], lost, base).empty


def test_review_table_by_rank_with_given_and_true_full_truth():
    issues = pd.DataFrame(
        {
            "sample_id": ["b", "a", "c"],
            "given_label": ["OK", "rest", "OK"],
            "suggested_label": ["rest", "OK", "rest"],
            "label_quality": [0.2, 0.1, 0.3],
            "rank": [2, 1, 3],
        }
    )
    given = pd.Series({"a": "VR11", "b": "OK0", "c": "OK0"})
    true = pd.Series({"a": "OK0", "b": "OK0", "c": "XX1"})
    table = review_table(issues, given, true, TARGET)
    assert table["sample_id"].tolist() == ["a", "b", "c"]
    assert table["given_full_truth"].tolist() == ["VR11", "OK0", "OK0"]
    assert table["true_full_truth"].tolist() == ["OK0", "OK0", "XX1"]
    # c's true full truth is outside the target: it cannot be judged
    assert table["truly_mislabelled"].tolist() == ["yes", "no", ""]
    untrue = review_table(issues, given, None, TARGET)
    assert "true_full_truth" not in untrue and "truly_mislabelled" not in untrue


def test_review_csv_leaves_the_reviewer_columns_empty(tmp_path):
    table = review_table(
        pd.DataFrame(
            {
                "sample_id": ["007", "12"],
                "given_label": ["OK", "rest"],
                "suggested_label": ["rest", "OK"],
                "label_quality": [0.0123456789, 0.5],
                "rank": [1, 2],
                "flagged_by": ["cnn;mlp", "cnn"],
            }
        ),
        pd.Series({"007": "OK0", "12": "VR11"}),
        pd.Series({"007": "VR11", "12": "VR11"}),
        TARGET,
    )
    path = tmp_path / f"{issues_name({'target': 'T', 'channels': 'c', 'seed': 0, 'k': 3})}.csv"
    write_review_csv(table, path)
    review = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(review.columns) == [*REVIEW_COLUMNS, "corrected_label", "comment"]
    assert review["sample_id"].tolist() == ["007", "12"]
    assert review["label_quality"].tolist() == ["0.0123457", "0.5"]
    assert (review["corrected_label"] == "").all() and (review["comment"] == "").all()
    assert "true_full_truth" not in review  # what the reviewer is to find out


def test_a_formula_like_sample_id_is_text_in_the_review_csv_and_patches_back_exactly(tmp_path):
    from spectragrid.data.label_patch import read_label_patch

    dangerous = '=HYPERLINK("http://example.invalid/","x")'
    table = review_table(
        pd.DataFrame(
            {
                "sample_id": [dangerous, "@A1"],
                "given_label": ["OK", "rest"],
                "suggested_label": ["rest", "OK"],
                "label_quality": [0.01, 0.5],
                "rank": [1, 2],
                "flagged_by": ["cnn", "cnn"],
            }
        ),
        pd.Series({dangerous: "OK0", "@A1": "VR11"}),
        None,
        TARGET,
    )
    path = tmp_path / "review.csv"
    write_review_csv(table, path)
    text = path.read_text()
    assert "'=HYPERLINK" in text and "'@A1" in text
    # the reviewer fills in corrected_label; the file is then a label patch
    review = pd.read_csv(path, dtype=str, keep_default_na=False)
    review["corrected_label"] = ["VR11", "OK0"]
    review.to_csv(path, index=False)
    patch = read_label_patch([path], severities=["OK", "CROCHET", "VR", "NC"])
    assert patch == {dangerous: "VR11", "@A1": "OK0"}
