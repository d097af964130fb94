"""Reviewed labels: reading the patch file, applying it, and which targets it changes."""

import pandas as pd
import pytest

from spectragrid.data.label_patch import (
    LabelPatchError,
    apply_label_patch,
    patch_for_target,
    read_label_patch,
)
from spectragrid.data.targets import resolve

SEVERITIES = ["OK", "OK", "CROCHET", "VR", "NC"]


def labels(*full_truth: str) -> pd.DataFrame:
    table = pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(len(full_truth))], "full_truth": full_truth}
    )
    split = table["full_truth"].str.extract(r"(\D+)(\d+)")
    table.insert(1, "severity", split[0].astype(object))
    table.insert(2, "type", split[1].astype("int64"))
    return table


def write(path, text: str):
    path.write_text(text)
    return path


def test_a_filled_in_review_csv_is_a_patch(tmp_path):
    review = write(
        tmp_path / "review.csv",
        "sample_id,rank,given_label,suggested_label,label_quality,corrected_label,comment\n"
        "s1,1,OK,rest,0.01,VR11,tasted: defect\n"
        "s2,2,OK,rest,0.02,,not sure yet\n"
        "s3,3,rest,OK,0.03,OK0,\n",
    )
    assert read_label_patch([review], SEVERITIES) == {"s1": "VR11", "s3": "OK0"}


def test_several_patch_files_merge_and_contradictions_name_both_places(tmp_path):
    a = write(tmp_path / "a.csv", "sample_id,corrected_label\ns1,VR11\ns2,OK0\n")
    b = write(tmp_path / "b.csv", "sample_id,corrected_label\ns1,VR11\ns3,NC2\n")
    assert read_label_patch([a, b], SEVERITIES) == {"s1": "VR11", "s2": "OK0", "s3": "NC2"}
    c = write(tmp_path / "c.csv", "sample_id,corrected_label\ns2,NC2\n")
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([a, c], SEVERITIES)
    assert f"{c} line 2" in str(err.value) and f"{a} line 3" in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,label\ns1,VR11\n", "has no column sample_id, corrected_label"),
        ("sample_id,corrected_label\ns1,VR\n", "line 2: corrected label 'VR' is not a full-truth"),
        ("sample_id,corrected_label\ns1,OK0\ns2,XX3\n", "line 3: corrected label 'XX3'"),
        ("sample_id,corrected_label\n,OK0\n", "line 2: corrected label 'OK0' has no sample_id"),
    ],
)
def test_bad_patch_files_are_refused_naming_file_and_line(tmp_path, text, expected):
    path = write(tmp_path / "patch.csv", text)
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([path], SEVERITIES)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_missing_patch_file_and_one_under_results_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LabelPatchError, match=r"nowhere\.csv does not exist"):
        read_label_patch(["nowhere.csv"], SEVERITIES)
    (tmp_path / "results").mkdir()
    inside = write(tmp_path / "results" / "review.csv", "sample_id,corrected_label\n")
    with pytest.raises(LabelPatchError, match="lies under results/"):
        read_label_patch([inside], SEVERITIES)


def test_apply_replaces_full_truth_severity_and_type_of_patched_rows_only():
    table = labels("OK0", "OK0", "VR11")
    patched = apply_label_patch(table, {"s1": "NC2"})
    assert patched["full_truth"].tolist() == ["OK0", "NC2", "VR11"]
    assert patched["severity"].tolist() == ["OK", "NC", "VR"]
    assert patched["type"].tolist() == [0, 2, 11]
    assert table["full_truth"].tolist() == ["OK0", "OK0", "VR11"]  # the input is untouched


def test_apply_refuses_samples_not_in_the_dataset():
    with pytest.raises(LabelPatchError, match=r"not in the cleaned dataset.*'s9'"):
        apply_label_patch(labels("OK0", "VR11"), {"s9": "OK0"})


def test_a_target_receives_only_the_corrections_that_change_its_classes():
    table = labels("OK0", "OK0", "CROCHET0", "VR11", "VR12", "NC2", "VR11", "OK0")
    patch = {"s0": "CROCHET0", "s3": "VR12", "s5": "NC2"}
    # OK vs rest: s0 leaves OK; s3 stays in rest; s5 is confirmed as it was
    assert patch_for_target(table, patch, "ok", "OVA OK") == [["s0", "CROCHET0"]]
    # type 0 vs rest: none of the corrections moves a sample across
    assert patch_for_target(table, patch, "t0", "OVA 0") == []
    # severities: only s0 changes severity
    assert patch_for_target(table, patch, "in", "AVA IN") == [["s0", "CROCHET0"]]
    # all-vs-all types: s3 moves from type 11 to 12
    assert patch_for_target(table, patch, "ty", "AVA TY") == [["s3", "VR12"]]
    assert patch_for_target(table, {}, "ok", "OVA OK") == []


def test_a_correction_that_changes_the_class_list_counts_for_every_entry():
    table = labels("OK0", "OK0", "VR11", "VR11", "NC2")
    patch = {"s2": "VR14", "s0": "OK0"}
    before = resolve("ty", "AVA TY", table)
    after = resolve("ty", "AVA TY", apply_label_patch(table, patch))
    assert before.classes != after.classes
    assert patch_for_target(table, patch, "ty", "AVA TY") == [["s0", "OK0"], ["s2", "VR14"]]


def test_a_correction_that_empties_a_class_is_a_clear_error():
    table = labels("OK0", "OK0", "VR11")
    with pytest.raises(LabelPatchError, match="after the corrections"):
        patch_for_target(table, {"s2": "OK0"}, "ok", "OVA OK")
