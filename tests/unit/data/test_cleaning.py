"""The cleaning rules: each row kept or dropped for one reason; errors no drop can repair."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ingest_cases import CHANNELS, expect_error, ingest, save

from spectragrid.data.clean_file import read_clean
from spectragrid.data.cleaning import clean
from spectragrid.data.demo import (
    DEMO_COLUMNS,
    DEMO_LABEL_MAP,
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
)
from spectragrid.data.raw import RawDataError, read_raw_pickle


def test_identical_channels_are_an_error(small: pd.DataFrame, tmp_path: Path) -> None:
    for w in range(295, 741):
        small[f"380_{w}"] = small[f"277_{w}"]
    path = save(small, tmp_path / "copied.pkl")
    message = expect_error(tmp_path, [path], r"channels '277' and '380' are identical")
    assert "copied.pkl" in message


def test_identical_channels_in_one_of_several_files(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    for w in range(295, 741):
        small[f"425_{w}"] = small[f"277_{w}"]
    path = save(small, tmp_path / "broken.pkl")
    message = expect_error(tmp_path, [demo["raw"][1], path], r"'277' and '425' are identical")
    assert "broken.pkl" in message and demo["raw"][1].name not in message


def test_conflicting_sample_ids_name_both_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    a = save(small.iloc[:20], tmp_path / "a.pkl")
    other = small.iloc[20:].copy()
    other.index = pd.Index(small.index[:1].tolist() + small.index[21:].tolist(), name="sequence")
    b = save(other, tmp_path / "b.pkl")
    message = expect_error(tmp_path, [a, b], r"appears in a\.pkl row 0 and b\.pkl row 0")
    assert repr(small.index[0]) in message


def test_everything_dropped(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small, tmp_path / "x.pkl")
    out = tmp_path / "out"
    with pytest.raises(RawDataError, match=r"all \d+ rows were dropped .*unknown_label \d+"):
        ingest([path], out, label_map={"OK": "OK"})
    assert not out.exists() or not any(out.iterdir())


def test_rule_order_and_duplicates_ignore_the_id(demo: dict) -> None:
    raw = read_raw_pickle(demo["raw"][1], DEMO_COLUMNS, CHANNELS)
    keep = (
        ~raw.table["sample_id"]
        .isin([i for ids in demo["info"]["dirt_ids"].values() for i in ids])
        .to_numpy()
    )
    base = copy.deepcopy(raw)
    base.table = raw.table.loc[keep].head(6).reset_index(drop=True)
    base.spectra = {ch: raw.spectra[ch][keep][:6].copy() for ch in CHANNELS}
    base.table["source_row"] = np.arange(6)
    # row 1: NaN and saturated -> nan wins; row 2: saturated and dim in another channel
    base.spectra["277"][1, 5] = np.nan
    base.spectra["380"][1, 50] = 62_000
    base.spectra["425"][2, 40] = 62_000
    base.spectra["277"][2] *= 0.1
    # row 3: a NaN in a tabular value
    base.table.loc[3, "greffon_brix"] = np.nan
    # row 5: same spectra and labels as row 4 under another id -> duplicate
    for ch in CHANNELS:
        base.spectra[ch][5] = base.spectra[ch][4]
    base.table.loc[5, ["label_raw", "type"]] = base.table.loc[4, ["label_raw", "type"]].to_numpy()
    result = clean([base], DEMO_LABEL_MAP, REFERENCE_SATURATION, REFERENCE_MIN_INTEGRAL)
    assert result.dropped["reason"].tolist() == ["nan", "saturation", "nan", "duplicate"]
    assert result.dropped["source_row"].tolist() == [1, 2, 3, 5]
    assert result.table["source_row"].tolist() == [0, 4]
    assert result.report["dropped"] == {
        "nan": 2,
        "saturation": 1,
        "low_integral": 0,
        "unknown_label": 0,
        "duplicate": 1,
    }
    assert result.spectra["277"].dtype == np.float32
    # a channel without a threshold is not limited
    relaxed = clean([base], DEMO_LABEL_MAP, {"277": 6500}, {})
    assert "saturation" not in set(relaxed.dropped["reason"])


# --- more bad data: each names the file and the column or row, and writes nothing -----------


def test_a_nan_in_some_rows_only_drops_those_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    small.iloc[[2, 5], small.columns.get_loc("425_300")] = np.nan
    path = save(small, tmp_path / "spots.pkl")
    report = ingest([path], tmp_path / "out")
    assert report["dropped"]["nan"] == 2
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    assert dropped.loc[dropped["reason"] == "nan", "source_row"].tolist() == [2, 5]


def test_unknown_label_spellings_are_dropped_counted_and_named(
    small: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    column = small.columns.get_loc("greffon_defaut_severite")
    small.iloc[[3, 7], column] = "OK - Inspector"
    small.iloc[9, column] = "nc"
    path = save(small, tmp_path / "typos.pkl")
    with caplog.at_level("WARNING", logger="spectragrid"):
        report = ingest([path], tmp_path / "out")
    assert report["unknown_labels"] == {"OK - Inspector": 2, "nc": 1}
    assert report["dropped"]["unknown_label"] == 3
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    unknown = dropped.loc[dropped["reason"] == "unknown_label"]
    assert unknown["source_row"].tolist() == [3, 7, 9]
    assert set(unknown["source_file"]) == {"typos.pkl"}
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (warning,) = [m for m in said if "label spelling" in m]
    assert "3 rows carry a label spelling that dataset.label_map does not map" in warning
    assert "'OK - Inspector' (2 rows, first typos.pkl row 3)" in warning
    assert "'nc' (1 rows, first typos.pkl row 9)" in warning


def test_the_same_sample_in_two_campaigns_is_kept_once(small: pd.DataFrame, tmp_path: Path) -> None:
    a = save(small.iloc[:20], tmp_path / "a.pkl")
    # the first sample measured in campaign a reappears, identical, as row 0 of campaign b
    b = save(pd.concat([small.iloc[:1], small.iloc[20:]]), tmp_path / "b.pkl")
    report = ingest([a, b], tmp_path / "out")
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", dtype={"sample_id": str})
    row = dropped.loc[dropped["reason"] == "duplicate"]
    assert row[["sample_id", "source_file", "source_row"]].values.tolist() == [
        [small.index[0], "b.pkl", 0]
    ]
    assert read_clean(tmp_path / "out" / "clean.parquet").table["sample_id"].is_unique
    assert report["kept"] + sum(report["dropped"].values()) == 20 + 1 + len(small) - 20


def test_no_group_column_makes_each_sample_its_own_group(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    path = save(small.drop(columns=["scelle"]), tmp_path / "nolot.pkl")
    ingest([path], tmp_path / "out", columns={**DEMO_COLUMNS, "group": None})
    table = read_clean(tmp_path / "out" / "clean.parquet").table
    assert (table["group"] == table["sample_id"]).all()


def test_one_label_column_is_mapped_and_is_the_full_truth(tmp_path: Path) -> None:
    from own_data import grain_frame

    from spectragrid.data.cleaning import clean

    frame = grain_frame(12)
    frame.loc[4, "variety"] = None  # a missing label: never a class
    frame.loc[5, "variety"] = "Wheat"  # a spelling the map does not list
    path = tmp_path / "grain.csv"
    frame.to_csv(path, index=False)
    columns = {"id": None, "label": "variety", "group": "lot"}
    raw = read_raw_pickle(path, columns, ["nir"])
    result = clean([raw], {"barley": "barley", "wheat": "wheat", "rye": "rye"}, {}, {})
    assert list(result.table.columns[:4]) == ["sample_id", "label", "full_truth", "label_raw"]
    assert (result.table["label"] == result.table["full_truth"]).all()
    assert result.report["dropped"]["unknown_label"] == 2
    assert result.report["unknown_labels"] == {"": 1, "Wheat": 1}
    assert result.report["kept_by_label"] == {"barley": 4, "rye": 3, "wheat": 3}
