"""A clean file's spectrum column read page by page, without Arrow's decoder.

The spectra are stored as one uncompressed, PLAIN-encoded fixed-size binary
column (clean_file). Arrow decodes such a column chunk into a buffer of its
own (tens of MB per row group), which the reader then copied again into the
(N, C, L) array: two trips through memory where `np.load` makes one. Here
`plain_pages` finds where each data page's values lie, and `read_pages`
reads them with one `preadv` per page straight into the caller's buffer: the
rows of the (N, C, L) array itself when the file's rows are that array's
rows, so the spectra cross memory once, as with `np.load`
(docs/benchmarks.md, "Reading the clean file").

Only what this reader can check is read this way: a data page (version 1)
of PLAIN values, uncompressed, whose bytes after its definition levels are
exactly its values (so no value is missing). Anything else, or a page
header it cannot parse, makes `plain_pages` return None, and the caller
reads the row group through Arrow.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

# Thrift's compact protocol: the field types this reader meets in a page header.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
# PageHeader: type, compressed_page_size, data_page_header (num_values, encoding).
_PAGE_HEADER = {1: None, 3: None, 5: {1: None, 2: None}}
_DATA_PAGE = 0
_PLAIN = 0
# A page header is tens of bytes; one with statistics of 2 kB values, a few kB.
_HEADER_READ = 512
_HEADER_MAX = 1 << 20
# Parquet's page header nests three structs deep (statistics in a data page header).
_MAX_DEPTH = 8


class PageHeaderError(ValueError):
    """A page header this reader cannot parse."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if pos >= len(buf):
            raise PageHeaderError("truncated")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise PageHeaderError("varint longer than 64 bits")


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _skip(buf: bytes, pos: int, kind: int, depth: int) -> int:
    """The position after a value of `kind` at `pos`, `depth` structs or lists down."""
    if depth > _MAX_DEPTH:
        raise PageHeaderError("nested deeper than a page header is")
    if kind in (_TRUE, _FALSE):
        return pos
    if kind == _BYTE:
        return pos + 1
    if kind in (_I16, _I32, _I64):
        return _varint(buf, pos)[1]
    if kind == _DOUBLE:
        return pos + 8
    if kind == _BINARY:
        size, pos = _varint(buf, pos)
        return pos + size
    if kind in (_LIST, _SET):
        if pos >= len(buf):
            raise PageHeaderError("truncated")
        head = buf[pos]
        pos += 1
        size, element = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(buf, pos)
        for _ in range(size):
            pos = _skip(buf, pos, element, depth + 1)
        return pos
    if kind == _MAP:
        size, pos = _varint(buf, pos)
        if size:
            if pos >= len(buf):
                raise PageHeaderError("truncated")
            types = buf[pos]
            pos += 1
            for _ in range(size):
                pos = _skip(buf, _skip(buf, pos, types >> 4, depth + 1), types & 0x0F, depth + 1)
        return pos
    if kind == _STRUCT:
        return _struct(buf, pos, {}, depth + 1)[1]
    raise PageHeaderError(f"unknown field type {kind}")


def _struct(buf: bytes, pos: int, wanted: dict, depth: int = 0) -> tuple[dict, int]:
    """The fields of the struct at `pos` that `wanted` names (field id -> None for an
    integer, or the wanted fields of a nested struct), and the position after it."""
    found: dict = {}
    field = 0
    while True:
        if pos >= len(buf):
            raise PageHeaderError("truncated")
        head = buf[pos]
        pos += 1
        if head == 0:
            return found, pos
        delta, kind = head >> 4, head & 0x0F
        if delta:
            field += delta
        else:
            raw, pos = _varint(buf, pos)
            field = _zigzag(raw)
        if field in wanted and wanted[field] is None and kind in (_I16, _I32, _I64):
            raw, pos = _varint(buf, pos)
            found[field] = _zigzag(raw)
        elif field in wanted and wanted[field] is not None and kind == _STRUCT:
            found[field], pos = _struct(buf, pos, wanted[field], depth + 1)
        else:
            pos = _skip(buf, pos, kind, depth)


def _page_header(fd: int, offset: int) -> tuple[dict, int]:
    """The header of the page at `offset` and its length in bytes."""
    size = _HEADER_READ
    while True:
        buf = os.pread(fd, size, offset)
        try:
            return _struct(buf, 0, _PAGE_HEADER)
        except PageHeaderError:
            if len(buf) < size or size >= _HEADER_MAX:
                raise
            size *= 8


@dataclass(frozen=True)
class Page:
    """A data page's values: `rows` values of the column's width from file offset `offset`."""

    offset: int
    rows: int


def plain_pages(
    fd: int, column: pq.ColumnChunkMetaData, width: int, nullable: bool
) -> list[Page] | None:
    """The data pages of the column chunk `column` (values `width` bytes each) of the file
    open as `fd`, in order; `nullable`: the column may hold nulls (its pages then start
    with definition levels). None when the chunk is not made of pages this reader
    takes (module docstring)."""
    if (
        not hasattr(os, "preadv")  # not every platform's Python has it
        or column.compression != "UNCOMPRESSED"
        or column.physical_type != "FIXED_LEN_BYTE_ARRAY"
        or column.dictionary_page_offset is not None
        or width <= 0
    ):
        return None
    offset, end = column.data_page_offset, column.data_page_offset + column.total_compressed_size
    pages = []
    while offset < end:
        try:
            header, header_size = _page_header(fd, offset)
        except PageHeaderError:
            return None
        page = header.get(5, {})
        kind, size, n, encoding = header.get(1), header.get(3), page.get(1), page.get(2)
        if kind != _DATA_PAGE or encoding != _PLAIN or size is None or n is None:
            return None
        data = offset + header_size
        # A nullable column's definition levels come first, their length in 4 bytes; the
        # values fill the rest of the page only when none is missing.
        values = data
        if nullable:
            length = os.pread(fd, 4, data)
            if len(length) != 4:
                return None
            values = data + 4 + struct.unpack("<i", length)[0]
        if n < 0 or values < data or data + size - values != n * width:
            return None
        pages.append(Page(values, n))
        offset = data + size
    return pages


def read_pages(fd: int, pages: list[Page], width: int, out: np.ndarray) -> bool:
    """Read `pages` (values `width` bytes each) one after another into `out`, a
    C-contiguous array of exactly their bytes. False when the file ends early."""
    if not out.flags.c_contiguous:
        raise ValueError("read_pages fills a C-contiguous array")
    buffer = memoryview(out.reshape(-1).view(np.uint8))
    if len(buffer) != sum(p.rows for p in pages) * width:
        raise ValueError(f"{len(buffer)} bytes to fill; the pages hold a different number")
    at = 0
    for page in pages:
        nbytes = page.rows * width
        if nbytes and os.preadv(fd, [buffer[at : at + nbytes]], page.offset) != nbytes:
            return False
        at += nbytes
    return True
