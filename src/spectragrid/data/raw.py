"""Read a raw file in the users' layout into a normalised table and spectra.

The users' layout (docs/lab_facts.md, "Measurements and raw layouts"): index (or
a column) holding the sample id, spectral columns named
`<channel>_<wavelength>`, then label, group, tabular, provenance and leakage
columns. The file is a pickle, a CSV table or a Parquet file
(`spectragrid.data.raw_formats`); column names come from the config mapping:

    {"id": "sequence", "severity": "greffon_defaut_severite",
     "type": "greffon_defaut_type", "group": "scelle",
     "tabular": ["greffon_transmittance", "greffon_brix"],
     "provenance": ["outil_id", "mesure_date"], "drop_prefixes": ["sa_"]}

or, for a data set with one label column, `"label": "<column>"` in place of
severity and type.

Nothing is judged here (no thresholds, no label mapping): the reader only
checks that the file has the structure the config promises and reports, by
name, what it lacks. The file itself is read by `spectragrid.data.raw_formats`
(regular files only, allow-listed unpickling, capped decompression); values
from the file appear in messages shortened, and a file that exhausts memory
or nests values too deeply is an error naming it, like any other.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spectragrid.data.raw_formats import read_raw_frame
from spectragrid.data.unpickle import (
    RawDataError,
    UnsafePickleError,
    refuse_zone_paths,
    shown,
)

__all__ = ["RawDataError", "RawTable", "UnsafePickleError", "read_raw_file", "read_raw_pickle"]

_SPECTRAL = re.compile(r"^(?P<channel>.+)_(?P<wavelength>\d+(?:\.\d+)?)$")
# Relative tolerance on the wavelength step: axes written as decimals (e.g. 0.5 nm) carry
# rounding from their text form.
_STEP_RTOL = 1e-6


@dataclass
class RawTable:
    """One raw file, normalised. `table` and every `spectra[ch]` share row order."""

    table: pd.DataFrame
    spectra: dict[str, np.ndarray]
    wavelengths: dict[str, np.ndarray]
    dropped_columns: list[str]
    sha256: str
    path: Path
    channels: list[str] = field(default_factory=list)
    tabular: list[str] = field(default_factory=list)
    provenance: list[str] = field(default_factory=list)

    @property
    def source_file(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.table)


def _name(column: Any) -> str:
    """A column name from the file, as a message shows it (long names are cut)."""
    text = str(column)
    return text if len(text) <= 60 else text[:59] + "…"


def _similar(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    if not close:
        close = [c for c in candidates if name.lower() in c.lower() or c.lower() in name.lower()]
    if close:
        return "similar columns: " + ", ".join(_name(c) for c in close[:5])
    listed = ", ".join(_name(c) for c in candidates[:12]) + (" …" if len(candidates) > 12 else "")
    return f"no similar column; non-spectral columns are: {listed or '(none)'}"


def spectral_columns(df: pd.DataFrame) -> dict[str, list[tuple[Any, str]]]:
    """channel -> [(original column label, wavelength text)] in column order."""
    found: dict[str, list[tuple[Any, str]]] = {}
    for col in df.columns:
        match = _SPECTRAL.match(str(col))
        if match:
            found.setdefault(match["channel"], []).append((col, match["wavelength"]))
    return found


def check_axis(path: Path, channel: str, cols: list[tuple[Any, str]]) -> np.ndarray:
    wl = np.array([float(text) for _, text in cols], dtype=np.float64)
    if len(wl) < 2:
        return wl
    diffs = np.diff(wl)
    # a column out of place shows first as a decrease; report that before any step problem
    decreasing = np.flatnonzero(diffs <= 0)
    if len(decreasing):
        i = int(decreasing[0])
        what = "not increasing"
    else:
        step = diffs[0]
        uneven = np.flatnonzero(np.abs(diffs - step) > _STEP_RTOL * max(abs(step), 1.0))
        if not len(uneven):
            return wl
        i = int(uneven[0])
        what = f"step {diffs[i]:g} instead of {step:g}"
    bad, prev = cols[i + 1][0], cols[i][0]
    raise RawDataError(
        f"{path}: channel {shown(channel)}: wavelength columns must be strictly increasing "
        f"with a constant step; first offending column {_name(bad)!r} after "
        f"{_name(prev)!r} ({what})"
    )


def _check_not_empty(
    path: Path, channel: str, cols: list[tuple[Any, str]], values: np.ndarray
) -> None:
    """A channel (or one wavelength of it) with no value in any row is a broken export.

    Row by row it would only drop every sample as `nan`, and the message would
    be "all rows were dropped"; naming the channel or column says what to fix.
    """
    if len(values) < 2 or np.isfinite(values[0]).all():
        # one row with a NaN is a row to drop, not a broken column; and a column
        # with a finite first value is not empty (a pass over the data spared)
        return
    missing = ~np.isfinite(values)
    empty_cols = np.flatnonzero(missing.all(axis=0))
    if not len(empty_cols):
        return
    first, last = _name(cols[0][0]), _name(cols[-1][0])
    if len(empty_cols) == len(cols):
        raise RawDataError(
            f"{path}: channel {channel!r} ({first} … {last}) holds no finite value in any "
            f"of the {len(values)} rows (all NaN or infinite); expected a spectrum per row"
        )
    names = [_name(cols[i][0]) for i in empty_cols]
    listed = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
    raise RawDataError(
        f"{path}: channel {channel!r}: column(s) {listed} hold no finite value in any of "
        f"the {len(values)} rows ({len(names)} of {len(cols)} wavelengths); "
        "expected a value per row"
    )


def _as_float(path: Path, df: pd.DataFrame, cols: list[Any], what: str) -> np.ndarray:
    try:
        return df[cols].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        pass
    for col in cols:
        converted = pd.to_numeric(df[col], errors="coerce")
        bad = converted.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise RawDataError(
                f"{path}: {what} column {_name(col)!r} is not numeric: row {row} "
                f"(index {shown(df.index[row])}) holds {shown(df[col].iloc[row])}"
            ) from None
    raise RawDataError(f"{path}: {what} columns cannot be read as numbers")


def _side_by_side(df: pd.DataFrame, cols: list[Any]) -> slice | None:
    """The positions of `cols` as a slice when they stand side by side, in order."""
    first = df.columns.get_loc(cols[0]) if cols else None
    if not isinstance(first, int):
        return None
    window = df.columns[first : first + len(cols)]
    return slice(first, first + len(cols)) if list(window) == list(cols) else None


def _spectral_values(path: Path, df: pd.DataFrame, cols: list[Any], channel: str) -> np.ndarray:
    """A channel's spectra as a (rows, wavelengths) array, read-only, usually not a copy.

    float32 columns stay float32 (raw spectra usually are: converting them to
    float64 would double the memory for no information); anything else is read
    as float64. Columns side by side in the frame are taken as one slice: a
    view of pandas' block, whose rows are the file's columns, so the array is
    column-major. Nothing here copies it into row order: the checks read it
    512 rows at a time into a row-major buffer (`spectragrid.data.cleaning`),
    the writer one row group at a time (`spectragrid.data.clean_file`). A
    row-major copy of every channel took 6.2 of the 17.6 s of a 300k ingest,
    most of it the first touch of 1.6 GB of fresh memory.
    """
    columns = _side_by_side(df, cols)
    part = df.iloc[:, columns] if columns is not None else df[cols]
    if all(dtype == np.float32 for dtype in part.dtypes):
        values = part.to_numpy(dtype=np.float32)
    else:
        values = _as_float(path, part, list(part.columns), f"channel {channel!r}")
    values = values.view()
    values.flags.writeable = False
    return values


def _owner(values: np.ndarray) -> np.ndarray:
    """The array that owns the memory `values` views (itself if it owns it)."""
    while isinstance(values.base, np.ndarray):
        values = values.base
    return values


def _compact(spectra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`spectra`, each channel copied out of a block that holds far more than the channels.

    A view keeps its whole pandas block alive: the other spectral columns of
    a file whose channels the config does not all use. Where the channels use
    less than half of their block, they are copied and the block is let go.
    """
    used: dict[int, int] = {}
    for values in spectra.values():
        key = id(_owner(values))
        used[key] = used.get(key, 0) + values.nbytes
    out = {}
    for ch, values in spectra.items():
        owner = _owner(values)
        if owner is not values and owner.nbytes > 2 * used[id(owner)]:
            values = np.array(values, order="F")
            values.flags.writeable = False
        out[ch] = values
    return out


def _parse_type(path: Path, values: pd.Series, ids: pd.Series, column: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numeric) | (numeric != np.round(numeric))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise RawDataError(
            f"{path}: type column {column!r} must hold integers: row {row} "
            f"(id {shown(ids.iloc[row])}) holds {shown(values.iloc[row])}"
            + (f" ({int(bad.sum())} such rows)" if bad.sum() > 1 else "")
        )
    return numeric.astype(np.int64)


def _as_str(values: pd.Series) -> pd.Series:
    """Text of each value; missing values (None, NaN, NA) become ""."""
    obj = values.astype(object)
    missing = obj.isna().to_numpy()
    text = np.array([str(v) for v in obj.to_numpy()], dtype=object)
    text[missing] = ""
    return pd.Series(text, index=values.index, dtype=object)


def _label_text(values: pd.Series) -> pd.Series:
    """Text of each label; whole numbers in a float column read as integers (3.0 -> "3").

    A column of integer labels with one missing value is stored as floats;
    its labels are still the integers.
    """
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = numbers[~np.isnan(numbers)]
        if len(finite) and np.isfinite(finite).all() and (finite == np.round(finite)).all():
            return _as_str(values.astype("Int64"))
    return _as_str(values)


def label_roles(columns: dict) -> dict[str, str]:
    """role -> column name of the label columns `columns` names: `label`, or severity and type."""
    if columns.get("label") is not None:
        return {"label": str(columns["label"])}
    return {"severity": str(columns["severity"]), "type": str(columns["type"])}


def read_raw_file(path: Path, columns: dict, channels: list[str]) -> RawTable:
    """Read one raw file: a pickle (allow-listing unpickler), a CSV table or a Parquet file.

    Returns a `RawTable` whose `table` has `sample_id`, `label_raw` (original
    spelling, "" where missing), `type` (int64; absent for a data set with
    one label column), `group`, the tabular columns (float64, NaN kept for
    the cleaning to count), the provenance columns as found, `source_file`
    and `source_row` (0-based position in the file). A missing group value
    makes the row its own group (its sample id). `sha256` is the hash of the
    file as stored (compressed or not). Spectra are float32 where the file
    stores float32, float64 otherwise.
    """
    path = Path(path)
    try:
        # pandas may resolve a time zone of the file only when a column is converted
        with refuse_zone_paths(path):
            return _read(path, columns, [str(c) for c in channels])
    except MemoryError:
        raise RawDataError(
            f"{path}: ran out of memory while reading it (its DataFrame, or the copies "
            "of its columns, do not fit in this job's memory)"
        ) from None
    except RecursionError:
        raise RawDataError(
            f"{path}: a value in the file nests too deeply to be read as text or numbers"
        ) from None


# The raw files' reader had one format; the name stays for the code that calls it.
read_raw_pickle = read_raw_file


def _text_columns(columns: dict) -> list[str]:
    """Columns whose values are names, not numbers: read as text where a format stores text."""
    named = [columns.get("id"), columns.get("group"), *label_roles(columns).values()]
    return [str(c) for c in [*named, *(columns.get("provenance") or [])] if c is not None]


def _read(path: Path, columns: dict, channels: list[str]) -> RawTable:
    df, sha256, _ = read_raw_frame(path, _text_columns(columns))
    n = len(df)
    if n == 0:
        raise RawDataError(f"{path}: the file has no rows (an empty campaign file?)")

    repeated = df.columns[df.columns.duplicated()]
    if len(repeated):
        names = ", ".join(sorted({_name(c) for c in repeated})[:10])
        raise RawDataError(f"{path}: column name(s) used more than once: {names}")
    spectral = spectral_columns(df)
    spectral_labels = {col for cols in spectral.values() for col, _ in cols}
    other = [str(c) for c in df.columns if c not in spectral_labels]
    str_columns = {str(c): c for c in df.columns}

    # `id: null`: the file gives no id, and each row is named by its file and row
    id_name = str(columns["id"]) if columns.get("id") is not None else None
    tabular = [str(c) for c in columns.get("tabular") or []]
    provenance = [str(c) for c in columns.get("provenance") or []]
    required = label_roles(columns)
    # `group: null` (documented): no replicate structure, every sample is its own group
    if columns.get("group") is not None:
        required["group"] = str(columns["group"])
    drop_prefixes = tuple(str(p) for p in columns.get("drop_prefixes") or [])

    problems: list[str] = []
    if id_name is None:
        ids = pd.Series([f"{path.name}:{row}" for row in range(n)], index=df.index)
    elif df.index.name is not None and str(df.index.name) == id_name:
        ids = pd.Series(df.index.to_numpy(), index=df.index)
    elif id_name in str_columns:
        ids = df[str_columns[id_name]]
    else:
        problems.append(
            f"id {id_name!r} is neither the index name ({shown(df.index.name)}) nor a column "
            f"({_similar(id_name, other)})"
        )
        ids = pd.Series(np.arange(n), index=df.index)
    for role, name in [*required.items(), *(("tabular", t) for t in tabular)]:
        if name not in str_columns:
            problems.append(f"{role} column {name!r} is missing ({_similar(name, other)})")
    for name in provenance:
        if name not in str_columns:
            problems.append(f"provenance column {name!r} is missing ({_similar(name, other)})")
    for ch in channels:
        if ch not in spectral:
            present = ", ".join(sorted(spectral)) or "none"
            problems.append(
                f"channel {ch!r} has no spectral columns (expected names like "
                f"'{ch}_<wavelength>'; channels found: {present})"
            )
    if not spectral and id_name is not None:
        problems.append(_long_layout_hint(df, ids, id_name))
    if problems:
        raise RawDataError(f"{path}: " + "; ".join(p for p in problems if p))

    requested = {*([id_name] if id_name else []), *required.values(), *tabular, *provenance}
    leaking = sorted(c for c in requested if drop_prefixes and c.startswith(drop_prefixes))
    if leaking:
        raise RawDataError(
            f"{path}: column(s) {', '.join(leaking)} are requested by the config but match "
            f"the leakage prefixes {list(drop_prefixes)}"
        )

    ids_str = _as_str(ids).reset_index(drop=True)
    if (ids_str == "").any():
        row = int(np.flatnonzero((ids_str == "").to_numpy())[0])
        raise RawDataError(f"{path}: id {id_name!r} is missing in row {row}")
    spectra: dict[str, np.ndarray] = {}
    wavelengths: dict[str, np.ndarray] = {}
    for ch in channels:
        cols = spectral[ch]
        wavelengths[ch] = check_axis(path, ch, cols)
        spectra[ch] = _spectral_values(path, df, [c for c, _ in cols], ch)
        _check_not_empty(path, ch, cols, spectra[ch])
    spectra = _compact(spectra)

    if "group" in required:
        group = _as_str(df[str_columns[required["group"]]]).reset_index(drop=True)
        group = group.where(group != "", ids_str)
    else:
        group = ids_str
    label = required.get("label", required.get("severity"))
    table = pd.DataFrame(
        {
            "sample_id": ids_str,
            "label_raw": _label_text(df[str_columns[label]]).reset_index(drop=True),
        }
    )
    if "type" in required:
        table["type"] = _parse_type(
            path, df[str_columns[required["type"]]], ids_str, required["type"]
        )
    table["group"] = group
    if tabular:
        tab = _as_float(path, df, [str_columns[t] for t in tabular], "tabular")
        for i, name in enumerate(tabular):
            table[name] = tab[:, i]
    for name in provenance:
        table[name] = df[str_columns[name]].to_numpy()
    table["source_file"] = path.name
    table["source_row"] = np.arange(n, dtype=np.int64)

    dropped: list[str] = []
    for col in df.columns:
        name = str(col)
        if col in spectral_labels or name in requested:
            continue
        leakage = bool(drop_prefixes) and name.startswith(drop_prefixes)
        # one row makes every column look constant
        constant = n > 1 and df[col].nunique(dropna=False) <= 1
        if leakage or constant:
            dropped.append(name)

    return RawTable(
        table=table,
        spectra=spectra,
        wavelengths=wavelengths,
        dropped_columns=dropped,
        sha256=sha256,
        path=path,
        channels=channels,
        tabular=tabular,
        provenance=provenance,
    )


def _long_layout_hint(df: pd.DataFrame, ids: pd.Series, id_name: str) -> str:
    """What to do with a file that has no `<channel>_<wavelength>` column at all.

    A file with one row per sample and wavelength (a long layout) repeats its
    ids; it needs pivoting to one row per sample, which the message spells out.
    """
    n_ids = ids.nunique(dropna=False)
    if n_ids >= len(ids):
        return ""
    numeric = [str(c) for c in df.columns if pd.api.types.is_numeric_dtype(df[c].dtype)]
    wavelength = next(
        (c for c in numeric if re.search(r"wave|wl|nm|lambda", c, re.I)), "wavelength"
    )
    value = next(
        (
            c
            for c in numeric
            if c != wavelength and re.search(r"val|int|abs|sig|refl|count", c, re.I)
        ),
        "value",
    )
    return (
        f"the id {id_name!r} repeats ({len(ids)} rows for {n_ids} ids): this looks like a long "
        "layout, one row per sample and wavelength. Pivot it to one row per sample with one "
        "column per channel and wavelength first, e.g. with pandas: "
        f"wide = df.pivot_table(index={id_name!r}, columns={wavelength!r}, values={value!r}); "
        "wide.columns = [f'<channel>_{w:g}' for w in wide.columns]; then join the label, group "
        "and other columns back (one value per sample) and save it as CSV, Parquet or a pickle"
    )
