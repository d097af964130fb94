"""A cell's outputs carry their sha256, and every reader checks them.

A cell's metrics.json, written last, records the sha256 of every other file
the cell wrote. The sheet, the summary and the label-issues job check the
files they read against it, so a truncated or altered model, ONNX file or
predictions file is reported by name instead of being read (or listed) as if
it were whole. The cell's outputs are then removed, so that the next run of
Snakemake sees them missing and trains the cell again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from spectragrid.core import layout

MANIFEST_KEY = "outputs"
# Every cell file but metrics.json, which holds the checksums of the others.
CHECKED = tuple(name for key, name in layout.CELL_FILES.items() if key != "metrics")


class CorruptOutputError(RuntimeError):
    """A cell output that does not match the checksum its cell recorded."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checksums(cell_dir: Path) -> dict[str, str]:
    """file name -> sha256 of a cell's outputs other than metrics.json."""
    return {name: sha256_file(Path(cell_dir) / name) for name in CHECKED}


def _remove_outputs(cell_dir: Path) -> None:
    """The cell's files, and the study's summary tables that list it.

    Snakemake regenerates a missing file only where something that needs it is
    out of date: without the summary, the next run rebuilds it and so trains
    the cell again; with it, the cell's absence would go unnoticed.
    """
    paths = [Path(cell_dir) / name for name in layout.CELL_FILES.values()]
    paths += [Path(cell_dir) / name for name in layout.SHEET_FILES.values()]
    with contextlib.suppress(layout.LayoutError):
        root = Path(layout.results_root(cell_dir))
        summary = (layout.SUMMARY_HTML, layout.SUMMARY_CSV, layout.SUMMARY_PARQUET)
        paths += [root / Path(name).relative_to(layout.RESULTS) for name in summary]
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _corrupt(cell_dir: Path, name: str, why: str) -> CorruptOutputError:
    _remove_outputs(cell_dir)
    return CorruptOutputError(
        f"{Path(cell_dir) / name}: {why}; the cell's outputs were removed, run snakemake "
        "again to train it anew"
    )


def verify_cell(cell_dir: Path, names: Iterable[str] = CHECKED) -> dict:
    """The cell's metrics, once `names` (default: every output) match their recorded
    sha256. Anything else removes the cell's outputs and raises CorruptOutputError."""
    cell_dir = Path(cell_dir)
    metrics_name = layout.CELL_FILES["metrics"]
    try:
        metrics = json.loads((cell_dir / metrics_name).read_text())
    except FileNotFoundError:
        raise _corrupt(cell_dir, metrics_name, "missing") from None
    except (OSError, ValueError) as err:
        raise _corrupt(cell_dir, metrics_name, f"unreadable ({type(err).__name__})") from None
    recorded = metrics.get(MANIFEST_KEY) if isinstance(metrics, dict) else None
    if not isinstance(recorded, dict):
        raise _corrupt(cell_dir, metrics_name, "holds no checksums of the cell's outputs")
    for name in names:
        path = cell_dir / name
        if not path.is_file():
            raise _corrupt(cell_dir, name, "missing")
        if recorded.get(name) != sha256_file(path):
            raise _corrupt(
                cell_dir, name, "does not match the checksum recorded when the cell was trained"
            )
    return metrics


def changed_since_recorded(cell_dir: Path) -> dict[str, str]:
    """The files of a trained cell that are missing or were written after its
    metrics.json, by file name: "missing", or their mtime in nanoseconds (so that a
    second edit of the same file is a change too). Empty when metrics.json is absent:
    the cell is then not trained, and Snakemake trains it.

    Snakemake tracks only a cell's metrics.json (layout.CELL_TRACKED_FILES); this
    is how any other file of the cell, deleted or edited, reaches the sheet job,
    which checks every file against its checksum."""
    cell_dir = Path(cell_dir)
    try:
        written = (cell_dir / layout.CELL_FILES["metrics"]).stat().st_mtime_ns
    except FileNotFoundError:
        return {}
    changed = {}
    for name in CHECKED:
        try:
            mtime = (cell_dir / name).stat().st_mtime_ns
        except FileNotFoundError:
            changed[name] = "missing"
            continue
        if mtime > written:
            changed[name] = str(mtime)
    return changed
