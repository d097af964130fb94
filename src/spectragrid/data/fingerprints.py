"""The content of the raw files, as the workflow plans with it: sha256 per file.

Snakemake decides what to rerun from modification times by default: a copy or
checkout that loses them replans the whole study, and an edit that keeps them
(a restored mtime) replans nothing. The ingest rule therefore ignores its raw
files' times and takes their sha256 as a parameter instead, so only a change
of content reruns it.

Hashing every raw file at every start of Snakemake (and of every cluster job,
which starts Snakemake again) would cost seconds per gigabyte, so each digest
is cached under the file's identity and times: device, inode, size,
modification and status-change time. No write can keep all of these: even an
edit whose modification time is set back changes the status-change time,
which no user command can restore, and the file is hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from spectragrid.core.atomic import write_atomic

CHUNK = 8 << 20


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_cache(cache: Path) -> dict:
    with contextlib.suppress(OSError, ValueError):
        entries = json.loads(cache.read_text())
        if isinstance(entries, dict):
            return entries
    return {}


def content_digests(paths: list[str], cache: Path) -> dict[str, str]:
    """path -> sha256 of each file, or "missing" where there is no regular file
    (Snakemake then reports the missing input itself)."""
    entries = _read_cache(cache)
    digests: dict[str, str] = {}
    changed = False
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            digests[path] = "missing"
            continue
        key = str(Path(path).resolve())
        entry = entries.get(key)
        if isinstance(entry, dict) and entry.get("identity") == _identity(stat):
            digests[path] = str(entry["sha256"])
            continue
        if not Path(path).is_file():
            digests[path] = "missing"
            continue
        digests[path] = sha256_of(Path(path))
        entries[key] = {"identity": _identity(stat), "sha256": digests[path]}
        changed = True
    if changed:
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache, json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return digests
