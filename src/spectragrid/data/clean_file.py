"""The clean Parquet file: one row per sample, spectra stored as raw float32 bytes.

Layout (format 2): one `fixed_size_binary` column `spectra` holds each
sample's channels one after another, as little-endian float32 values, in
the order of the metadata's `channels` (`spectrum_offsets` says where each
starts, in values; `shape` how many it has). Everything needed to interpret
those bytes (channels, wavelength axes, dtype, shape, column roles) is in the
schema metadata under the key `spectragrid`, as JSON. Outside spectragrid:
`np.frombuffer(b"".join(column), "<f4").reshape(N, -1)` gives the rows.

Why one column and not one per channel (format 1, still read): when the
channels share one wavelength axis, a row of the file is then a row of the
(N, C, L) array a cell trains on, and each data page's values are read
straight into that array (`spectragrid.data.parquet_pages`): one trip
through memory, as `np.load` makes. One column per channel put each page
into a buffer first, to be copied into its stride of the array. Spectra of
300,000 x 3 x 446, medians of seven alternating reads in one process: 0.87 s
through per-channel columns against `np.load`'s 0.33 s; 0.29 s as whole rows
against 0.35 s (docs/benchmarks.md, "Reading the clean file"). A cell that
uses some of the channels reads whole rows and copies its channels out of
them.

The spectra are stored uncompressed (`SPECTRUM_COMPRESSION`); the other
columns with zstd. Measured at 300,000 x 3 x 446 (docs/benchmarks.md,
"Ingest and reading at 300,000 spectra"): noisy float32 saves 11 % with zstd
and nothing with lz4, and decompressing slows reading.

Row groups hold about `ROW_GROUP_BYTES` of spectra, written one at a time
and read one at a time into a preallocated (N, C, L) array, so neither side
holds the data set twice. The file is written past the page cache where the
system allows it (`spectragrid.data.direct_write`), each row group's spectra
gathered into one reused buffer.
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spectragrid.data.direct_write import open_direct
from spectragrid.data.parquet_pages import Page, plain_pages, read_pages

__all__ = [
    "FORMAT_VERSION",
    "META_KEY",
    "SPECTRA_COLUMN",
    "SPECTRUM_COMPRESSION",
    "CleanData",
    "RowBlock",
    "read_clean",
    "read_labels",
    "read_meta",
    "write_clean",
]

FORMAT_VERSION = 2
# Format 1 stored one column per channel (`spectrum_<channel>`); it reads the same.
READABLE_FORMATS = (1, 2)
META_KEY = b"spectragrid"
# severity and type, or one label column (`label`); both layouts have full_truth
LABEL_COLUMNS = ("severity", "type", "label", "full_truth", "label_raw")
_DTYPE = np.dtype("<f4")
# Codec of the spectrum columns (the others use zstd); see the module docstring.
SPECTRUM_COMPRESSION = "none"
SPECTRA_COLUMN = "spectra"
# Spectrum bytes in one row group: large enough that per-group costs vanish,
# small enough that writing or reading one group is a small transient.
ROW_GROUP_BYTES = 64 << 20
# Pages read together into a buffer when a cell takes only some of a row's channels:
# a few MB, so that the copy out of it reads from the CPU's cache.
_SCRATCH_BYTES = 4 << 20


@dataclass
class CleanData:
    """A clean file in memory.

    `spectra[ch]` are read-only views. When the loaded channels share one grid,
    they are views into `stacked`, the (N, C, L) float32 array `read_clean`
    filled (channels in `spectra`'s order, each at its place on the common axis,
    zero elsewhere), which `stack` then returns without a copy.
    """

    table: pd.DataFrame
    spectra: dict[str, np.ndarray]
    wavelengths: dict[str, np.ndarray]
    meta: dict[str, Any]
    path: Path | None = None
    stacked: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.table)

    def stack(self, channels: list[str]) -> np.ndarray:
        """float32 (N, C, L) array of `channels`, in that order.

        For the channels `read_clean` loaded, in its order, this is `stacked`
        itself (read-only, shared by every caller: at 300k samples a copy
        would cost seconds and gigabytes); otherwise a new, writable array.
        """
        channels = [str(c) for c in channels]
        if not channels:
            raise ValueError("stack() needs at least one channel")
        missing = [c for c in channels if c not in self.spectra]
        if missing:
            raise ValueError(
                f"{self.path}: channel(s) {missing} not loaded; loaded: {list(self.spectra)}"
            )
        if self.stacked is not None and channels == list(self.spectra):
            return self.stacked
        axis, offsets = common_axis({c: self.wavelengths[c] for c in channels})
        # Channels measured on a shorter range (the older `lspr` channel) sit on
        # the common axis at their own wavelengths, zero elsewhere.
        out = np.zeros((len(self.table), len(channels), len(axis)), dtype=np.float32)
        for i, c in enumerate(channels):
            values = self.spectra[c]
            out[:, i, offsets[c] : offsets[c] + values.shape[1]] = values
        return out


def common_axis(axes: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """The union wavelength axis of several channels and each channel's offset on it.

    Channels must share one step and lie on one grid (e.g. 295-740 nm and
    450-700 nm at 1 nm); anything else would need resampling, which changes
    the data, so it is refused.
    """
    names = list(axes)
    first = axes[names[0]]
    if all(np.array_equal(axes[c], first) for c in names[1:]):
        return first, dict.fromkeys(names, 0)
    steps = {c: float(np.diff(a).mean()) if len(a) > 1 else 0.0 for c, a in axes.items()}
    step = steps[names[0]]
    low = min(float(a[0]) for a in axes.values())
    high = max(float(a[-1]) for a in axes.values())
    n = round((high - low) / step) + 1 if step else 1
    axis = low + step * np.arange(n)
    offsets: dict[str, int] = {}
    for c, a in axes.items():
        offset = round((float(a[0]) - low) / step) if step else 0
        on_grid = offset + len(a) <= n and np.allclose(axis[offset : offset + len(a)], a)
        if not np.isclose(steps[c], step) or not on_grid:
            raise ValueError(
                f"channels {names} cannot share one wavelength axis "
                f"({', '.join(f'{k}: {_axis(v)}' for k, v in axes.items())}): "
                "they need the same step on one grid"
            )
        offsets[c] = offset
    return axis, offsets


def _axis(wl: np.ndarray) -> str:
    return f"{len(wl)} points {wl[0]:g}-{wl[-1]:g}" if len(wl) else "no points"


# Kept rows gathered per numpy call when a block drops some: a small row-major
# temporary that stays in cache on its way into the row group's buffer.
_GATHER_ROWS = 1024


@dataclass(frozen=True)
class RowBlock:
    """Consecutive rows of a channel's spectra: `values[rows]`, or all of `values`.

    A cleaned data set is a list of these per channel (one per raw file, the
    kept rows of each), gathered only as each row group is written: the kept
    rows are never copied into one array beside the raw files' arrays.
    `values` may be column-major (a view of the raw file's frame).
    """

    values: np.ndarray  # (n, L), float32 or float64
    rows: np.ndarray | None = None  # indices into values, in order; None: every row

    def __len__(self) -> int:
        return len(self.values) if self.rows is None else len(self.rows)

    def take(self, start: int, stop: int) -> np.ndarray:
        """Rows `start:stop` of the block as contiguous little-endian float32."""
        out = np.empty((max(0, min(stop, len(self)) - start), self.values.shape[1]), _DTYPE)
        self.take_into(start, stop, out)
        return out

    def take_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Copy rows `start:stop` of the block into `out`, float32 rows (a view of wider rows
        is fine)."""
        if self.rows is None:
            np.copyto(out, self.values[start:stop])
            return
        rows = self.rows[start:stop]
        for at in range(0, len(rows), _GATHER_ROWS):
            part = rows[at : at + _GATHER_ROWS]
            np.copyto(out[at : at + len(part)], self.values[part])


Spectra = np.ndarray | Sequence[RowBlock]


def _as_blocks(values: Spectra) -> list[RowBlock]:
    return [RowBlock(values)] if isinstance(values, np.ndarray) else list(values)


def _block_shape(blocks: list[RowBlock]) -> tuple[int, ...]:
    """The shape the blocks make together; (rows, L) when they agree on L."""
    shapes = {b.values.shape[1:] for b in blocks if b.values.ndim == 2}
    if len(shapes) != 1 or any(b.values.ndim != 2 for b in blocks):
        return tuple(np.shape(blocks[0].values)) if len(blocks) == 1 else (-1,)
    return (sum(len(b) for b in blocks), *shapes.pop())


class _Reader:
    """The rows of one channel's blocks, taken front to back; a block is let go once read."""

    def __init__(self, blocks: list[RowBlock]) -> None:
        self._blocks = collections.deque(blocks)
        self._at = 0  # rows of the front block already taken

    def take_into(self, out: np.ndarray) -> np.ndarray:
        """The next `len(out)` rows, copied into `out` (as float32)."""
        filled = 0
        while filled < len(out):
            block = self._blocks[0]
            count = min(len(block) - self._at, len(out) - filled)
            block.take_into(self._at, self._at + count, out[filled : filled + count])
            filled += count
            self._at += count
            if self._at == len(block):
                self._blocks.popleft()
                self._at = 0
        return out


def _binary_column(values: np.ndarray) -> pa.FixedSizeBinaryArray:
    data = np.ascontiguousarray(values, dtype=_DTYPE)
    n, length = data.shape
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(length * _DTYPE.itemsize), n, [None, pa.py_buffer(data)]
    )


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _check_spectra(
    table: pd.DataFrame, blocks: dict[str, list[RowBlock]], wavelengths: Mapping[str, Any]
) -> None:
    n = len(table)
    for ch, parts in blocks.items():
        shape = _block_shape(parts)
        if len(shape) != 2 or shape[0] != n:
            raise ValueError(f"spectra[{ch!r}] has shape {shape}; expected ({n}, L)")
        wl = np.asarray(wavelengths[ch])
        if wl.shape != (shape[1],):
            raise ValueError(
                f"wavelengths[{ch!r}] has {wl.size} values for {shape[1]} spectral points"
            )
    if SPECTRA_COLUMN in table.columns:
        raise ValueError(f"table already has a column named {SPECTRA_COLUMN!r}")


def write_clean(
    path: Path,
    table: pd.DataFrame,
    spectra: Mapping[str, Spectra],
    wavelengths: Mapping[str, Any],
    tabular: list[str],
    provenance: list[str],
    *,
    release: bool = False,
) -> None:
    """Write the clean file atomically (temporary file in the same folder, then rename).

    `spectra[ch]` is an (N, L) array or a list of `RowBlock`s that make N rows
    together (written group by group, never joined in memory). With `release`,
    those lists are emptied and each block is let go once its rows are
    written: the ingest's raw arrays are then freed file by file, and the
    file's pages reuse their memory (memory the VM has not touched lately
    costs about a second per gigabyte on the reference machine).
    """
    path = Path(path)
    blocks = {str(c): _as_blocks(v) for c, v in spectra.items()}
    if release:
        for values in spectra.values():
            if isinstance(values, list):
                values.clear()
    channels = list(blocks)
    _check_spectra(table, blocks, wavelengths)
    lengths = {ch: _block_shape(blocks[ch])[1] for ch in channels}
    n = len(table)

    plain = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
    plain_columns = list(plain.column_names)
    offsets = dict(zip(channels, np.cumsum([0, *lengths.values()])[:-1].tolist(), strict=True))
    width = sum(lengths.values())  # float32 values in a row
    fields = [pa.field(SPECTRA_COLUMN, pa.binary(width * _DTYPE.itemsize))] if channels else []
    meta = {
        "format": FORMAT_VERSION,
        "channels": channels,
        "wavelengths": {ch: [float(w) for w in np.asarray(wavelengths[ch])] for ch in channels},
        "dtype": "float32",
        "byte_order": "little",
        "shape": {ch: [int(lengths[ch])] for ch in channels},
        "spectrum_columns": dict.fromkeys(channels, SPECTRA_COLUMN),
        "spectrum_offsets": offsets,
        "group_column": "group" if "group" in table.columns else None,
        "tabular_columns": list(tabular),
        "provenance_columns": list(provenance),
        "label_columns": [c for c in LABEL_COLUMNS if c in table.columns],
        "rows": n,
    }
    # pandas' own metadata would describe only part of the columns; ours is the contract.
    schema = pa.schema([*plain.schema, *fields], metadata={META_KEY: json.dumps(meta).encode()})
    rows_per_group = max(1, ROW_GROUP_BYTES // max(1, _DTYPE.itemsize * width))

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        with (
            open_direct(tmp) as sink,
            pq.ParquetWriter(
                sink,
                schema,
                compression={
                    **dict.fromkeys(plain_columns, "zstd"),
                    **({SPECTRA_COLUMN: SPECTRUM_COMPRESSION} if channels else {}),
                },
                # Spectra are unique, noisy bytes: dictionaries and min/max statistics of
                # kilobyte-long values only cost time and space.
                use_dictionary=plain_columns,
                write_statistics=plain_columns,
            ) as writer,
        ):
            # One buffer, filled again for every row group: Arrow copies the values
            # into its pages, and reused memory is not paid for again (a fresh
            # gigabyte cost seconds of page faults on the reference VM).
            buffer = np.empty((min(rows_per_group, n), width), dtype=_DTYPE)
            readers = {ch: _Reader(blocks[ch]) for ch in channels}
            del blocks
            for start in range(0, n, rows_per_group) if n else [0]:
                stop = min(start + rows_per_group, n)
                columns = [plain.column(c).slice(start, stop - start) for c in plain_columns]
                if channels:
                    rows = buffer[: stop - start]
                    for ch in channels:
                        readers[ch].take_into(rows[:, offsets[ch] : offsets[ch] + lengths[ch]])
                    columns.append(_binary_column(rows))
                writer.write_table(pa.Table.from_arrays(columns, schema=schema))
                del columns
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_meta(path: Path) -> dict[str, Any]:
    """The `spectragrid` metadata of a clean file, checked for a known format."""
    path = Path(path)
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(
            f"{path}: not a spectragrid clean file (no '{META_KEY.decode()}' metadata)"
        )
    meta = json.loads(raw)
    if meta.get("format") not in READABLE_FORMATS:
        raise ValueError(
            f"{path}: clean-file format {meta.get('format')!r} is not supported "
            f"(this version reads formats {', '.join(map(str, READABLE_FORMATS))})"
        )
    return meta


def read_labels(path: Path) -> pd.DataFrame:
    """`sample_id` and the label columns of a clean file, in either label layout.

    What a target is built from (`spectragrid.data.targets.resolve`), without
    reading a spectrum.
    """
    path = Path(path)
    names = set(pq.read_schema(path).names)
    wanted = ["sample_id", *(c for c in LABEL_COLUMNS if c in names and c != "label_raw")]
    return pd.read_parquet(path, columns=wanted)


def read_clean(path: Path, channels: list[str] | None = None) -> CleanData:
    """Read a clean file; `channels` selects spectra to load (default: all, in stored order)."""
    path = Path(path)
    meta = read_meta(path)
    available = list(meta["channels"])
    wanted = available if channels is None else [str(c) for c in channels]
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ValueError(
            f"{path}: channel(s) {unknown} not in this file; available channels: {available}"
        )
    spectrum_cols = set(meta["spectrum_columns"].values())
    # Mapped, not read: uncompressed pages are decoded straight from the page
    # cache instead of being copied into Arrow buffers first (2.4 s -> 0.6 s for
    # the spectra of 300k x 3 x 446 on the busy reference machine).
    parquet = pq.ParquetFile(path, memory_map=True)
    plain = [name for name in parquet.schema_arrow.names if name not in spectrum_cols]
    table = parquet.read(columns=plain).to_pandas()
    wavelengths = {c: np.asarray(meta["wavelengths"][c], dtype=np.float64) for c in wanted}
    stacked, spectra = _read_spectra(path, parquet, meta, wavelengths, len(table))
    return CleanData(
        table=table,
        spectra=spectra,
        wavelengths=wavelengths,
        meta=meta,
        path=path,
        stacked=stacked,
    )


def _read_spectra(
    path: Path,
    parquet: pq.ParquetFile,
    meta: dict[str, Any],
    wavelengths: dict[str, np.ndarray],
    n: int,
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """The spectra of `wavelengths`' channels, read row group by row group into one
    preallocated array: (N, C, L) on their common axis, or one (N, L) per channel
    when they share no grid."""
    channels = list(wavelengths)
    lengths = {c: int(meta["shape"][c][0]) for c in channels}
    try:
        axis, offsets = common_axis(wavelengths)
    except ValueError:
        axis, offsets = None, None
    if axis is not None and offsets is not None:
        stacked = np.empty((n, len(channels), len(axis)), dtype=_DTYPE)
        targets = {}
        for i, c in enumerate(channels):
            lo, hi = offsets[c], offsets[c] + lengths[c]
            stacked[:, i, :lo] = 0.0
            stacked[:, i, hi:] = 0.0
            targets[c] = stacked[:, i, lo:hi]
    else:
        stacked = None
        targets = {c: np.empty((n, lengths[c]), dtype=_DTYPE) for c in channels}
    columns = _stored_columns(path, meta, channels)
    direct = _rows_are_stacked(columns, stacked, meta)
    schema = parquet.metadata.schema
    index = {schema.column(i).path: i for i in range(len(schema))}
    row = 0
    with open(path, "rb") as raw:
        for group in range(parquet.num_row_groups):
            chunks = parquet.metadata.row_group(group)
            size = chunks.num_rows
            if row + size > n:
                break
            # Page by page where the pages allow it (parquet_pages), else through Arrow.
            for name, (width, parts) in columns.items():
                column, nbytes = index[name], width * _DTYPE.itemsize
                pages = plain_pages(
                    raw.fileno(),
                    chunks.column(column),
                    nbytes,
                    nullable=schema.column(column).max_definition_level > 0,
                )
                done = False
                if pages is not None and sum(p.rows for p in pages) == size:
                    done = (
                        read_pages(raw.fileno(), pages, nbytes, stacked[row : row + size])
                        if direct and stacked is not None
                        else _read_parts(raw.fileno(), pages, width, parts, targets, row)
                    )
                if not done:
                    _read_through_arrow(path, parquet, group, name, width, parts, targets, row)
            row += size
    if row != n:
        raise ValueError(
            f"{path}: the spectrum columns hold a different number of rows than the table"
        )
    for values in targets.values():
        values.flags.writeable = False
    if stacked is not None:
        stacked.flags.writeable = False
    return stacked, targets


# A stored column's row width in float32 values, and where each wanted channel lies in it.
_Parts = dict[str, tuple[int, int]]


def _stored_columns(
    path: Path, meta: dict[str, Any], channels: list[str]
) -> dict[str, tuple[int, _Parts]]:
    """The spectrum columns holding `channels`: for each, its row width (values) and the
    (offset, length) of each wanted channel in its rows, channels in `channels`' order.
    A channel the metadata places past its column's row is refused."""
    stored_offsets = meta.get("spectrum_offsets") or {}  # format 1: a column per channel
    widths: dict[str, int] = collections.Counter()
    for c in meta["channels"]:
        widths[meta["spectrum_columns"][c]] += int(meta["shape"][c][0])
    columns: dict[str, tuple[int, _Parts]] = {}
    for c in channels:
        name = meta["spectrum_columns"][c]
        offset, length = int(stored_offsets.get(c, 0)), int(meta["shape"][c][0])
        if offset < 0 or offset + length > widths[name]:
            raise ValueError(
                f"{path}: the metadata places channel {c!r} at values "
                f"{offset}-{offset + length} of column {name!r}, whose rows hold {widths[name]}"
            )
        columns.setdefault(name, (widths[name], {}))[1][c] = (offset, length)
    return columns


def _rows_are_stacked(
    columns: dict[str, tuple[int, _Parts]], stacked: np.ndarray | None, meta: dict[str, Any]
) -> bool:
    """Whether a row of the one stored column is, byte for byte, a row of `stacked`: every
    channel of the file wanted, in stored order, all on one axis with no padding."""
    if stacked is None or len(columns) != 1:
        return False
    ((width, parts),) = columns.values()
    length = stacked.shape[2]
    return (
        list(parts) == list(meta["channels"])
        and width == stacked.shape[1] * length
        and all(part == (i * length, length) for i, part in enumerate(parts.values()))
    )


def _read_parts(
    fd: int,
    pages: list[Page],
    width: int,
    parts: _Parts,
    targets: dict[str, np.ndarray],
    row: int,
) -> bool:
    """`pages` (rows of `width` values) read a few MB at a time into a buffer, and each
    wanted channel copied from there into its rows of `targets`."""
    limit = max(1, _SCRATCH_BYTES // (width * _DTYPE.itemsize))  # rows in the buffer
    scratch = np.empty((0, width), _DTYPE)
    at = 0
    while at < len(pages):
        batch, count = [pages[at]], pages[at].rows
        at += 1
        while at < len(pages) and count + pages[at].rows <= limit:
            batch.append(pages[at])
            count += pages[at].rows
            at += 1
        if len(scratch) < count:  # the first batch, or one page larger than the buffer
            scratch = np.empty((count, width), _DTYPE)
        rows = scratch[:count]
        if not read_pages(fd, batch, width * _DTYPE.itemsize, rows):
            return False
        for c, (offset, length) in parts.items():
            targets[c][row : row + count] = rows[:, offset : offset + length]
        row += count
    return True


def _read_through_arrow(
    path: Path,
    parquet: pq.ParquetFile,
    group: int,
    name: str,
    width: int,
    parts: _Parts,
    targets: dict[str, np.ndarray],
    row: int,
) -> None:
    """The spectrum column `name` of one row group into its channels' rows of `targets`."""
    # Through a mapping of its own, closed once copied: the file's pages a mapping has
    # touched count in the process's memory until it is closed, and one mapping for the
    # whole read held the file beside the array (a cell at 300k peaked at 2.3 times
    # its data in this function).
    with pa.memory_map(str(path)) as source:
        column = (
            pq.ParquetFile(source, metadata=parquet.metadata)
            .read_row_group(group, columns=[name])
            .column(name)
        )
        if column.null_count:
            raise ValueError(f"{path}: column {name!r} has {column.null_count} missing spectra")
        nbytes = width * _DTYPE.itemsize
        for chunk in column.chunks:
            if chunk.type.byte_width != nbytes:
                raise ValueError(
                    f"{path}: column {name!r} holds {chunk.type.byte_width}-byte values; "
                    f"the metadata promises {width} float32 values ({nbytes} bytes)"
                )
            rows = np.frombuffer(
                chunk.buffers()[1],
                dtype=_DTYPE,
                count=len(chunk) * width,
                offset=chunk.offset * nbytes,
            ).reshape(-1, width)
            for c, (offset, length) in parts.items():
                targets[c][row : row + len(chunk)] = rows[:, offset : offset + length]
            row += len(chunk)
        del column  # one row group of Arrow memory at a time
