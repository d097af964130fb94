"""What raw files hold, found without a config."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from own_data import grain_frame

from spectragrid.data.raw_survey import survey_raw_files
from spectragrid.data.unpickle import RawDataError


def test_one_label_column_without_id(tmp_path: Path) -> None:
    path = tmp_path / "grain.csv"
    grain_frame(30).to_csv(path, index=False)
    survey = survey_raw_files([path])
    assert survey.channels == ["nir"]
    assert survey.axes["nir"][[0, -1]].tolist() == [1100.0, 1218.0]
    assert survey.id_column is None
    assert (survey.label, survey.severity, survey.type) == ("variety", None, None)
    assert survey.label_values == {"barley": 10, "wheat": 10, "rye": 10}
    assert survey.group == "lot" and survey.group_candidates == {"lot": 10}
    assert survey.numeric == ["moisture"]


def test_the_users_layout_gives_severity_type_id_and_group(small: pd.DataFrame, tmp_path: Path):
    path = tmp_path / "campaign.pkl"
    small.to_pickle(path)
    survey = survey_raw_files([path])
    assert survey.channels == ["277", "380", "425"]
    assert survey.id_column == "sequence"
    assert (survey.severity, survey.type) == ("greffon_defaut_severite", "greffon_defaut_type")
    assert survey.label is None
    assert survey.group == "scelle"
    assert survey.drop_prefixes == ["sa_"]
    assert {"greffon_transmittance", "greffon_brix"} <= set(survey.numeric)


def test_files_without_spectra_or_labels_are_named(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}).to_csv(path, index=False)
    with pytest.raises(RawDataError, match=r"table.csv: no spectral column: expected columns"):
        survey_raw_files([path])
    frame = grain_frame(6).drop(columns=["variety", "lot"])
    frame.to_csv(path, index=False)
    with pytest.raises(RawDataError, match=r"table.csv: no label column: expected a column"):
        survey_raw_files([path])


def test_files_of_one_study_share_their_columns(tmp_path: Path) -> None:
    grain_frame(6).to_csv(tmp_path / "a.csv", index=False)
    grain_frame(6).drop(columns=["lot"]).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(RawDataError, match=r"b.csv: lacks column\(s\) 'lot' of .*a.csv"):
        survey_raw_files([tmp_path / "a.csv", tmp_path / "b.csv"])
