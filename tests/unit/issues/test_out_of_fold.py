import numpy as np
import pandas as pd
import pytest
from oof_cases import CLASSES, folds_file, issue_settings, write_cells

from spectragrid.issues.find import find_issues
from spectragrid.issues.out_of_fold import (
    OOFError,
    assemble_oof,
    check_out_of_fold,
    mean_oof,
    prob_columns,
)


def test_prob_columns_follow_the_class_order():
    assert prob_columns(["rest", "OK"]) == ["prob_rest", "prob_OK"]


def test_oof_covers_every_sample_once(tmp_path):
    files, ids = write_cells(tmp_path)
    oof = assemble_oof(files, CLASSES, pd.Series(ids))
    assert len(oof) == len(ids) and oof["sample_id"].is_unique


def test_a_sample_predicted_twice_fails(tmp_path):
    files, ids = write_cells(tmp_path)
    with pytest.raises(OOFError, match="more than one out-of-fold prediction"):
        assemble_oof([*files, files[0]], CLASSES, pd.Series(ids))


def test_a_missing_fold_fails(tmp_path):
    files, ids = write_cells(tmp_path)
    with pytest.raises(OOFError, match="no out-of-fold prediction"):
        assemble_oof(files[:-1], CLASSES, pd.Series(ids))


def test_cells_with_other_classes_fail(tmp_path):
    files, _ = write_cells(tmp_path)
    with pytest.raises(OOFError, match="no column 'prob_NC'"):
        assemble_oof(files, ["OK", "NC"])


def test_a_leaked_prediction_is_caught(tmp_path):
    files, _ = write_cells(tmp_path)
    folds = pd.read_parquet(folds_file(tmp_path))
    oof = assemble_oof(files, CLASSES)
    oof["cell_fold"] = oof["source"].map({str(f): i for i, f in enumerate(files)})
    check_out_of_fold(oof, folds)  # genuine: passes
    # the cell of fold 1 "predicts" a sample of fold 0, i.e. one it trained on
    leaked = oof.copy()
    leaked.loc[leaked["cell_fold"] == 0, "cell_fold"] = 1
    with pytest.raises(OOFError, match="not out-of-fold"):
        check_out_of_fold(leaked, folds)


def test_mean_of_models_averages_probabilities(tmp_path):
    files, _ = write_cells(tmp_path)
    a = assemble_oof(files, CLASSES)
    b = a.copy()
    b["prob_OK"], b["prob_rest"] = 0.5, 0.5
    mean = mean_oof([a, b], CLASSES)
    assert np.allclose(mean["prob_OK"], (a["prob_OK"] + 0.5) / 2)
    assert len(find_issues(mean, CLASSES, **issue_settings())) >= 0


def test_models_that_predict_other_samples_are_not_averaged(tmp_path):
    files, _ = write_cells(tmp_path)
    a = assemble_oof(files, CLASSES)
    with pytest.raises(OOFError, match="same samples"):
        mean_oof([a, a.iloc[1:]], CLASSES)
