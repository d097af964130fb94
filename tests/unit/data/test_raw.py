"""The raw reader: the layout the config promises, and what it lacks named by file, row, column."""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import pickle
import socket
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ingest_cases import CHANNELS, expect_error, save, sha

from spectragrid.data.demo import (
    DEMO_COLUMNS,
)
from spectragrid.data.raw import RawDataError, UnsafePickleError, read_raw_pickle


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
    expect_error(tmp_path, [demo["raw"][1], path], r"empty\.pkl: the file has no rows")


def test_a_compressed_file_is_read_and_hashed_as_stored(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    plain = save(small, tmp_path / "plain.pkl")
    for suffix, compress in ((".gz", gzip.compress), (".xz", lzma.compress)):
        packed = tmp_path / f"packed.pkl{suffix}"
        packed.write_bytes(compress(plain.read_bytes()))
        raw = read_raw_pickle(packed, DEMO_COLUMNS, CHANNELS)
        assert raw.sha256 == sha(packed) != sha(plain)
        assert raw.table["sample_id"].tolist() == small.index.tolist()
        assert raw.source_file == packed.name


def test_paths_that_are_not_regular_files_are_named(
    demo: dict, tmp_path: Path, no_hang: None
) -> None:
    fifo = tmp_path / "fifo.pkl"
    os.mkfifo(fifo)
    (tmp_path / "folder.pkl").mkdir()
    (tmp_path / "zero.pkl").symlink_to("/dev/zero")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "socket.pkl"))
    expected = {
        "fifo.pkl": "is a named pipe (FIFO), not a regular pickle file",
        "folder.pkl": "is a directory, not a regular pickle file",
        "zero.pkl": "is a character device (a link to /dev/zero), not a regular pickle file",
        "socket.pkl": "is a socket, not a regular pickle file",
    }
    try:
        for name, said in expected.items():
            # listed after a good file: every path is checked before the first is read
            path = tmp_path / name
            message = expect_error(tmp_path, [demo["raw"][0], path], "not a regular pickle file")
            assert message == f"{path}: {said}"
            with pytest.raises(RawDataError, match="not a regular pickle file"):
                read_raw_pickle(path, DEMO_COLUMNS, CHANNELS)
    finally:
        server.close()


def test_a_long_value_from_the_file_is_cut_in_messages(small: pd.DataFrame, tmp_path: Path) -> None:
    small["greffon_defaut_type"] = small["greffon_defaut_type"].astype(object)
    small.iloc[3, small.columns.get_loc("greffon_defaut_type")] = "7" * 1_000_000 + "x"
    path = save(small, tmp_path / "long.pkl")
    message = expect_error(tmp_path, [path], r"long\.pkl: type column .* row 3 .* holds '7777")
    assert "7777...7777" in message and len(message) < 400


def test_a_value_nested_too_deeply_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    flat = small.reset_index()
    flat["sequence"] = flat["sequence"].astype(object)
    flat.at[2, "sequence"] = deep
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(30_000)  # only to write the file: pickling recurses too
    try:
        path = save(flat, tmp_path / "deep.pkl")
    finally:
        sys.setrecursionlimit(limit)
    expect_error(tmp_path, [path], r"deep\.pkl: a value in the file nests too deeply")


def test_a_frame_with_more_cells_than_its_file_has_bytes_is_refused(tmp_path: Path) -> None:
    # a few hundred bytes of pickle for three billion rows: every copy would need 22 GiB
    lazy = save(
        pd.DataFrame(index=pd.RangeIndex(3_000_000_000, name="sequence")), tmp_path / "lazy.pkl"
    )
    message = expect_error(
        tmp_path, [lazy], r"lazy\.pkl: refused: the DataFrame has 3,000,000,000 rows"
    )
    assert "22.4 GiB as dense numbers" in message


def test_a_zone_path_in_a_column_is_refused(small: pd.DataFrame, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    zone = pa.timestamp("us", tz=f"dateutil/{secret}")
    values = pa.array(np.arange(len(small)), zone)
    small["mesure_date"] = pd.arrays.ArrowExtensionArray(pa.chunked_array([values]))
    path = save(small, tmp_path / "zone.pkl")
    # sanity: read as pandas reads it, the provenance column opens the file named as its zone
    with pytest.raises(ValueError, match="magic not found"):
        pd.read_pickle(path)["mesure_date"].to_numpy()
    message = expect_error(
        tmp_path, [path], r"zone\.pkl: refused to load: .*a time zone read from a file path"
    )
    assert "SECRETHASH" not in message


GRAIN_COLUMNS = {"id": None, "label": "variety", "group": "lot", "tabular": ["moisture"]}


def test_one_label_column_and_no_id_column(tmp_path: Path) -> None:
    from own_data import grain_frame

    path = tmp_path / "grain.csv"
    grain_frame(12).to_csv(path, index=False)
    raw = read_raw_pickle(path, GRAIN_COLUMNS, ["nir"])
    assert list(raw.table.columns[:3]) == ["sample_id", "label_raw", "group"]
    assert "type" not in raw.table.columns
    assert raw.table["sample_id"].tolist()[:2] == ["grain.csv:0", "grain.csv:1"]
    assert raw.table["label_raw"].tolist()[:3] == ["barley", "wheat", "rye"]
    assert raw.spectra["nir"].shape == (12, 60)


def test_whole_number_labels_stored_as_floats_read_as_integers(tmp_path: Path) -> None:
    from own_data import grain_frame

    frame = grain_frame(12)
    # integer labels with one missing: pandas stores the column as floats
    frame["variety"] = [3.0, 10.0, np.nan] * 4
    path = tmp_path / "numbers.parquet"
    frame.to_parquet(path)
    raw = read_raw_pickle(path, GRAIN_COLUMNS, ["nir"])
    assert raw.table["label_raw"].tolist()[:3] == ["3", "10", ""]


def test_a_long_layout_is_refused_saying_how_to_pivot(tmp_path: Path) -> None:
    rows = [(f"s{i}", w, float(i + w), "barley") for i in range(4) for w in (1100, 1102)]
    long = pd.DataFrame(rows, columns=["sample", "wavelength", "intensity", "variety"])
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    columns = {"id": "sample", "label": "variety", "group": None}
    with pytest.raises(RawDataError) as info:
        read_raw_pickle(path, columns, ["nir"])
    said = str(info.value)
    assert said.startswith(f"{path}: channel 'nir' has no spectral columns")
    assert "the id 'sample' repeats (8 rows for 4 ids): this looks like a long layout" in said
    assert "wide = df.pivot_table(index='sample', columns='wavelength', values='intensity')" in said


@pytest.mark.parametrize("ending", [".pkl", ".pkl.gz", ".csv", ".parquet"])
def test_the_streamed_sha256_is_the_files_sha256(
    small: pd.DataFrame, tmp_path: Path, ending: str
) -> None:
    """The hash taken while the reader streams the file equals hashlib's over its bytes."""
    path = tmp_path / f"campaign{ending}"
    if ending == ".csv":
        small.reset_index().to_csv(path, index=False)
    elif ending == ".parquet":
        small.to_parquet(path)
    else:
        small.to_pickle(path)
    raw = read_raw_pickle(path, DEMO_COLUMNS, CHANNELS)
    assert raw.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_float32_spectra_stay_float32_and_keep_their_values(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    """No float64 copy of float32 spectra; a float64 file is read as float64.

    The spectra are read-only views of the frame (column-major): a copy in row
    order would cost a second gigabyte of memory at 300k spectra."""
    spectral = [c for c in small.columns if c.split("_")[0] in CHANNELS]
    single = small.astype(dict.fromkeys(spectral, np.float32))
    double = small.astype(dict.fromkeys(spectral, np.float64))
    a = read_raw_pickle(save(single, tmp_path / "single.pkl"), DEMO_COLUMNS, CHANNELS)
    b = read_raw_pickle(save(double, tmp_path / "double.pkl"), DEMO_COLUMNS, CHANNELS)
    for ch in CHANNELS:
        assert a.spectra[ch].dtype == np.float32 and not a.spectra[ch].flags.owndata
        assert not a.spectra[ch].flags.writeable and not b.spectra[ch].flags.writeable
        assert b.spectra[ch].dtype == np.float64
        columns = [f"{ch}_{w}" for w in range(295, 741)]
        expected = np.ascontiguousarray(single[columns].to_numpy())
        assert a.spectra[ch].tobytes() == expected.tobytes()
        np.testing.assert_array_equal(b.spectra[ch], double[columns].to_numpy())


def test_one_channel_of_three_is_copied_out_of_its_block(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    """Spectra are views of the frame's block, unless that would keep alive a block more
    than twice their size (the config uses one channel of three): then a copy."""
    from spectragrid.data.raw import _owner

    spectral = [c for c in small.columns if c.split("_")[0] in CHANNELS]
    block = pd.DataFrame(small[spectral].to_numpy(np.float32), index=small.index, columns=spectral)
    frame = pd.concat([block, small.drop(columns=spectral)], axis=1)
    path = save(frame, tmp_path / "one_block.pkl")
    every = read_raw_pickle(path, DEMO_COLUMNS, CHANNELS)
    one = read_raw_pickle(path, DEMO_COLUMNS, ["380"])
    shared = _owner(every.spectra["277"])
    assert shared.nbytes == 3 * every.spectra["277"].nbytes  # one block, viewed
    assert all(_owner(every.spectra[ch]) is shared for ch in CHANNELS)
    values = one.spectra["380"]
    assert _owner(values).nbytes == values.nbytes and not values.flags.writeable
    np.testing.assert_array_equal(values, every.spectra["380"])
    np.testing.assert_array_equal(values, frame[[f"380_{w}" for w in range(295, 741)]])
