"""One process at a time per cell.

When Snakemake is killed, the training job it started may go on as an
orphan; a Snakemake started again meanwhile starts the same cell a second
time. Both would then save the same resume state and write the same outputs.
Each cell therefore holds an exclusive lock on a file of its own while it
trains; a second process waits for it and, once the first has finished,
finds the cell's outputs complete and checked and keeps them instead of
training again. The lock is the kernel's (flock): it goes with the process,
so a killed holder never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def cell_lock(path: Path | None) -> Iterator[None]:
    """Hold the exclusive lock `path` (created if needed); None holds nothing."""
    if path is None:
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock file stays: removing it while another process waits on it would
    # let a third process lock a new file of the same name at the same time.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another process is training this cell (%s): waiting for it", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
