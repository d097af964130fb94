"""An uploaded file, read as a raw file from inside a temporary folder of its own, or as
an image from memory.

A raw file is written under a fixed name in a new temporary folder (nothing of
the sender's file name reaches a path: only its ending, which says the
format), read by the batch reader (pickles through the allow-listing
unpickler), and the folder is removed as soon as the file is read. An image
is decoded from the uploaded bytes (Pillow finds the format in the content),
so it is written nowhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from spectragrid.data.raw_formats import raw_format
from spectragrid.serve.batch_input import BatchFile, read_batch_file
from spectragrid.serve.image_input import ImageBatch, ImageSpec, read_image_upload

_FORMAT_ENDINGS = {"pickle": ".pkl", "csv": ".csv", "parquet": ".parquet"}
_COMPRESSIONS = (".gz", ".bz2", ".xz")
# How much of a sender's file name a message or the page shows.
_NAME_CHARS = 120


def shown_name(filename: str | None) -> str:
    """The sender's file name as text to show: its last part, cut short."""
    name = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1] or "upload"
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


def safe_ending(filename: str | None) -> str:
    """The ending that gives the format (and compression) of `filename`, from a fixed list."""
    name = (filename or "").lower()
    compression = next((c for c in _COMPRESSIONS if name.endswith(c)), "")
    return _FORMAT_ENDINGS[raw_format(name)] + compression


def read_upload(data: bytes, filename: str | None, columns: dict) -> BatchFile:
    """The upload `data`, sent as `filename`, read as a raw file; messages name the sender's
    file, never the temporary one."""
    name = shown_name(filename)
    with tempfile.TemporaryDirectory(prefix="spectragrid-upload-") as folder:
        path = Path(folder) / f"upload{safe_ending(filename)}"
        path.write_bytes(data)
        try:
            return read_batch_file(path, columns, name=name)
        except Exception as err:
            # the reader names the file it opened; the sender knows theirs
            err.args = tuple(
                a.replace(str(path), name) if isinstance(a, str) else a for a in err.args
            )
            raise


def read_study_upload(
    data: bytes, filename: str | None, columns: dict, images: ImageSpec | None
) -> BatchFile | ImageBatch:
    """The upload as the study's served models take it: an image when they take `images`,
    else a raw spectra file."""
    if images is not None:
        return read_image_upload(data, shown_name(filename), images)
    return read_upload(data, filename, columns)
