"""Raw files as DataFrames, whatever their format: pickle, CSV or Parquet.

All three hold the same wide layout (docs/lab_facts.md, "Measurements and raw
layouts"): one row per measurement, spectral columns `<channel>_<wavelength>`.
The format follows the file name: `.csv` or `.tsv` is a CSV table, `.parquet`
or `.pq` a Parquet file, anything else a pickle (the layout raw files always
had). A compression ending (`.gz`, `.bz2`, `.xz`) may follow any of them.

Every format gets the protections pickles get (`spectragrid.data.unpickle`):
only a regular file is opened, it is read once as a stream and hashed as it
is read, a compressed file is decompressed under the same cap, and a frame
with far more cells than its file has bytes is refused. A Parquet file is
checked from its footer before any column is read: its declared rows and
columns, its declared uncompressed size, no nested column, no time zone
given as a file path; its text columns are read as categories, so that a
long value its dictionary repeats is held once, not once per row.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spectragrid.data.unpickle import (
    MAX_CELLS_PER_BYTE,
    MAX_EXPANSION,
    MIN_DECOMPRESSED_CAP,
    RawDataError,
    check_dense,
    describe_size,
    is_zone_path,
    load_dataframe,
    read_regular_stream,
    refuse_zone_paths,
    shown,
)

__all__ = ["FORMATS", "RawFrame", "raw_format", "read_raw_frame"]

FORMATS = ("pickle", "csv", "parquet")
_COMPRESSION_ENDINGS = (".gz", ".bz2", ".xz")
_ENDINGS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# How the reader names each format in messages.
_WHAT = {"pickle": "pickle", "csv": "CSV table", "parquet": "Parquet file"}
# Cells a frame may always have, whatever its file's size (as for pickles).
_CELLS_ALWAYS_ALLOWED = 1 << 20


class RawFrame(NamedTuple):
    frame: pd.DataFrame
    sha256: str  # of the file as stored, compressed or not
    format: str


def raw_format(path: Path | str) -> str:
    """`pickle`, `csv` or `parquet`, from the file name's ending."""
    name = Path(path).name.lower()
    for ending in _COMPRESSION_ENDINGS:
        if name.endswith(ending):
            name = name[: -len(ending)]
            break
    return _ENDINGS.get(Path(name).suffix, "pickle")


def read_raw_frame(path: Path, text_columns: Iterable[str] = ()) -> RawFrame:
    """The DataFrame a raw file holds, and the sha256 of the file.

    `text_columns` are read as text where the format stores text (CSV), so
    that ids and labels such as `007` keep their leading zeros.
    """
    path = Path(path)
    kind = raw_format(path)
    if kind == "pickle":
        frame, sha256, size = read_regular_stream(path, load_dataframe)
    elif kind == "csv":
        wanted = list(text_columns)
        frame, sha256, size = read_regular_stream(
            path, lambda stream, p: _read_csv(stream, p, wanted), _WHAT[kind]
        )
    else:
        frame, sha256, size = read_regular_stream(path, _read_parquet, _WHAT[kind])
    check_dense(frame, size, path)
    return RawFrame(frame, sha256, kind)


# --- CSV ----------------------------------------------------------------------------------------


def _separator(header: str) -> str:
    """The field separator of a header line: comma, semicolon or tab, whichever it uses most."""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    return max(counts, key=lambda sep: counts[sep])


def _read_csv(stream: BinaryIO, path: Path, text_columns: list[str]) -> pd.DataFrame:
    data = stream.read()
    if b"\x00" in data[:65536]:
        raise RawDataError(
            f"{path}: not a CSV table (it holds binary content); a file ending in .csv or "
            ".tsv is read as text, a pickle needs another ending (.pkl)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise RawDataError(
            f"{path}: line {line} is not UTF-8 text; save the table as UTF-8 CSV"
        ) from None
    del data
    header = text.split("\n", 1)[0]
    if not header.strip():
        raise RawDataError(f"{path}: the CSV table has no header line (column names) first")
    sep = _separator(header)
    names = next(csv.reader([header], delimiter=sep))
    dtype = {name: str for name in text_columns if name in names}
    try:
        return pd.read_csv(io.StringIO(text), sep=sep, dtype=dtype, low_memory=False)
    except pd.errors.EmptyDataError:
        raise RawDataError(f"{path}: the CSV table has no columns") from None
    except (pd.errors.ParserError, ValueError) as err:
        raise RawDataError(
            f"{path}: not a CSV table that can be read ({shown(str(err).strip(), 200)}); "
            "every line needs as many fields as the header"
        ) from None


# --- Parquet ------------------------------------------------------------------------------------


def _read_parquet(stream: BinaryIO, path: Path) -> pd.DataFrame:
    data = stream.read()
    if not data.startswith(b"PAR1"):
        raise RawDataError(
            f"{path}: not a Parquet file (it does not start as one); a file ending in "
            ".parquet or .pq is read as Parquet"
        )
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        _check_footer(parquet, len(data), path)
        text = [f.name for f in parquet.schema_arrow if _is_text(f.type)]
        # reopened (the footer only) to read the text columns as dictionaries
        parquet = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text)
        with refuse_zone_paths(path):
            return parquet.read(use_pandas_metadata=True).to_pandas()
    except RawDataError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as err:
        raise RawDataError(
            f"{path}: not a Parquet file that can be read ({type(err).__name__}: "
            f"{shown(str(err), 200)})"
        ) from None


def _is_text(kind: Any) -> bool:
    return any(
        check(kind)
        for check in (
            pa.types.is_string,
            pa.types.is_large_string,
            pa.types.is_binary,
            pa.types.is_large_binary,
        )
    )


def _check_footer(parquet: pq.ParquetFile, size: int, path: Path) -> None:
    """Refuse, from the footer alone, a file that would expand far beyond its size."""
    meta = parquet.metadata
    rows, columns = meta.num_rows, meta.num_columns
    cells = rows * max(columns, 1)
    if cells > MAX_CELLS_PER_BYTE * size + _CELLS_ALWAYS_ALLOWED:
        raise RawDataError(
            f"{path}: refused: the Parquet file declares {rows:,} rows and {columns:,} "
            f"columns ({cells:,} cells) in {describe_size(size)}; it would take "
            f"{describe_size(8 * cells)} as dense numbers. Raw files hold dense columns"
        )
    declared = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    cap = max(MAX_EXPANSION * size, MIN_DECOMPRESSED_CAP)
    if declared > cap:
        raise RawDataError(
            f"{path}: refused: the Parquet file declares {describe_size(declared)} of data "
            f"in {describe_size(size)}, more than the cap of {describe_size(cap)} "
            f"({MAX_EXPANSION} times its size); a likely decompression bomb"
        )
    for field in parquet.schema_arrow:
        if pa.types.is_nested(field.type):
            raise RawDataError(
                f"{path}: column {shown(field.name, 60)} holds nested values ({field.type}); "
                "raw files hold one number or text per cell"
            )
        zone = getattr(field.type, "tz", None)
        if isinstance(zone, str) and is_zone_path(zone.removeprefix("dateutil/")):
            raise RawDataError(
                f"{path}: column {shown(field.name, 60)} names the time zone {shown(zone)}, "
                "a file path; refused"
            )
