"""Corrected labels from a person's review, applied to the ingested labels.

A label patch is a CSV with `sample_id` and `corrected_label` columns: the
review CSV written beside each review sheet is one, once a reviewer has filled
in its `corrected_label` column (other columns are ignored, blank corrections
are skipped). A corrected label is a full-truth value such as `OK0` or `VR11`
(for a data set with one label column, a label of `dataset.label_map`), so
one patch serves every target.

The patch never touches the folds: samples are split on their ingested labels,
so a correction changes what a cell learns and is scored against, not which
fold a sample sits in. Each cell receives only the patch entries that change a
class of its own target; Snakemake sees them as a parameter of the cell, which
is why applying a patch reruns exactly the cells whose data it changes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core.spreadsheet import restore
from spectragrid.data.targets import (
    SEVERITIES,
    TargetError,
    full_truth,
    is_one_column,
    resolve,
    split_combo,
)
from spectragrid.data.unpickle import RawDataError, describe_size, open_regular_file, shown

KEY = "dataset.label_patch"
REQUIRED = ("sample_id", "corrected_label")
# A patch of 100,000 corrections is about 3 MB; anything this large is not a patch.
MAX_PATCH_BYTES = 64 << 20


class LabelPatchError(ValueError):
    """A label patch that cannot be applied as written."""


def read_label_patch(
    paths: list[str | Path], severities: list[str], *, one_column: bool = False
) -> dict[str, str]:
    """sample id -> corrected full-truth label, merged over the patch files.

    `severities` are the labels `dataset.label_map` can produce; with
    `one_column` (`dataset.columns.label`), a corrected label is one of them
    as it is, without a type number. Every problem
    names the file and its line (the header is line 1). A path that is not a
    readable regular file is refused before anything is read from it, and a
    file that is not a label patch (no header naming the two columns, not
    UTF-8 text, not CSV) is refused without quoting what it holds.
    """
    patch: dict[str, str] = {}
    origin: dict[str, str] = {}
    for path in map(Path, paths):
        if path.resolve().is_relative_to(Path("results").resolve()):
            raise LabelPatchError(
                f"{KEY}: {path} lies under results/, which the workflow rewrites; "
                "copy the reviewed CSV out of results/ (e.g. to config/) and name that copy"
            )
        for line, sample_id, label in _rows(path):
            where = f"{path} line {line}"
            if not sample_id:
                raise LabelPatchError(
                    f"{KEY}: {where}: corrected label {shown(label, 60)} has no sample_id"
                )
            check_label(label, severities, where, one_column=one_column)
            if sample_id in patch and patch[sample_id] != label:
                raise LabelPatchError(
                    f"{KEY}: {where}: sample {shown(sample_id, 60)} is corrected to "
                    f"{shown(label, 60)} here but to {patch[sample_id]!r} at {origin[sample_id]}"
                )
            patch[sample_id] = label
            origin[sample_id] = where
    return patch


def _open_patch(path: Path) -> io.BufferedIOBase:
    """The patch file opened for reading, once it is known to be a readable regular file."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        raise LabelPatchError(f"{KEY}: {path} does not exist") from None
    except OSError:
        pass  # open_regular_file says what is wrong with it
    try:
        handle, info = open_regular_file(path, "CSV file")
    except RawDataError as err:
        # the message starts with the path: say which key named it
        raise LabelPatchError(f"{KEY}: {err}") from None
    if info.st_size > MAX_PATCH_BYTES:
        handle.close()
        raise LabelPatchError(
            f"{KEY}: {path} is {describe_size(info.st_size)}; a label patch is a CSV of "
            f"sample_id and corrected_label, at most {describe_size(MAX_PATCH_BYTES)}"
        )
    return handle  # type: ignore[return-value]


class _TextLines:
    """The file's lines as text, decoded one by one so that an error names its line."""

    def __init__(self, path: Path, raw: io.BufferedIOBase) -> None:
        self._path, self._lines = path, iter(raw)
        self.number = 0  # of the last line handed out

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.number += 1
        try:
            return line.decode("utf-8-sig" if self.number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise LabelPatchError(
                f"{KEY}: {self._path} line {self.number}: not UTF-8 text; expected a CSV file "
                f"with the columns {', '.join(REQUIRED)}"
            ) from None


def _rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line, sample id, corrected label) of each filled-in row of one patch file."""
    with _open_patch(path) as raw:
        lines = _TextLines(path, raw)
        reader = csv.DictReader(lines)
        try:
            fields = reader.fieldnames or []
            missing = [c for c in REQUIRED if c not in fields]
            if missing:
                # the file's first line is not quoted: it may be anything but a patch
                raise LabelPatchError(
                    f"{KEY}: {path} line 1: expected a CSV header naming the columns "
                    f"{', '.join(REQUIRED)} (a review CSV with its corrected_label column "
                    f"filled in); the header has no column {', '.join(missing)}"
                )
            for line, row in enumerate(reader, start=2):
                label = str(restore((row["corrected_label"] or "").strip()))
                if label:
                    yield line, str(restore((row["sample_id"] or "").strip())), label
        except csv.Error as err:
            raise LabelPatchError(
                f"{KEY}: {path} line {lines.number}: not a CSV line ({err}); expected a "
                f"CSV file with the columns {', '.join(REQUIRED)}"
            ) from None


def check_label(label: str, severities: list[str], where: str, *, one_column: bool = False) -> None:
    """A corrected label must be a full-truth value: a known severity, then a type number;
    with one label column, a known label."""
    if one_column:
        if label not in severities:
            known = ", ".join(sorted(set(severities)))
            raise LabelPatchError(
                f"{KEY}: {where}: corrected label {shown(label, 60)} is not a label of "
                f"dataset.label_map; write one of {known}"
            )
        return
    try:
        severity, _ = split_combo(label)
    except TargetError:
        severity = None
    if severity not in severities:
        known = sorted(set(severities), key=lambda s: (s not in SEVERITIES, s))
        raise LabelPatchError(
            f"{KEY}: {where}: corrected label {shown(label, 60)} is not a full-truth value; "
            f"write a label of dataset.label_map ({', '.join(known)}) followed by the type "
            "number, e.g. OK0 or VR11"
        )


def apply_label_patch(table: pd.DataFrame, patch: dict[str, str] | list) -> pd.DataFrame:
    """A copy of `table` with the patched samples' full truth, severity and type replaced
    (full truth and label, for a table with one label column)."""
    entries = dict(patch)
    if not entries:
        return table
    ids = table["sample_id"].astype(str)
    unknown = sorted(set(entries) - set(ids))
    if unknown:
        raise LabelPatchError(
            f"{KEY}: {len(unknown)} patched sample(s) are not in the cleaned dataset "
            f"(unknown, or dropped at cleaning), e.g. {unknown[:5]}"
        )
    patched = table.copy()
    rows = ids.isin(entries).to_numpy()
    corrected = ids[rows].map(entries)
    if is_one_column(table):
        patched.loc[rows, "label"] = corrected.to_numpy(dtype=object)
        patched.loc[rows, "full_truth"] = corrected.to_numpy(dtype=object)
        return patched
    split = [split_combo(v) for v in corrected]
    patched.loc[rows, "severity"] = [s for s, _ in split]
    patched.loc[rows, "type"] = np.asarray([t for _, t in split], dtype=np.int64)
    patched["full_truth"] = full_truth(patched["severity"], patched["type"]).astype(object)
    return patched


def patch_for_target(
    table: pd.DataFrame, patch: dict[str, str], name: str, spec: str | dict
) -> list[list[str]]:
    """The patch entries that change target `name`'s data, as sorted [id, label] pairs.

    When a correction alters the target itself (a class gains or loses a
    full-truth value), every entry counts: the class list is part of the data.
    """
    if not patch:
        return []
    patched = apply_label_patch(table, patch)
    before = resolve(name, spec, table)
    try:
        after = resolve(name, spec, patched)
    except TargetError as err:
        raise LabelPatchError(f"{KEY}: after the corrections, {err}") from None
    if (before.classes, before.members) != (after.classes, after.members):
        changed = np.ones(len(table), dtype=bool)
    else:
        changed = before.encode(table["full_truth"]) != after.encode(patched["full_truth"])
    ids = table["sample_id"].astype(str)
    touched = changed & ids.isin(patch).to_numpy()
    return sorted([sid, patch[sid]] for sid in ids[touched])
