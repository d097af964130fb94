"""Outputs appear whole or not at all.

Every file spectragrid writes goes to a hidden temporary name in the same
folder and is renamed over the final name once complete: a rename within one
file system is atomic, so a reader (a downstream job, a user, Snakemake after
a killed job) never sees half a file, and a writer that fails leaves the
previous version, or nothing, at the final name.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A hidden name beside `path`, unique per process, with `path`'s suffix kept last
    (writers that infer the format or the compression from it still do)."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(content, bytes):
            tmp.write_bytes(content)
        else:
            tmp.write_text(content, encoding="utf-8")
