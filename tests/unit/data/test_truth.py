"""The truth file, in either label layout."""

from pathlib import Path

import pytest

from spectragrid.data.truth import read_truth

LABEL_MAP = {"OK - Inspecteur": "OK", "OK": "OK", "VR": "VR"}


def test_severity_and_type_give_the_full_truth(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text("seq,sev,typ\n007,OK - Inspecteur,0\n008,VR,11\n008,VR,11\n")
    truth = read_truth(path, {"id": "seq", "severity": "sev", "type": "typ"}, LABEL_MAP)
    assert truth.to_dict("list") == {
        "sample_id": ["007", "008"],
        "severity": ["OK", "VR"],
        "type": [0, 11],
        "full_truth": ["OK0", "VR11"],
    }


def test_one_label_column_is_the_full_truth(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    path.write_text("sample,variety\na,Rye\nb,wheat\n")
    columns = {"id": "sample", "label": "variety", "severity": None, "type": None}
    truth = read_truth(path, columns, {"Rye": "rye", "wheat": "wheat"})
    assert truth.to_dict("list") == {
        "sample_id": ["a", "b"],
        "label": ["rye", "wheat"],
        "full_truth": ["rye", "wheat"],
    }
    path.write_text("sample,variety\na,oats\n")
    with pytest.raises(ValueError, match=r"unknown label value\(s\) \['oats'\]"):
        read_truth(path, columns, {"Rye": "rye"})
    path.write_text("sample,grade\na,rye\n")
    with pytest.raises(ValueError, match=r"truth file lacks column\(s\) \['variety'\]"):
        read_truth(path, columns, {"rye": "rye"})
