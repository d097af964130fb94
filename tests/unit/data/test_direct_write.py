"""Writing past the page cache: the same bytes as an ordinary write, whatever the file system."""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import numpy as np
import pytest

from spectragrid.data import direct_write
from spectragrid.data.direct_write import CHUNK, open_direct

SIZES = [0, 1, 4095, 4096, 4097, CHUNK - 1, CHUNK, 2 * CHUNK + 123, 3 * CHUNK]


def _pieces(size: int, seed: int) -> list[bytes]:
    """`size` random bytes cut into pieces of random length (some larger than a chunk)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    cuts = np.sort(rng.integers(0, size + 1, 6)) if size else np.array([], dtype=int)
    bounds = [0, *cuts.tolist(), size]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@pytest.mark.parametrize("size", SIZES)
def test_the_file_holds_exactly_what_was_written(tmp_path: Path, size: int) -> None:
    pieces = _pieces(size, seed=size)
    path = tmp_path / "out.bin"
    written = 0
    with open_direct(path) as sink:
        for piece in pieces:
            assert sink.write(piece) == len(piece)
            written += len(piece)
            assert sink.tell() == written
    assert path.read_bytes() == b"".join(pieces)
    assert path.stat().st_size == size


def test_a_file_system_that_refuses_o_direct_at_open_gets_an_ordinary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refuse(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_write.os, "open", refuse)
    pieces = _pieces(CHUNK + 10, seed=1)
    with open_direct(tmp_path / "out.bin") as sink:
        assert not isinstance(sink, direct_write._DirectFile)
        for piece in pieces:
            sink.write(piece)
    assert (tmp_path / "out.bin").read_bytes() == b"".join(pieces)


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this system")
def test_a_file_system_that_refuses_the_first_direct_write_is_written_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    refused = []

    def refuse_once(fd, data):
        if not refused:
            refused.append(len(data))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(direct_write.os, "write", refuse_once)
    pieces = _pieces(2 * CHUNK + 77, seed=2)
    path = tmp_path / "out.bin"
    sink = open_direct(path)
    if not isinstance(sink, direct_write._DirectFile):
        sink.close()
        pytest.skip("this file system refuses O_DIRECT at open")
    with sink:
        for piece in pieces:
            sink.write(piece)
    assert refused == [CHUNK] and not sink.direct
    assert path.read_bytes() == b"".join(pieces)


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this system")
def test_a_failed_write_is_raised_not_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    sink = open_direct(tmp_path / "out.bin")
    if not isinstance(sink, direct_write._DirectFile):
        sink.close()
        pytest.skip("this file system refuses O_DIRECT at open")
    monkeypatch.setattr(direct_write.os, "write", full)
    with pytest.raises(OSError, match="No space left"), sink:
        for piece in _pieces(3 * CHUNK, seed=3):
            sink.write(piece)
    assert sink.closed
