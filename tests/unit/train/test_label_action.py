import numpy as np
import pandas as pd
import pytest

from spectragrid.core import layout
from spectragrid.train.label_action import (
    ISSUES_COLUMNS,
    IssuesFileError,
    apply_action,
    read_issues,
)

CLASSES = ["OK", "rest"]


@pytest.mark.parametrize("action", ["drop", "relabel", "downweight"])
def test_each_action_changes_only_training_and_validation_rows(action):
    ids = pd.Series([f"s{i}" for i in range(8)])
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    editable = np.array([True, True, True, True, True, False, False, False])  # 5-7: test fold
    issues = pd.DataFrame(
        {"sample_id": ["s1", "s2", "s6", "s7"], "suggested_label": ["rest", "OK", "rest", "OK"]}
    )
    out = apply_action(action, issues, ids, labels, CLASSES, editable, weight=0.25)
    assert out.flagged.tolist() == [False, True, True, False, False, False, True, True]
    # test rows 5-7 are untouched whatever the action
    assert out.labels[5:].tolist() == labels[5:].tolist()
    assert out.keep[5:].all() and (out.weights[5:] == 1).all()
    changed = (out.labels != labels) | ~out.keep | (out.weights != 1)
    assert np.flatnonzero(changed).tolist() == [1, 2]
    if action == "drop":
        assert out.keep.tolist() == [True, False, False, True, True, True, True, True]
    elif action == "relabel":
        assert out.labels[[1, 2]].tolist() == [1, 0]
    else:
        assert out.weights[[1, 2]].tolist() == [0.25, 0.25]


def test_downweighted_samples_count_less_in_the_loss():
    import torch

    from spectragrid.core.config import complete_model
    from spectragrid.train.losses import build_loss
    from spectragrid.train.settings import TrainSettings

    settings = TrainSettings.from_config(complete_model({"arch": "mlp"})["train"])
    loss = build_loss(settings, np.array([5, 5]))
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([1, 1])
    plain = loss(logits, targets)
    weighted = loss(logits, targets, torch.tensor([0.1, 1.0]))
    per_sample = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.isclose(weighted, (0.1 * per_sample[0] + per_sample[1]) / 2)
    assert weighted < plain


def test_unknown_actions_and_suggestions_are_refused():
    ids = pd.Series(["s0", "s1"])
    issues = pd.DataFrame({"sample_id": ["s0"], "suggested_label": ["NC"]})
    editable = np.ones(2, bool)
    with pytest.raises(ValueError, match=r"label_issues\.action: 'keep'"):
        apply_action("keep", issues, ids, np.array([0, 1]), CLASSES, editable)
    with pytest.raises(ValueError, match=r"classes \['NC'\] outside"):
        apply_action("relabel", issues, ids, np.array([0, 1]), CLASSES, editable)


def issues_path(tmp_path):
    folder = tmp_path / layout.issues_dir("demo", "OVA_OK", "all", 0, 3)
    folder.mkdir(parents=True)
    return folder / layout.ISSUES_FILES["issues"]


def test_read_issues_keeps_ids_and_class_names_as_text(tmp_path):
    path = issues_path(tmp_path)
    path.write_text(
        "sample_id,given_label,suggested_label,label_quality,rank,flagged_by\n"
        "007,0,1,0.0125,1,cnn\n"
        "12,1,0,0.25,2,\n"
    )
    issues = read_issues(path)
    assert issues["sample_id"].tolist() == ["007", "12"]
    assert issues["given_label"].tolist() == ["0", "1"]
    assert issues["label_quality"].tolist() == [0.0125, 0.25]
    assert issues["rank"].tolist() == [1, 2]
    assert list(issues.columns) == [*ISSUES_COLUMNS, "flagged_by"]


def test_read_issues_of_a_study_that_flagged_nothing(tmp_path):
    path = issues_path(tmp_path)
    path.write_text(",".join(ISSUES_COLUMNS) + "\n")
    assert read_issues(path).empty


def test_read_issues_names_the_file_it_cannot_use(tmp_path):
    path = issues_path(tmp_path)
    path.write_text("sample_id,given_label\ns0,OK\n")
    with pytest.raises(
        IssuesFileError, match=r"issues\.csv: missing column\(s\) \['suggested_label'"
    ):
        read_issues(path)
    with pytest.raises(IssuesFileError, match=r"nothing\.csv: cannot read label issues"):
        read_issues(path.with_name("nothing.csv"))


@pytest.mark.parametrize("action", ["drop", "relabel", "downweight"])
def test_rows_the_own_model_veto_spares_stay_as_they_are(action):
    ids = pd.Series(["s0", "s1", "s2", "s3"])
    labels = np.array([0, 1, 0, 1])
    editable = np.array([True, True, True, False])  # s3: test fold
    issues = pd.DataFrame(
        {
            "sample_id": ["s0", "s1", "s3"],
            "suggested_label": ["rest", "OK", "OK"],
            "acted": [True, False, False],
        }
    )
    out = apply_action(action, issues, ids, labels, CLASSES, editable, weight=0.5)
    assert out.flagged.tolist() == [True, True, False, True]
    # s1 is spared; s3 is a test row, neither acted on nor counted as spared
    assert out.spared.tolist() == [False, True, False, False]
    changed = (out.labels != labels) | ~out.keep | (out.weights != 1)
    assert np.flatnonzero(changed).tolist() == [0]
