"""The cleaning rules (docs/domain.md, "Cleaning rules"), with a report of every input row.

Each input row is either kept or dropped for exactly one reason; the checks
run in the order of `REASONS` and the first that fails names the reason.
Thresholds are data (config), keyed by channel name.

Two findings are errors rather than drops, because no row-level choice can
repair them: the same sample id kept twice with different content, and two
channels holding identical values (the field's conversion-script accident).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from spectragrid.data.raw import RawDataError, RawTable
from spectragrid.data.targets import full_truth

__all__ = ["REASONS", "CleanResult", "clean"]

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = ("nan", "saturation", "low_integral", "unknown_label", "duplicate")


@dataclass
class CleanResult:
    table: pd.DataFrame
    spectra: dict[str, np.ndarray]
    wavelengths: dict[str, np.ndarray]
    dropped: pd.DataFrame
    report: dict[str, Any]
    tabular: list[str]
    provenance: list[str]


def _by_channel(values: dict | None) -> dict[str, float]:
    # YAML turns `277: 6500` into an int key; channels are names.
    return {str(k): float(v) for k, v in (values or {}).items()}


def _check_compatible(tables: list[RawTable]) -> None:
    first = tables[0]
    for other in tables[1:]:
        if other.channels != first.channels:
            raise RawDataError(
                f"{other.path}: channels {other.channels} differ from {first.path}: "
                f"{first.channels}"
            )
        for ch in first.channels:
            a, b = first.wavelengths[ch], other.wavelengths[ch]
            if a.shape != b.shape or not np.array_equal(a, b):
                raise RawDataError(
                    f"channel {ch!r}: wavelength axes differ between {first.path} "
                    f"({_axis_text(a)}) and {other.path} ({_axis_text(b)})"
                )
        if other.tabular != first.tabular or other.provenance != first.provenance:
            raise RawDataError(f"{other.path}: tabular/provenance columns differ from {first.path}")


def _axis_text(wl: np.ndarray) -> str:
    if len(wl) == 0:
        return "no points"
    step = f" step {wl[1] - wl[0]:g}" if len(wl) > 1 else ""
    return f"{len(wl)} points {wl[0]:g}-{wl[-1]:g}{step}"


def _check_identical_channels(tables: list[RawTable]) -> None:
    """Raise when two channels carry the same values for every row of a file."""
    for raw in tables:
        if len(raw) == 0:
            continue
        for a, b in combinations(raw.channels, 2):
            x, y = raw.spectra[a], raw.spectra[b]
            if x.shape == y.shape and np.array_equal(x, y, equal_nan=True):
                same_in = [
                    t.source_file
                    for t in tables
                    if len(t) and np.array_equal(t.spectra[a], t.spectra[b], equal_nan=True)
                ]
                raise RawDataError(
                    f"channels {a!r} and {b!r} are identical in every row of "
                    f"{', '.join(same_in)} (a conversion that wrote one channel under two "
                    "names?); fix the raw file(s) before cleaning"
                )


def _row_digest(arrays: list[np.ndarray], i: int, severity: str, type_: int) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for arr in arrays:
        # + 0.0 turns -0.0 into 0.0 so equal values hash equally
        h.update((arr[i] + 0.0).tobytes())
    h.update(f"\x00{severity}\x00{type_}".encode())
    return h.digest()


def _duplicates(
    candidates: np.ndarray,
    spectra: dict[str, np.ndarray],
    severity: np.ndarray,
    types: np.ndarray,
) -> np.ndarray:
    """Rows (among `candidates`, in order) identical to an earlier candidate."""
    arrays = list(spectra.values())
    first_of: dict[bytes, int] = {}
    dup = np.zeros(len(candidates), dtype=bool)
    for i in np.flatnonzero(candidates).tolist():
        j = first_of.setdefault(_row_digest(arrays, i, severity[i], types[i]), i)
        # the digest only proposes a match; values decide
        if j != i and all(np.array_equal(a[i], a[j]) for a in arrays):
            dup[i] = True
    return dup


def clean(
    tables: list[RawTable],
    label_map: dict[str, str],
    saturation: dict[str, float],
    min_integral: dict[str, float],
) -> CleanResult:
    """Apply the cleaning rules to the concatenation of `tables` (in order)."""
    if not tables:
        raise RawDataError("no raw file to clean")
    _check_compatible(tables)
    _check_identical_channels(tables)

    channels = tables[0].channels
    tabular = tables[0].tabular
    provenance = tables[0].provenance
    wavelengths = {ch: tables[0].wavelengths[ch] for ch in channels}
    saturation = _by_channel(saturation)
    min_integral = _by_channel(min_integral)
    label_map = {str(k): str(v) for k, v in label_map.items()}

    table = pd.concat([t.table for t in tables], ignore_index=True)
    spectra = {ch: np.concatenate([t.spectra[ch] for t in tables], axis=0) for ch in channels}
    n = len(table)
    reason = np.full(n, "", dtype=object)

    def assign(mask: np.ndarray, name: str) -> None:
        reason[(reason == "") & mask] = name

    bad = np.zeros(n, dtype=bool)
    for ch in channels:
        bad |= ~np.isfinite(spectra[ch]).all(axis=1)
    if tabular:
        bad |= ~np.isfinite(table[tabular].to_numpy(dtype=np.float64)).all(axis=1)
    assign(bad, "nan")

    with np.errstate(invalid="ignore"):
        over = np.zeros(n, dtype=bool)
        for ch in channels:
            if ch in saturation and spectra[ch].shape[1]:
                over |= spectra[ch].max(axis=1) > saturation[ch]
        assign(over, "saturation")

        dim = np.zeros(n, dtype=bool)
        for ch in channels:
            if ch in min_integral:
                dim |= spectra[ch].sum(axis=1) < min_integral[ch]
        assign(dim, "low_integral")

    label_raw = table["label_raw"].astype(object).to_numpy()
    # a missing label ("") is never a class, whatever the map says
    known = np.array([v != "" and v in label_map for v in label_raw], dtype=bool)
    assign(~known, "unknown_label")

    if (~known).any():
        log.warning(_unknown_labels_message(table, label_raw, ~known))

    severity = np.array([label_map.get(v, "") for v in label_raw], dtype=object)
    # one label column: no type, and the label alone is the full truth
    one_column = "type" not in table.columns
    types = np.zeros(n, dtype=np.int64) if one_column else table["type"].to_numpy(dtype=np.int64)
    assign(_duplicates(reason == "", spectra, severity, types), "duplicate")

    keep = reason == ""
    counts = {r: int((reason == r).sum()) for r in REASONS}
    n_kept = int(keep.sum())
    if n_kept + sum(counts.values()) != n:
        raise AssertionError(f"cleaning lost rows: {n_kept} kept + {counts} != {n} input rows")
    if n_kept == 0:
        detail = ", ".join(f"{r} {c}" for r, c in counts.items() if c)
        raise RawDataError(
            f"all {n} rows were dropped by the cleaning ({detail}); "
            "check the thresholds and the label map against the data"
        )

    _check_id_conflicts(table, keep)

    kept = table.loc[keep].reset_index(drop=True)
    kept_labels = pd.Series(severity[keep], dtype=object)
    if one_column:
        kept.insert(1, "label", kept_labels)
        kept.insert(2, "full_truth", kept_labels.copy())
        label_columns = ["label", "full_truth"]
    else:
        kept.insert(1, "severity", kept_labels)
        kept["type"] = kept["type"].astype(np.int64)
        kept.insert(3, "full_truth", full_truth(kept["severity"], kept["type"]).astype(object))
        label_columns = ["severity", "type", "full_truth"]
    order = [
        "sample_id",
        *label_columns,
        "label_raw",
        "group",
        *tabular,
        *provenance,
        "source_file",
        "source_row",
    ]
    kept = kept[order]

    dropped = table.loc[~keep, ["sample_id", "source_file", "source_row"]].reset_index(drop=True)
    dropped["reason"] = reason[~keep]

    kept_spectra = {ch: spectra[ch][keep].astype(np.float32) for ch in channels}

    files = []
    start = 0
    for raw in tables:
        stop = start + len(raw)
        files.append(
            {
                "file": raw.source_file,
                "path": str(raw.path),
                "sha256": raw.sha256,
                "rows": len(raw),
                "kept": int(keep[start:stop].sum()),
                "dropped": {r: int((reason[start:stop] == r).sum()) for r in REASONS},
                "dropped_columns": list(raw.dropped_columns),
            }
        )
        start = stop

    unknown = pd.Series(label_raw[reason == "unknown_label"], dtype=object).value_counts()
    report: dict[str, Any] = {
        "input_rows": n,
        "kept": n_kept,
        "dropped": counts,
        "files": files,
        "channels": {
            ch: {
                "points": len(wl),
                "first": float(wl[0]) if len(wl) else None,
                "last": float(wl[-1]) if len(wl) else None,
                "step": float(wl[1] - wl[0]) if len(wl) > 1 else None,
            }
            for ch, wl in wavelengths.items()
        },
        "thresholds": {
            "saturation": {ch: saturation[ch] for ch in channels if ch in saturation},
            "min_integral": {ch: min_integral[ch] for ch in channels if ch in min_integral},
        },
        "unknown_labels": {str(k): int(v) for k, v in unknown.items()},
        f"kept_by_{label_columns[0]}": {
            str(k): int(v) for k, v in kept[label_columns[0]].value_counts().sort_index().items()
        },
    }
    return CleanResult(
        table=kept,
        spectra=kept_spectra,
        wavelengths=wavelengths,
        dropped=dropped,
        report=report,
        tabular=list(tabular),
        provenance=list(provenance),
    )


def _unknown_labels_message(table: pd.DataFrame, label_raw: np.ndarray, unknown: np.ndarray) -> str:
    """Which spellings dataset.label_map misses, how often, and where each first occurs."""
    parts = []
    counts = pd.Series(label_raw[unknown], dtype=object).value_counts()
    for spelling, count in counts.head(10).items():
        i = int(np.flatnonzero(unknown & (label_raw == spelling))[0])
        where = f"{table['source_file'].iat[i]} row {table['source_row'].iat[i]}"
        named = "no label (empty)" if spelling == "" else repr(spelling)
        parts.append(f"{named} ({count} rows, first {where})")
    return (
        f"{int(unknown.sum())} rows carry a label spelling that dataset.label_map does not "
        f"map; they are dropped as unknown_label: {'; '.join(parts)}"
        + (f"; and {len(counts) - 10} more spellings" if len(counts) > 10 else "")
    )


def _check_id_conflicts(table: pd.DataFrame, keep: np.ndarray) -> None:
    kept = table.loc[keep, ["sample_id", "source_file", "source_row"]]
    repeated = kept["sample_id"].duplicated(keep=False)
    if not repeated.any():
        return
    clash = kept.loc[repeated]
    first_id = clash["sample_id"].iloc[0]
    rows = clash.loc[clash["sample_id"] == first_id]
    pairs = zip(rows["source_file"], rows["source_row"], strict=True)
    where = " and ".join(f"{f} row {r}" for f, r in pairs)
    others = clash["sample_id"].nunique() - 1
    more = f" ({others} more ids are repeated)" if others else ""
    raise RawDataError(
        f"sample id {first_id!r} appears in {where} with different content "
        f"(spectra or labels); ids must be unique across the raw files{more}"
    )
