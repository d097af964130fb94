"""The raw reader: the layout the config promises, and what it lacks named by file, row, column."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
from ingest_cases import CHANNELS, expect_error, save, sha

from spectragrid.data.demo import (
    DEMO_COLUMNS,
)
from spectragrid.data.raw import UnsafePickleError, read_raw_pickle


def test_missing_column_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small.drop(columns=["scelle"]), tmp_path / "nolot.pkl")
    message = expect_error(tmp_path, [path], r"group column 'scelle' is missing")
    assert str(path) in message
    path = save(small.rename(columns={"greffon_brix": "brix"}), tmp_path / "renamed.pkl")
    expect_error(tmp_path, [path], r"tabular column 'greffon_brix' is missing \(similar columns:")


def test_missing_channel_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small.drop(columns=[f"425_{w}" for w in range(295, 741)]), tmp_path / "two.pkl")
    expect_error(tmp_path, [path], r"channel '425' has no spectral columns .*found: 277, 380")


def test_columns_out_of_order(small: pd.DataFrame, tmp_path: Path) -> None:
    cols = list(small.columns)
    i, j = cols.index("380_400"), cols.index("380_401")
    cols[i], cols[j] = cols[j], cols[i]
    path = save(small[cols], tmp_path / "swapped.pkl")
    expect_error(
        tmp_path,
        [path],
        r"swapped\.pkl: channel '380': .*first offending column '380_400' after '380_401'",
    )
    gap = small.drop(columns=["277_500"])
    path = save(gap, tmp_path / "gap.pkl")
    expect_error(tmp_path, [path], r"channel '277': .*'277_501' after '277_499' \(step 2")


def test_non_dataframe_and_truncated_pickles(small: pd.DataFrame, tmp_path: Path) -> None:
    series = tmp_path / "series.pkl"
    small["277_300"].to_pickle(series)
    expect_error(tmp_path, [series], r"series\.pkl: the pickle holds a pandas.Series")
    cut = tmp_path / "cut.pkl"
    data = pickle.dumps(small)
    cut.write_bytes(data[: len(data) - 100])
    expect_error(tmp_path, [cut], r"cut\.pkl: .*truncated or not a pickle")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unsafe_pickle_refused_and_never_run(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    evil = small.copy()
    evil["firmware"] = pd.Series([_Evil(marker)] * len(evil), index=evil.index, dtype=object)
    path = save(evil, tmp_path / "evil.pkl")
    message = expect_error(tmp_path, [demo["raw"][1], path], "refused to load", UnsafePickleError)
    assert "evil.pkl" in message and "system" in message
    assert not marker.exists()


def test_bad_type_value_names_the_row(small: pd.DataFrame, tmp_path: Path) -> None:
    small["greffon_defaut_type"] = small["greffon_defaut_type"].astype(float)
    small.iloc[3, small.columns.get_loc("greffon_defaut_type")] = np.nan
    path = save(small, tmp_path / "t.pkl")
    expect_error(tmp_path, [path], rf"t\.pkl: type column .* row 3 \(id '{small.index[3]}'\)")


def test_id_as_a_column_and_missing_ids(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small.reset_index(), tmp_path / "flat.pkl")
    raw = read_raw_pickle(path, DEMO_COLUMNS, CHANNELS)
    assert raw.table["sample_id"].tolist() == small.index.tolist()
    assert raw.table["source_row"].tolist() == list(range(len(small)))
    assert raw.sha256 == sha(path)
    flat = small.reset_index()
    flat.loc[2, "sequence"] = None
    path = save(flat, tmp_path / "noid.pkl")
    expect_error(tmp_path, [path], r"noid\.pkl: id 'sequence' is missing in row 2")
    path = save(small.rename_axis("seq"), tmp_path / "other.pkl")
    expect_error(
        tmp_path, [path], r"id 'sequence' is neither the index name \('seq'\) nor a column"
    )


def test_missing_label_columns_are_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small.drop(columns=["greffon_defaut_severite"]), tmp_path / "nolabel.pkl")
    message = expect_error(
        tmp_path, [path], r"severity column 'greffon_defaut_severite' is missing"
    )
    assert str(path) in message
    path = save(small.drop(columns=["greffon_defaut_type"]), tmp_path / "notype.pkl")
    expect_error(tmp_path, [path], r"notype\.pkl: type column 'greffon_defaut_type' is missing")


def test_a_channel_that_is_all_nan_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    small[[f"425_{w}" for w in range(295, 741)]] = np.nan
    path = save(small, tmp_path / "dark.pkl")
    expect_error(
        tmp_path,
        [path],
        r"dark\.pkl: channel '425' \(425_295 … 425_740\) holds no finite value in any of the "
        r"\d+ rows",
    )


def test_a_wavelength_column_that_is_all_nan_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    small["380_500"] = np.nan
    path = save(small, tmp_path / "hole.pkl")
    expect_error(tmp_path, [path], r"hole\.pkl: channel '380': column\(s\) '380_500' hold no")


def test_a_file_without_rows_is_named(small: pd.DataFrame, demo: dict, tmp_path: Path) -> None:
    path = save(small.iloc[:0], tmp_path / "empty.pkl")
    expect_error(tmp_path, [demo["raw"][1], path], r"empty\.pkl: the DataFrame has no rows")
