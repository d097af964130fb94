"""New raw files read for scoring: the training data's reader, and its checks per row.

A batch file goes through the reader of training data
(spectragrid.data.raw_formats: regular files only, allow-listed unpickling,
capped decompression; the same `<channel>_<wavelength>` columns and axis
checks of spectragrid.data.raw). Labels, groups and provenance are not
needed. Nothing is dropped: every row is scored or listed with the reason
the served model cannot score it, which are the cleaning's reasons
(spectragrid.data.cleaning) that apply to one row without labels:

- a channel the model needs is not in the file, or on another wavelength axis
  (every row: `channel`, `axis`), or a tabular column it needs is missing;
- `nan`: a missing or infinite value in a channel or tabular value it uses;
- `saturation`: a channel above `cleaning.saturation`;
- `low_integral`: a channel's sum below `cleaning.min_integral`;
- `identical_channels`: two of its channels equal point for point.

Duplicates and unknown labels are training concerns: a batch row is scored
whatever its label and however often it repeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.data.clean_file import common_axis
from spectragrid.data.raw import check_axis, spectral_columns
from spectragrid.data.raw_formats import read_raw_frame
from spectragrid.data.unpickle import RawDataError, refuse_zone_paths, shown
from spectragrid.serve.model import ServedModel


@dataclass
class BatchFile:
    """One raw file to score. `table` holds sample_id, source_file and source_row."""

    table: pd.DataFrame
    spectra: dict[str, np.ndarray]  # channel -> (N, L) float64, every channel in the file
    wavelengths: dict[str, np.ndarray]
    tabular: dict[str, np.ndarray]  # column -> (N,) float64, the numeric columns found
    axis_problems: dict[str, str]  # channel -> why its columns are not a usable axis
    sha256: str

    def __len__(self) -> int:
        return len(self.table)


def _numeric(frame: pd.DataFrame, columns: list) -> np.ndarray:
    # text that is not a number becomes NaN: that row is then unscorable, not the file
    part = frame[columns]
    try:
        return part.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        return part.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)


def read_batch_file(path: Path, columns: dict, name: str | None = None) -> BatchFile:
    """Read `path` (a pickle, CSV or Parquet file, by its name's ending).

    `columns` is `dataset.columns` of the config: its `id` names the sample ids
    (null: `<file>:<row>`), its `tabular` the tabular columns. `name` is the file
    name rows are attributed to (an upload's own name; default the path's).
    """
    path = Path(path)
    shown_name = name or path.name
    id_name = columns.get("id")
    text = [str(id_name)] if id_name is not None else []
    with refuse_zone_paths(path):
        frame, sha256, _ = read_raw_frame(path, text)
    n = len(frame)
    if n == 0:
        raise RawDataError(f"{shown_name}: the file has no rows")
    if frame.columns.duplicated().any():
        raise RawDataError(f"{shown_name}: a column name is used more than once")
    if id_name is None:
        ids = [f"{shown_name}:{row}" for row in range(n)]
    elif frame.index.name is not None and str(frame.index.name) == str(id_name):
        ids = [str(v) for v in frame.index]
    elif str(id_name) in map(str, frame.columns):
        column = next(c for c in frame.columns if str(c) == str(id_name))
        ids = ["" if pd.isna(v) else str(v) for v in frame[column]]
    else:
        raise RawDataError(
            f"{shown_name}: the id column {shown(id_name)} (dataset.columns.id) is neither "
            f"the index nor a column of the file"
        )
    spectra, wavelengths, problems = {}, {}, {}
    for channel, cols in spectral_columns(frame).items():
        try:
            wavelengths[channel] = check_axis(Path(shown_name), channel, cols)
        except RawDataError as err:
            problems[channel] = str(err)
            continue
        spectra[channel] = _numeric(frame, [c for c, _ in cols])
    by_name = {str(c): c for c in frame.columns}
    tabular = {
        str(t): _numeric(frame, [by_name[str(t)]])[:, 0]
        for t in columns.get("tabular") or []
        if str(t) in by_name
    }
    table = pd.DataFrame(
        {
            "sample_id": pd.Series(ids, dtype=object),
            "source_file": shown_name,
            "source_row": np.arange(n, dtype=np.int64),
        }
    )
    return BatchFile(table, spectra, wavelengths, tabular, problems, sha256)


def _axis_text(wl: np.ndarray) -> str:
    if len(wl) == 0:
        return "no points"
    return f"{wl[0]:g}-{wl[-1]:g} nm, {len(wl)} points"


@dataclass
class ModelInputs:
    """A batch file as one model takes it; `reason` is "" where a row can be scored."""

    spectra: np.ndarray  # (N, C, L) float32
    tabular: np.ndarray  # (N, T) float32
    reason: np.ndarray  # (N,) object


def _by_channel(values: dict | None) -> dict[str, float]:
    return {str(k): float(v) for k, v in (values or {}).items()}


def model_inputs(
    batch: BatchFile,
    model: ServedModel,
    saturation: dict | None = None,
    min_integral: dict | None = None,
) -> ModelInputs:
    """The arrays `model` takes for `batch`, and why each row it cannot score is left out."""
    n = len(batch)
    reason = np.full(n, "", dtype=object)

    def assign(mask: np.ndarray, text: str) -> None:
        reason[(reason == "") & mask] = text

    everyone = np.ones(n, dtype=bool)
    for channel, wl in zip(model.channels, model.wavelengths, strict=True):
        if channel in batch.axis_problems:
            assign(everyone, f"axis: {batch.axis_problems[channel]}")
        elif channel not in batch.spectra:
            found = ", ".join(sorted(batch.spectra)) or "none"
            assign(
                everyone,
                f"channel: the file has no channel {channel!r} (columns '{channel}_<wavelength>'; "
                f"the model needs {', '.join(model.channels)}; found: {found})",
            )
        elif not np.array_equal(np.round(batch.wavelengths[channel], 6), np.round(wl, 6)):
            assign(
                everyone,
                f"axis: channel {channel!r} is measured at {_axis_text(batch.wavelengths[channel])}"
                f", the model at {_axis_text(wl)}",
            )
    for column in model.tabular:
        if column not in batch.tabular:
            assign(everyone, f"tabular: the file has no column {column!r}, which the model uses")

    axis, offsets = common_axis(dict(zip(model.channels, model.wavelengths, strict=True)))
    spectra = np.zeros((n, len(model.channels), len(axis)), dtype=np.float32)
    tabular = np.zeros((n, len(model.tabular)), dtype=np.float32)
    if (reason != "").all():
        return ModelInputs(spectra, tabular, reason)

    saturation, min_integral = _by_channel(saturation), _by_channel(min_integral)
    values = {c: batch.spectra[c] for c in model.channels}
    for c in model.channels:
        assign(
            ~np.isfinite(values[c]).all(axis=1),
            f"nan: channel {c!r} has a missing or infinite value",
        )
    for column in model.tabular:
        assign(~np.isfinite(batch.tabular[column]), f"nan: tabular {column!r} is missing")
    with np.errstate(invalid="ignore", over="ignore"):
        for c in model.channels:
            if c in saturation:
                peak = values[c].max(axis=1)
                assign(peak > saturation[c], f"saturation: channel {c!r} exceeds {saturation[c]:g}")
        for c in model.channels:
            if c in min_integral:
                total = values[c].sum(axis=1)
                assign(
                    total < min_integral[c],
                    f"low_integral: channel {c!r} sums below {min_integral[c]:g}",
                )
    for a, b in combinations(model.channels, 2):
        if values[a].shape == values[b].shape:
            assign(
                (values[a] == values[b]).all(axis=1),
                f"identical_channels: {a!r} and {b!r} are equal",
            )

    for i, c in enumerate(model.channels):
        spectra[:, i, offsets[c] : offsets[c] + values[c].shape[1]] = values[c]
    for j, column in enumerate(model.tabular):
        tabular[:, j] = batch.tabular[column]
    spectra[reason != ""] = 0.0
    tabular[reason != ""] = 0.0
    return ModelInputs(spectra, tabular, reason)
