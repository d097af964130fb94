"""CSV cells that a spreadsheet shows as text, never runs as a formula.

Spreadsheets evaluate a cell that starts with `=`, `+`, `-` or `@` (and some
with a tab or carriage return first) as a formula: a sample id such as
`=HYPERLINK("http://…")` in a CSV that reviewers are asked to open would run.
Such a value is written with a leading apostrophe, which spreadsheets read as
"text follows" and do not show. Reading it back strips exactly that one
apostrophe, so every string survives a write and a read unchanged; a value a
spreadsheet saved without the apostrophe reads back as it is.
"""

from __future__ import annotations

import re

import pandas as pd

_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def neutralise(value: object) -> object:
    """`value`, with an apostrophe first if a spreadsheet would run it (or if it
    already starts with apostrophes before such a character, so that reading
    back is exact)."""
    if isinstance(value, str) and _FORMULA.match(value):
        return "'" + value
    return value


def restore(value: object) -> object:
    """The value `neutralise` was given."""
    if isinstance(value, str) and value.startswith("'") and _FORMULA.match(value[1:]):
        return value[1:]
    return value


def _text_columns(frame: pd.DataFrame) -> list:
    return [
        c
        for c in frame.columns
        if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)
    ]


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells a spreadsheet will not run."""
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].map(neutralise)
    return out


def restored(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` read from a CSV written with `neutralised`, its text cells as they were."""
    out = frame.copy()
    for column in _text_columns(out):
        out[column] = out[column].map(restore)
    return out
