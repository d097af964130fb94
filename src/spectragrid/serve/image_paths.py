"""The image files of a batch of an image study: each listed file, and every file under a
listed folder.

Imported by the workflow's rule file while it plans (to track a batch's files by
content): the standard library only. A folder is listed as the ingest lists an
image folder (spectragrid.data.image_files): every regular file below it, at
any depth, sorted by relative path, hidden files and symbolic links left out;
a file that is no image is then scored as unreadable rather than passed over.
"""

from __future__ import annotations

import os
from pathlib import Path


def _folder_files(root: Path) -> list[tuple[str, str]]:
    found = []
    for folder, dirs, files in os.walk(root):
        # hidden folders are editors' and file managers' leftovers, as hidden files are
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            found.append((path.relative_to(root).as_posix(), str(path)))
    return sorted(found)


def image_entries(paths: list[str]) -> list[tuple[str, str]]:
    """(sample id, path) of each image of the batch `paths`, in order: a file's id is its
    name, a folder's files' ids their paths relative to it (the ingest's ids)."""
    entries: list[tuple[str, str]] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            entries += _folder_files(path)
        else:
            entries.append((path.name, str(path)))
    return entries


def tracked_files(paths: list[str]) -> list[str]:
    """The files whose content a batch's scores depend on: folders expanded to their files."""
    return [path for _, path in image_entries(paths)]
