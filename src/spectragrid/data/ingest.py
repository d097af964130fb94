"""Raw files -> cleaning -> clean.parquet, cleaning report and dropped-rows list.

This is what the workflow's ingest rule calls. All three outputs appear
together or not at all: each is written under a temporary name beside its
target and renamed only once everything has been computed and written, so
an error (bad data, full disk) leaves no output that looks complete. Raw
files are only ever opened for reading, and only when they are regular
files: every raw path is checked before the first is read, so a FIFO, a
device or a directory among them fails the job at once, by name.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from spectragrid.core.config import validate
from spectragrid.core.spreadsheet import neutralised
from spectragrid.data.clean_file import write_clean
from spectragrid.data.cleaning import clean
from spectragrid.data.fold_notices import fold_notices
from spectragrid.data.raw import RawDataError, read_raw_file
from spectragrid.data.raw_formats import raw_format
from spectragrid.data.unpickle import check_regular_file

__all__ = ["ingest_with_config", "run_ingest"]

log = logging.getLogger(__name__)
# How a raw file's format is named when it is not a regular file.
_WHAT = {"pickle": "pickle", "csv": "CSV", "parquet": "Parquet"}


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _check_raw_files(raw_files: list[Path]) -> None:
    if not raw_files:
        raise RawDataError("no raw file given")
    seen: dict[str, Path] = {}
    for path in raw_files:
        resolved = path.resolve()
        if any(p.resolve() == resolved for p in seen.values()):
            raise RawDataError(f"{path}: listed twice among the raw files")
        if path.name in seen:
            raise RawDataError(
                f"{seen[path.name]} and {path} share the file name {path.name!r}; "
                "rows are traced by file name, so rename one of them"
            )
        seen[path.name] = path
    for path in raw_files:
        check_regular_file(path, f"{_WHAT[raw_format(path)]} file")


def run_ingest(
    raw_files: list[Path],
    out_parquet: Path,
    out_report: Path,
    out_dropped: Path,
    columns: dict,
    channels: list[str],
    label_map: dict,
    saturation: dict,
    min_integral: dict,
    *,
    k: int,
    grouped: bool,
) -> dict[str, Any]:
    """Read, clean and write one dataset; returns the cleaning report.

    `k` and `grouped` (the `splits` section) let the report say, in its
    `notices`, which labels k folds cannot spread (`fold_notices`).
    """
    raw_files = [Path(p) for p in raw_files]
    out_parquet, out_report, out_dropped = Path(out_parquet), Path(out_report), Path(out_dropped)
    _check_raw_files(raw_files)

    tables = [read_raw_file(path, columns, channels) for path in raw_files]
    result = clean(tables, label_map, saturation, min_integral)
    # The kept rows' blocks are the only references left to the raw arrays: each
    # file's memory is freed as soon as write_clean has written its rows.
    del tables
    report = dict(result.report)
    report["notices"] = fold_notices(result.table, k, grouped, columns.get("group"))
    for notice in report["notices"]:
        log.warning(notice)
    report["outputs"] = {
        "clean": str(out_parquet),
        "report": str(out_report),
        "dropped": str(out_dropped),
    }

    targets = (out_parquet, out_report, out_dropped)
    temps = [_tmp_path(p) for p in targets]
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
        # write_clean is itself atomic; give it the temporary name so that the three
        # renames below happen only after every file is complete.
        write_clean(
            temps[0],
            result.table,
            result.spectra,
            result.wavelengths,
            result.tabular,
            result.provenance,
            release=True,
        )
        temps[1].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        neutralised(result.dropped).to_csv(temps[2], index=False, lineterminator="\n")
        for tmp, path in zip(temps, targets, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return report


def ingest_with_config(raw_files: list[Path], folder: Path, config: dict) -> Path:
    """`run_ingest` with the dataset, cleaning and splits sections of a study config.

    Writes clean.parquet, cleaning_report.json and dropped.csv into `folder`
    (what the workflow's ingest rule does, for scripts and tests).
    """
    config = validate(config)
    dataset, cleaning, splits = config["dataset"], config["cleaning"], config["splits"]
    folder = Path(folder)
    run_ingest(
        [Path(p) for p in raw_files],
        folder / "clean.parquet",
        folder / "cleaning_report.json",
        folder / "dropped.csv",
        dataset["columns"],
        dataset["channels"],
        dataset["label_map"],
        cleaning["saturation"],
        cleaning["min_integral"],
        k=splits["k"],
        grouped=splits["grouped"],
    )
    return folder / "clean.parquet"
