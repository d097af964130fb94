"""Ground truth of a dataset (the demo writes one): sample id -> true label(s).

The truth file has the raw data's layout: the id column and either the
severity and type columns or, for a data set with one label column, that
column (`dataset.columns.label`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.data.targets import full_truth

__all__ = ["read_truth"]


def read_truth(path: Path, columns: dict, label_map: dict) -> pd.DataFrame:
    """Columns `sample_id`, `severity`, `type`, `full_truth` (or `sample_id`, `label`,
    `full_truth` for one label column), one row per sample id.

    The file uses the raw data's column names (`columns["id"]`, `["severity"]`,
    `["type"]`, or `["label"]`). A label may be written in a raw spelling (a
    key of `label_map`) or already normalised (one of its values). Repeated
    ids (duplicated raw rows) collapse to one row; repeated ids that disagree
    are an error.
    """
    path = Path(path)
    one_column = columns.get("label") is not None
    id_col = str(columns["id"])
    sev_col = str(columns["label"] if one_column else columns["severity"])
    type_col = None if one_column else str(columns["type"])
    try:
        df = pd.read_csv(
            path,
            dtype={id_col: str, sev_col: str},
            keep_default_na=False,
            na_values={type_col: [""]} if type_col else None,
        )
    except FileNotFoundError:
        raise ValueError(f"{path}: no such truth file") from None
    missing = [c for c in (id_col, sev_col, type_col) if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"{path}: truth file lacks column(s) {missing}; it has {list(df.columns)}")

    mapping = {str(k): str(v) for k, v in label_map.items()}
    mapping.update({v: v for v in mapping.values()})
    severity = df[sev_col].map(mapping)
    if severity.isna().any():
        unknown = sorted(df.loc[severity.isna(), sev_col].unique())
        raise ValueError(
            f"{path}: unknown {'label' if one_column else 'severity'} value(s) {unknown}; "
            f"known: {sorted(set(mapping))}"
        )
    if one_column:
        labels = severity.astype(object)
        out = pd.DataFrame({"sample_id": df[id_col].astype(object), "label": labels})
        out["full_truth"] = labels.to_numpy()
        return _one_row_per_id(path, out)
    types = pd.to_numeric(df[type_col], errors="coerce")
    bad = types.isna() | (types != np.round(types))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(
            f"{path}: column {type_col!r} must hold integers; row {row} holds "
            f"{df[type_col].iloc[row]!r}"
        )

    out = pd.DataFrame(
        {
            "sample_id": df[id_col].astype(object),
            "severity": severity.astype(object),
            "type": types.astype(np.int64),
        }
    )
    out["full_truth"] = full_truth(out["severity"], out["type"]).astype(object)
    return _one_row_per_id(path, out)


def _one_row_per_id(path: Path, out: pd.DataFrame) -> pd.DataFrame:
    out = out.drop_duplicates().reset_index(drop=True)
    conflicting = out["sample_id"].duplicated(keep=False)
    if conflicting.any():
        first = out.loc[conflicting, "sample_id"].iloc[0]
        raise ValueError(f"{path}: sample id {first!r} has conflicting truth rows")
    return out
