"""What raw files hold, found without a config: channels, ids, labels, groups.

`spectragrid init` starts a study from this survey. Each file is read by
the raw readers (`spectragrid.data.raw_formats`, so with their protections)
and its columns are sorted into the roles of docs/lab_facts.md, "Measurements
and raw layouts":

- spectral columns `<channel>_<wavelength>`, per channel its wavelength axis;
- the id: a named index, or a column, whose values are unique in every file
  (none found: rows are named by file and row);
- the labels: a text (or small integer) column with few distinct values;
  a severity-like text column beside an integer `type` column makes the
  severity + type layout;
- group candidates: columns whose values repeat, more distinct than a label;
  one is chosen only when its name says it is a lot, batch or group;
- numeric columns beside the spectra, which could be tabular features.

The survey proposes; the config written from it says what was chosen and
lists the other candidates, and is checked by reading the files as the
ingest job will before it is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.data.raw import RawDataError, check_axis, spectral_columns
from spectragrid.data.raw_formats import read_raw_frame
from spectragrid.data.unpickle import shown

__all__ = ["Survey", "survey_raw_files"]

# A label has at most this many distinct values, and at most half as many as rows.
MAX_LABELS = 50
# Share of distinct values a column named like an id needs (repeats: stored twice).
NEARLY_UNIQUE = 0.9
_ID_NAME = re.compile(r"(^|[_ ])(id|ids|sample|samples|sequence|seq|name|code)($|[_ ])", re.I)
_LABEL_NAME = re.compile(
    r"label|class|target|categor|grade|variety|species|sever|verdict|defect|^y$", re.I
)
_SEVERITY_NAME = re.compile(r"sever|intens|grade", re.I)
_TYPE_NAME = re.compile(r"(^|[_ ])type($|[_ ])", re.I)
_GROUP_NAME = re.compile(
    r"group|lot|batch|seal|scelle|subject|patient|plant|donor|animal|individual|replicate|site",
    re.I,
)
# The domain's legacy instrument outputs carry the answer (docs/lab_facts.md).
_LEAKAGE_PREFIXES = ("sa_",)


@dataclass
class Survey:
    """What the raw files hold; column names as in the files."""

    files: list[Path]
    rows: int
    channels: list[str]
    axes: dict[str, np.ndarray]
    id_column: str | None
    id_repeats: str | None = None  # a named id that repeats with other content
    label: str | None = None  # one label column
    severity: str | None = None  # or severity and type
    type: str | None = None
    label_values: dict[str, int] = field(default_factory=dict)  # text -> rows
    other_labels: list[str] = field(default_factory=list)
    group: str | None = None
    group_candidates: dict[str, int] = field(default_factory=dict)  # name -> distinct values
    numeric: list[str] = field(default_factory=list)
    drop_prefixes: list[str] = field(default_factory=list)

    @property
    def one_column(self) -> bool:
        return self.label is not None


def survey_raw_files(paths: Sequence[Path]) -> Survey:
    """Survey `paths` (pickles, CSV tables or Parquet files in the wide layout)."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise RawDataError("no raw file given")
    frames = [_frame(path) for path in paths]
    first, path = frames[0], paths[0]
    spectral = spectral_columns(first)
    if not spectral:
        raise RawDataError(
            f"{path}: no spectral column: expected columns named <channel>_<wavelength>, "
            "e.g. 277_295 or nir_1100 (one row per measurement, one column per channel and "
            f"wavelength); its columns are {_listed(list(first.columns))}"
        )
    axes = {ch: check_axis(path, ch, cols) for ch, cols in spectral.items()}
    spectral_names = {col for cols in spectral.values() for col, _ in cols}
    for other_path, frame in zip(paths[1:], frames[1:], strict=True):
        missing = [str(c) for c in first.columns if c not in frame.columns]
        if missing:
            raise RawDataError(
                f"{other_path}: lacks column(s) {_listed(missing)} of {path}; the raw files of "
                "one study share their columns"
            )
    table = pd.concat(
        [f.drop(columns=[c for c in f.columns if c in spectral_names]) for f in frames],
        ignore_index=False,
    )
    rows = len(table)
    id_column = _id_column(frames, table)
    columns = [str(c) for c in table.columns if str(c) != id_column]
    prefixes = [p for p in _LEAKAGE_PREFIXES if any(c.startswith(p) for c in columns)]
    columns = [c for c in columns if not c.startswith(tuple(prefixes))]
    survey = Survey(
        files=paths,
        rows=rows,
        channels=list(spectral),
        axes=axes,
        id_column=id_column,
        drop_prefixes=prefixes,
    )
    _labels(survey, table, columns)
    labels = {survey.label, survey.severity, survey.type}
    _groups(survey, table, [c for c in columns if c not in labels])
    taken = labels | {survey.group}
    survey.numeric = [
        c
        for c in columns
        if c not in taken
        and pd.api.types.is_numeric_dtype(table[c].dtype)
        and table[c].nunique() > 1
    ]
    return survey


def _frame(path: Path) -> pd.DataFrame:
    frame = read_raw_frame(path).frame
    if not len(frame):
        raise RawDataError(f"{path}: the file has no rows")
    if frame.index.name is not None and str(frame.index.name) not in map(str, frame.columns):
        # a named index (the id, in pickles of the users' layout) is a column like any other
        frame = frame.reset_index()
    return frame


def _listed(names: list) -> str:
    text = ", ".join(shown(str(n), 40) for n in names[:8])
    return text + (f" and {len(names) - 8} more" if len(names) > 8 else "")


def _id_column(frames: list[pd.DataFrame], table: pd.DataFrame) -> str | None:
    """A column named like an id whose values are (nearly) unique across the files, or
    else any column whose values are all unique.

    A named id may repeat in a few rows: a measurement stored twice, which the
    cleaning drops as a duplicate (and reports, should the copies differ).
    """
    named, unique = [], []
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_float_dtype(values.dtype) or values.isna().any():
            continue
        distinct = values.astype(str).nunique()
        if distinct == len(values):
            unique.append(str(column))
        if _ID_NAME.search(str(column)) and distinct >= NEARLY_UNIQUE * len(values):
            named.append(str(column))
    return (named or unique or [None])[0]


def _text(values: pd.Series) -> pd.Series:
    """Labels as the ingest reads them: text, whole numbers without a decimal point."""
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if len(finite) and np.isfinite(finite).all() and (finite == finite.round()).all():
            values = values.astype("Int64")
    return (
        values.astype(object)
        .where(values.notna(), None)
        .map(lambda v: None if v is None else str(v))
    )


def _is_label_like(values: pd.Series, rows: int) -> bool:
    if pd.api.types.is_float_dtype(values.dtype):
        finite = values.dropna()
        if not len(finite) or not (finite == finite.round()).all():
            return False
    distinct = values.nunique()
    return 2 <= distinct <= min(MAX_LABELS, max(2, rows // 2))


def _labels(survey: Survey, table: pd.DataFrame, columns: list[str]) -> None:
    candidates = [c for c in columns if _is_label_like(table[c], survey.rows)]
    if not candidates:
        raise RawDataError(
            f"{survey.files[0]}: no label column: expected a column of text (or whole numbers) "
            f"with 2 to {MAX_LABELS} distinct values beside the spectra; the other columns are "
            f"{_listed(columns) or '(none)'}"
        )
    severity = [c for c in candidates if _SEVERITY_NAME.search(c) and _is_text(table[c])]
    types = [c for c in candidates if _TYPE_NAME.search(c) and not _is_text(table[c])]
    if severity and types:
        survey.severity, survey.type = severity[0], types[0]
        chosen = survey.severity
    else:
        # a label named as one, text before numbers, then the fewest classes
        chosen = min(
            candidates,
            key=lambda c: (
                not _LABEL_NAME.search(c),
                not _is_text(table[c]),
                table[c].nunique(),
                candidates.index(c),
            ),
        )
        survey.label = chosen
    counts = _text(table[chosen]).value_counts(dropna=True)
    survey.label_values = {str(k): int(v) for k, v in counts.items()}
    survey.other_labels = [c for c in candidates if c not in (chosen, survey.type)]


def _is_text(values: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
        values.dtype
    )


def _groups(survey: Survey, table: pd.DataFrame, columns: list[str]) -> None:
    n_labels = len(survey.label_values)
    for column in columns:
        values = table[column]
        if pd.api.types.is_float_dtype(values.dtype):
            continue
        distinct = int(values.nunique())
        if max(n_labels, 2) < distinct < survey.rows:
            survey.group_candidates[column] = distinct
    named = [c for c in survey.group_candidates if _GROUP_NAME.search(c)]
    # Chosen by its name only: which column holds replicates is the user's knowledge, so
    # the others are listed as candidates in the config rather than guessed at.
    survey.group = next((c for c in named if survey.group_candidates[c] >= 3), None)
