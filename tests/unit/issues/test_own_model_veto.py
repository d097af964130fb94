import pandas as pd
import pytest
from oof_cases import issues_outputs, write_cells

from spectragrid.issues.find import write_issues
from spectragrid.train.label_action import ISSUES_COLUMNS, IssuesSource
from spectragrid.train.output_checksums import CorruptOutputError
from spectragrid.train.own_model_veto import VetoError, read_acted_issues


def flag(work, ids: list[str], given: list[str]):
    """An issues file flagging `ids`, with their given labels."""
    path = issues_outputs(work)["issues"]
    path.parent.mkdir(parents=True, exist_ok=True)
    issues = pd.DataFrame(
        {
            "sample_id": ids,
            "given_label": given,
            "suggested_label": ["rest" if g == "OK" else "OK" for g in given],
            "label_quality": [0.01 * (i + 1) for i in range(len(ids))],
            "rank": list(range(1, len(ids) + 1)),
        }
    )
    write_issues(path, issues)
    return path


def acted(issues_path, files):
    # the cells here are written by the test, without checksums
    return read_acted_issues(IssuesSource(issues_path, tuple(files)), check_outputs=False)


def given_and_predicted(files):
    table = pd.concat(pd.read_parquet(f) for f in files).set_index("sample_id")
    return table["label"], table["pred_index"] == table["label_index"]


def test_the_model_spares_the_flagged_samples_it_predicts_as_given(tmp_path):
    wrong = [0, 25, 50]
    files, ids = write_cells(tmp_path, wrong=wrong)
    label, agrees = given_and_predicted(files)
    # three planted flips the model contradicts, and three samples it predicts as given
    consistent = [s for s in ids if agrees[s] and int(s[1:]) not in wrong][:3]
    flagged = [ids[i] for i in wrong] + consistent
    issues_path = flag(tmp_path, flagged, label[flagged].tolist())
    marked = acted(issues_path, files)
    assert list(marked.columns) == [*ISSUES_COLUMNS, "acted"]
    assert dict(zip(marked["sample_id"], marked["acted"], strict=True)) == {
        **{ids[i]: True for i in wrong},
        **{s: False for s in consistent},
    }
    # without the veto's evidence, the issues as they are
    alone = read_acted_issues(IssuesSource(issues_path))
    assert "acted" not in alone and alone["sample_id"].tolist() == flagged


def test_a_study_that_flagged_nothing_acts_on_nothing(tmp_path):
    files, _ = write_cells(tmp_path)
    marked = acted(flag(tmp_path, [], []), files)
    assert marked.empty and "acted" in marked


def test_a_flagged_sample_without_a_raw_prediction_is_refused(tmp_path):
    files, ids = write_cells(tmp_path)
    issues_path = flag(tmp_path, [ids[0], "nobody"], ["OK", "OK"])
    with pytest.raises(VetoError, match=r"issues\.csv: 1 flagged sample\(s\) .* 'nobody'"):
        acted(issues_path, files)


def test_issues_from_other_labels_than_the_raw_cells_are_refused(tmp_path):
    files, ids = write_cells(tmp_path)
    label, _ = given_and_predicted(files)
    other = "rest" if label[ids[4]] == "OK" else "OK"
    issues_path = flag(tmp_path, [ids[4]], [other])
    with pytest.raises(VetoError, match=rf"sample '{ids[4]}': the issues give label '{other}'"):
        acted(issues_path, files)


def test_overlapping_test_folds_are_refused(tmp_path):
    files, ids = write_cells(tmp_path)
    issues_path = flag(tmp_path, [ids[0]], ["OK"])
    with pytest.raises(VetoError, match="predicted by more than one cell"):
        acted(issues_path, [files[0], files[0], files[1]])


def test_raw_predictions_that_do_not_match_their_checksums_are_refused(tmp_path):
    files, ids = write_cells(tmp_path)
    issues_path = flag(tmp_path, [ids[0]], ["OK"])
    with pytest.raises(CorruptOutputError):
        read_acted_issues(IssuesSource(issues_path, tuple(files)))
