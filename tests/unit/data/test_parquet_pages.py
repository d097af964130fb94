"""The page-by-page reader of spectrum columns (data.parquet_pages): the values Arrow
reads, and a refusal (never a wrong value) for pages it does not take."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spectragrid.data.parquet_pages import Page, plain_pages, read_pages

WIDTH = 12 * 4  # 12 float32 points


def _write(path: Path, values: np.ndarray, nullable: bool = True, **options) -> None:
    column = pa.array([row.tobytes() for row in values], type=pa.binary(WIDTH))
    schema = pa.schema([pa.field("spectrum", pa.binary(WIDTH), nullable=nullable)])
    settings = {
        "compression": "none",
        "use_dictionary": False,
        "write_statistics": False,
        "row_group_size": 300,
        "data_page_size": 1000,  # several pages per row group,
        "write_batch_size": 20,  # checked every 20 rows
    }
    settings.update(options)
    pq.write_table(pa.table([column], schema=schema), path, **settings)


def _read(path: Path, n: int) -> tuple[list[bool], np.ndarray]:
    """Each row group's pages found by plain_pages and read into an (n, 12) array; for
    each group, whether its pages were taken."""
    parquet = pq.ParquetFile(path)
    nullable = parquet.metadata.schema.column(0).max_definition_level > 0
    out = np.full((n, 12), np.nan, np.float32)
    taken, row = [], 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for group in range(parquet.num_row_groups):
            chunk = parquet.metadata.row_group(group).column(0)
            size = parquet.metadata.row_group(group).num_rows
            pages = plain_pages(fd, chunk, WIDTH, nullable)
            taken.append(pages is not None)
            if pages is not None:
                assert sum(p.rows for p in pages) == size
                assert read_pages(fd, pages, WIDTH, out[row : row + size])
            row += size
    finally:
        os.close(fd)
    return taken, out


@pytest.mark.parametrize("nullable", [True, False])
def test_plain_pages_are_read_as_arrow_reads_them(tmp_path, nullable):
    values = np.random.default_rng(0).normal(size=(1000, 12)).astype(np.float32)
    values[3, :2] = [-0.0, np.nan]
    path = tmp_path / "plain.parquet"
    _write(path, values, nullable=nullable)
    assert pq.ParquetFile(path).num_row_groups == 4
    taken, out = _read(path, len(values))
    assert taken == [True] * 4
    assert out.tobytes() == values.tobytes()
    fd = os.open(path, os.O_RDONLY)
    try:
        pages = plain_pages(
            fd, pq.ParquetFile(path).metadata.row_group(0).column(0), WIDTH, nullable
        )
    finally:
        os.close(fd)
    assert len(pages) > 1  # several pages per row group, each found
    assert pages == sorted(pages, key=lambda p: p.offset)


def test_a_file_cut_short_reads_false_and_a_wrong_size_is_refused(tmp_path):
    values = np.ones((100, 12), np.float32)
    path = tmp_path / "plain.parquet"
    _write(path, values, row_group_size=100)
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        out = np.empty((10, 12), np.float32)
        assert not read_pages(fd, [Page(end - 100, 10)], WIDTH, out)  # past the end
        with pytest.raises(ValueError, match="bytes to fill"):
            read_pages(fd, [Page(0, 10)], WIDTH, np.empty((9, 12), np.float32))
        with pytest.raises(ValueError, match="C-contiguous"):
            read_pages(fd, [Page(0, 10)], WIDTH, np.empty((10, 2, 12), np.float32)[:, 1])
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "options",
    [{"compression": "zstd"}, {"use_dictionary": True}, {"data_page_version": "2.0"}],
    ids=["compressed", "dictionary", "page v2"],
)
def test_pages_it_does_not_take_are_refused(tmp_path, options):
    values = np.zeros((500, 12), np.float32)  # all equal: a dictionary of one value
    path = tmp_path / "other.parquet"
    _write(path, values, **options)
    taken, _ = _read(path, len(values))
    assert not any(taken)


def test_a_missing_spectrum_is_refused_not_read_as_a_shifted_row(tmp_path):
    values = np.arange(24, dtype=np.float32).reshape(2, 12)
    column = pa.array([values[0].tobytes(), None, values[1].tobytes()], type=pa.binary(WIDTH))
    path = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"spectrum": column}), path, compression="none", use_dictionary=False)
    taken, _ = _read(path, 3)
    assert taken == [False]


@pytest.mark.parametrize(
    "damage",
    [b"\xff" * 16, b"\x1c" * 600],  # garbage; structs nested 600 deep
    ids=["garbage", "nested"],
)
def test_a_damaged_page_header_is_refused(tmp_path, damage):
    values = np.ones((100, 12), np.float32)
    path = tmp_path / "damaged.parquet"
    _write(path, values, row_group_size=100)
    offset = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(damage)
    taken, _ = _read(path, len(values))
    assert taken == [False]


def test_without_preadv_every_chunk_goes_to_arrow(tmp_path, monkeypatch):
    values = np.ones((100, 12), np.float32)
    path = tmp_path / "plain.parquet"
    _write(path, values)
    monkeypatch.delattr(os, "preadv")
    taken, _ = _read(path, len(values))
    assert not any(taken)
