"""Reviewed labels: reading the patch file, applying it, and which targets it changes."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from spectragrid.data.label_patch import (
    MAX_PATCH_BYTES,
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


# --- paths that are not a readable patch file ----------------------------------------------


def test_paths_that_are_not_regular_files_say_what_they_are(tmp_path, no_hang):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "dangling.csv").symlink_to(tmp_path / "gone.csv")
    expected = {
        "fifo.csv": "is a named pipe (FIFO), not a regular CSV file",
        "folder.csv": "is a directory, not a regular CSV file",
        "dangling.csv": f"no such file (a link to {tmp_path / 'gone.csv'}, which does not exist)",
    }
    for name, said in expected.items():
        with pytest.raises(LabelPatchError) as err:
            read_label_patch([tmp_path / name], SEVERITIES)
        assert str(err.value) == f"dataset.label_patch: {tmp_path / name}: {said}"


_READ_AS_NOBODY = """
import os, sys
from spectragrid.data.label_patch import LabelPatchError, read_label_patch
if os.geteuid() == 0:
    # root reads every file: drop to nobody, once the imports are done
    os.setgid(65534)
    os.setuid(65534)
try:
    read_label_patch([sys.argv[1]], ["OK"])
    print("read")
except LabelPatchError as err:
    print(err)
"""


def test_an_unreadable_patch_is_named(tmp_path):
    folder = Path(tempfile.mkdtemp())  # outside pytest's folder, which only root may enter
    try:
        folder.chmod(0o755)
        patch = folder / "review.csv"
        patch.write_text("sample_id,corrected_label\ns1,OK0\n")
        patch.chmod(0)
        proc = subprocess.run(
            [sys.executable, "-c", _READ_AS_NOBODY, str(patch)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == (
            f"dataset.label_patch: {patch}: cannot be read: permission denied"
        )
    finally:
        shutil.rmtree(folder)


def test_a_file_that_is_not_a_patch_is_never_quoted(tmp_path):
    secret = write(tmp_path / "shadow", "root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:1::\n")
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([secret], SEVERITIES)
    message = str(err.value)
    assert message == (
        f"dataset.label_patch: {secret} line 1: expected a CSV header naming the columns "
        "sample_id, corrected_label (a review CSV with its corrected_label column filled in); "
        "the header has no column sample_id, corrected_label"
    )
    assert "SECRETHASH" not in message and "19000" not in message


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            b"sample_id,corrected_label\ns1,OK0\n\xff\xfe PAYLOAD\n",
            "line 3: not UTF-8 text; expected a CSV file with the columns sample_id, "
            "corrected_label",
        ),
        (
            b"\x7fELF\x02\x01\x01\x00PAYLOAD\x00",
            "line 1: expected a CSV header naming the columns sample_id, corrected_label",
        ),
        (
            b'sample_id,corrected_label\ns1,"' + b"PAYLOAD" * 30_000 + b'"\n',
            "line 2: not a CSV line (field larger than field limit (131072))",
        ),
    ],
)
def test_content_that_is_not_csv_text_is_named_by_line_not_quoted(tmp_path, content, said):
    path = tmp_path / "patch.csv"
    path.write_bytes(content)
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([path], SEVERITIES)
    assert str(err.value).startswith(f"dataset.label_patch: {path} {said}")
    assert "PAYLOAD" not in str(err.value)


def test_a_huge_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(MAX_PATCH_BYTES + 1)  # sparse: no disk used
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([path], SEVERITIES)
    assert str(err.value) == (
        f"dataset.label_patch: {path} is 64.0 MiB; a label patch is a CSV of sample_id and "
        "corrected_label, at most 64.0 MiB"
    )


def test_a_long_label_is_cut_in_messages(tmp_path):
    path = write(tmp_path / "patch.csv", "sample_id,corrected_label\ns1," + "V" * 100_000 + "\n")
    with pytest.raises(LabelPatchError) as err:
        read_label_patch([path], SEVERITIES)
    assert "line 2: corrected label 'VVVV" in str(err.value)
    assert len(str(err.value)) < 400


def one_column(*labels_: str) -> pd.DataFrame:
    values = pd.Series(labels_, dtype=object)
    return pd.DataFrame(
        {"sample_id": [f"s{i}" for i in range(len(labels_))], "label": values, "full_truth": values}
    )


def test_with_one_label_column_a_correction_is_a_label(tmp_path):
    path = write(tmp_path / "review.csv", "sample_id,corrected_label\ns1,rye\ns2,\n")
    assert read_label_patch([path], ["barley", "rye"], one_column=True) == {"s1": "rye"}
    bad = write(tmp_path / "bad.csv", "sample_id,corrected_label\ns1,rye0\n")
    with pytest.raises(
        LabelPatchError,
        match=r"bad.csv line 2: corrected label 'rye0' is not a label of dataset.label_map; "
        r"write one of barley, rye",
    ):
        read_label_patch([bad], ["barley", "rye"], one_column=True)


def test_with_one_label_column_a_patch_changes_label_and_full_truth_and_its_targets():
    table = one_column("barley", "rye", "wheat", "rye", "barley")
    patched = apply_label_patch(table, {"s0": "rye"})
    assert patched["label"].tolist() == ["rye", "rye", "wheat", "rye", "barley"]
    assert patched["full_truth"].tolist() == patched["label"].tolist()
    assert table["label"].tolist()[0] == "barley"  # a copy
    assert patch_for_target(table, {"s0": "rye"}, "wheat", "OVA wheat") == []
    assert patch_for_target(table, {"s0": "rye"}, "rye", "OVA rye") == [["s0", "rye"]]
    # a correction inside one class of a user-defined target changes none of its data
    custom = {"column": "label", "classes": {"w": ["wheat"], "r": ["rye", "barley"]}}
    assert patch_for_target(table, {"s0": "rye"}, "own", custom) == []
    assert patch_for_target(table, {"s0": "wheat"}, "own", custom) == [["s0", "wheat"]]
