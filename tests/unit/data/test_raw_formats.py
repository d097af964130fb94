"""CSV and Parquet raw files: read like pickles, with the same checks and protections."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_cases import CHANNELS, expect_error, ingest, save, sha

from spectragrid.data.demo import DEMO_COLUMNS
from spectragrid.data.raw import read_raw_file
from spectragrid.data.raw_formats import raw_format, read_raw_frame
from spectragrid.data.unpickle import RawDataError


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "csv"),
        ("a.csv.gz", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
        ("a.pkl", "pickle"),
        ("a.pkl.xz", "pickle"),
        ("campaign_2023", "pickle"),
    ],
)
def test_the_format_follows_the_file_name(name: str, kind: str) -> None:
    assert raw_format(name) == kind


def _as_pickle_reads_it(small: pd.DataFrame, path: Path, tmp_path: Path) -> None:
    reference = read_raw_file(save(small, tmp_path / "ref.pkl"), DEMO_COLUMNS, CHANNELS)
    raw = read_raw_file(path, DEMO_COLUMNS, CHANNELS)
    assert raw.sha256 == sha(path)
    assert raw.source_file == path.name
    for ch in CHANNELS:
        np.testing.assert_array_equal(raw.spectra[ch], reference.spectra[ch])
        np.testing.assert_array_equal(raw.wavelengths[ch], reference.wavelengths[ch])
    columns = ["sample_id", "label_raw", "type", "group", "greffon_transmittance"]
    pd.testing.assert_frame_equal(raw.table[columns], reference.table[columns])


def test_a_csv_table_reads_as_its_pickle_does(small: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "campaign.csv"
    small.to_csv(path)  # the index, `sequence`, becomes a column
    _as_pickle_reads_it(small, path, tmp_path)
    semicolons = tmp_path / "semicolons.csv.gz"
    semicolons.write_bytes(gzip.compress(small.to_csv(sep=";").encode()))
    _as_pickle_reads_it(small, semicolons, tmp_path)


def test_a_parquet_file_reads_as_its_pickle_does(small: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "campaign.parquet"
    # the demo's dates are mixed objects, which Parquet stores as text
    small = small.astype({"mesure_date": str})
    small.to_parquet(path)  # the index is kept in the pandas metadata
    _as_pickle_reads_it(small, path, tmp_path)


def test_ids_and_labels_of_a_csv_keep_their_text(small: pd.DataFrame, tmp_path: Path) -> None:
    frame = small.reset_index()
    frame["sequence"] = [f"{i:04d}" for i in range(len(frame))]
    path = tmp_path / "zeros.csv"
    frame.to_csv(path, index=False)
    raw = read_raw_file(path, DEMO_COLUMNS, CHANNELS)
    assert raw.table["sample_id"].iloc[:2].tolist() == ["0000", "0001"]


def test_csv_and_parquet_files_are_ingested(small: pd.DataFrame, tmp_path: Path) -> None:
    a, b = small.iloc[:20], small.iloc[20:]
    a.to_csv(tmp_path / "a.csv")
    b.astype({"mesure_date": str}).to_parquet(tmp_path / "b.parquet")
    report = ingest([tmp_path / "a.csv", tmp_path / "b.parquet"], tmp_path / "out")
    assert [f["file"] for f in report["files"]] == ["a.csv", "b.parquet"]
    assert report["input_rows"] == len(small)


@pytest.mark.parametrize(
    ("name", "content", "said"),
    [
        ("ragged.csv", b"sequence,277_300,277_301\na,1,2\nb,1,2,3\n", "not a CSV table that "),
        ("latin.csv", "sequence,x\na,1\nb,\xe9\n".encode("latin-1"), "line 3 is not UTF-8 text"),
        ("binary.csv", b"\x80\x05\x00\x01binary", "not a CSV table (it holds binary content)"),
        ("blank.csv", b"\n\n", "the CSV table has no header line"),
        ("text.parquet", b"sequence,277_300\n", "not a Parquet file (it does not start as one)"),
        ("cut.parquet", b"PAR1" + b"\x00" * 40, "not a Parquet file that can be read"),
        ("empty.csv", b"", "the file is empty, not a CSV table"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_named(
    tmp_path: Path, name: str, content: bytes, said: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RawDataError) as info:
        read_raw_frame(path)
    assert str(info.value).startswith(f"{path}: ")
    assert said in str(info.value)


def test_paths_that_are_not_regular_files_are_named_by_format(
    tmp_path: Path, no_hang: None
) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    (tmp_path / "folder.parquet").mkdir()
    (tmp_path / "zero.csv").symlink_to("/dev/zero")
    expected = {
        "fifo.csv": "is a named pipe (FIFO), not a regular CSV file",
        "folder.parquet": "is a directory, not a regular Parquet file",
        "zero.csv": "is a character device (a link to /dev/zero), not a regular CSV file",
    }
    for name, said in expected.items():
        message = expect_error(tmp_path, [tmp_path / name], "not a regular")
        assert message == f"{tmp_path / name}: {said}"


def test_a_compressed_csv_that_expands_too_far_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.csv.gz"
    header = b"sequence,277_300\n"
    path.write_bytes(gzip.compress(header + b"a," + b"1" * (200 << 20) + b"\n", 9))
    with pytest.raises(RawDataError, match=r"decompresses to more than 64\.0 MiB"):
        read_raw_frame(path)


def test_a_parquet_footer_that_declares_too_many_cells_is_refused(tmp_path: Path) -> None:
    # a constant column compresses to almost nothing: 4 million rows in a few kilobytes
    table = pa.table({f"277_{w}": np.zeros(4_000_000, dtype=np.float32) for w in (300, 301)})
    path = tmp_path / "lazy.parquet"
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 200_000
    with pytest.raises(RawDataError, match=r"refused: the Parquet file declares 4,000,000 rows"):
        read_raw_frame(path)


def test_nested_parquet_columns_and_zone_paths_are_refused(tmp_path: Path) -> None:
    nested = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"sequence": ["a"], "277_300": [[1.0, 2.0]]}), nested)
    with pytest.raises(RawDataError, match=r"column '277_300' holds nested values"):
        read_raw_frame(nested)
    zoned = tmp_path / "zoned.parquet"
    kind = pa.timestamp("us", tz="/etc/passwd")
    pq.write_table(pa.table({"t": pa.array([0], type=pa.int64()).cast(kind)}), zoned)
    with pytest.raises(RawDataError, match="names the time zone '/etc/passwd', a file path"):
        read_raw_frame(zoned)


def test_text_columns_of_a_parquet_file_are_held_once(tmp_path: Path) -> None:
    long = "x" * 1_000_000
    path = tmp_path / "repeated.parquet"
    pq.write_table(pa.table({"note": [long] * 50, "277_300": np.ones(50)}), path)
    frame = read_raw_frame(path).frame
    assert isinstance(frame["note"].dtype, pd.CategoricalDtype)
    assert frame["note"].cat.categories.tolist() == [long]
