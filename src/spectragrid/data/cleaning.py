"""The cleaning rules (docs/lab_facts.md, "Cleaning rules"), with a report of every input row.

Each input row is either kept or dropped for exactly one reason; the checks
run in the order of `REASONS` and the first that fails names the reason.
Thresholds are data (config), keyed by channel name.

Two findings are errors rather than drops, because no row-level choice can
repair them: the same sample id kept twice with different content, and two
channels holding identical values (the field's conversion-script accident).

At 300,000 spectra every pass over the data counts: the checks run on each
raw file's own arrays (float32 where the files store float32, so nothing is
widened or joined), duplicates are found from one 64-bit hash per row computed
with numpy and confirmed on the values, and the kept rows are handed to the
writer as `RowBlock`s, gathered only as they are written.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from spectragrid.data.clean_file import RowBlock
from spectragrid.data.raw import RawDataError, RawTable
from spectragrid.data.targets import full_truth

__all__ = ["REASONS", "CleanResult", "clean"]

log = logging.getLogger(__name__)

REASONS: tuple[str, ...] = ("nan", "saturation", "low_integral", "unknown_label", "duplicate")


@dataclass
class CleanResult:
    table: pd.DataFrame
    # per channel, the kept rows of each raw file in order (what write_clean takes)
    spectra: dict[str, list[RowBlock]]
    wavelengths: dict[str, np.ndarray]
    dropped: pd.DataFrame
    report: dict[str, Any]
    tabular: list[str]
    provenance: list[str]

    def channel(self, name: str) -> np.ndarray:
        """The kept spectra of one channel as one float32 array (a copy)."""
        blocks = self.spectra[name]
        return np.concatenate([b.take(0, len(b)) for b in blocks])


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
            # channels that differ in their first row (nearly always) cost no pass
            if x.shape != y.shape or not np.array_equal(x[:1], y[:1], equal_nan=True):
                continue
            if np.array_equal(x, y, equal_nan=True):
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


# Rows per step of the row checks: a file's channel is column-major (a view of the
# unpickled frame), so each step copies this many rows into a row-major buffer that
# stays in cache (0.9 MB of float32 at 446 points) and runs every check on it.
_STEP_ROWS = 512
_MIX = np.uint64(0x100000001B3)


def _offsets(tables: list[RawTable]) -> np.ndarray:
    """The first row of each table in the concatenation, and the total at the end."""
    return np.cumsum([0, *(len(t) for t in tables)])


@dataclass
class _RowChecks:
    """What the spectra say about each row of the concatenation."""

    bad: np.ndarray  # a value is NaN or infinite
    over: np.ndarray  # a channel exceeds its saturation limit
    dim: np.ndarray  # a channel's integral is under its minimum
    hashes: dict[str, np.ndarray]  # per channel, `_hash_block` of each row


def _row_checks(
    tables: list[RawTable],
    channels: list[str],
    saturation: dict[str, float],
    min_integral: dict[str, float],
    dtype: np.dtype,
) -> _RowChecks:
    """Every per-row check of the spectra, in one pass over each file's channels.

    Maxima and integrals are compared in float64, as on widened values:
    float32 to float64 is exact, and each row's integral is the float64 sum
    of its values in a row-major buffer: numpy's pairwise sum along the row,
    the same numbers in the same order wherever the row sits, so the same
    float64 as the sum of the widened row (a column-major sum would add them
    in another order, and round differently). The hashes (`_hash_block`, in
    `dtype`) serve the duplicate check.
    """
    n = int(_offsets(tables)[-1])
    bad, over, dim = (np.zeros(n, dtype=bool) for _ in range(3))
    hashes = {ch: np.empty(n, dtype=np.uint64) for ch in channels}
    offset = 0
    for raw in tables:
        for ch in channels:
            values = raw.spectra[ch]
            rows, length = values.shape
            step = np.empty((min(_STEP_ROWS, rows), length), dtype=values.dtype)
            for start in range(0, rows, _STEP_ROWS):
                stop = min(start + _STEP_ROWS, rows)
                here = slice(offset + start, offset + stop)
                block = step[: stop - start]
                np.copyto(block, values[start:stop])
                with np.errstate(invalid="ignore", over="ignore"):
                    total = block.sum(axis=1, dtype=np.float64)
                    if values.dtype == np.float64:
                        # a float64 sum of finite values can overflow
                        bad[here] |= ~np.isfinite(block).all(axis=1)
                    else:
                        # a float64 sum of float32 values cannot, so it is finite
                        # exactly when every value is
                        bad[here] |= ~np.isfinite(total)
                    if ch in saturation and length:
                        over[here] |= block.max(axis=1).astype(np.float64) > saturation[ch]
                    if ch in min_integral:
                        dim[here] |= total < min_integral[ch]
                hashes[ch][here] = _hash_block(block, dtype)
        offset += len(raw)
    return _RowChecks(bad, over, dim, hashes)


@functools.lru_cache(maxsize=8)
def _multipliers(words: int) -> np.ndarray:
    """Fixed odd 64-bit multipliers, one per 64-bit word of a row."""
    rng = np.random.default_rng(0x5EED)
    multipliers = rng.integers(0, 2**64, size=words, dtype=np.uint64)
    multipliers |= np.uint64(1)
    multipliers.flags.writeable = False
    return multipliers


def _hash_block(block: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A 64-bit hash of each row of the row-major `block` as `dtype`: equal rows hash equally.

    The row's bits, read as 64-bit words, dotted with fixed odd multipliers
    (integer arithmetic, wrapping: exact and the same for every row, unlike a
    float product whose rounding depends on where the row sits in a block).
    `block` is overwritten when it is already of `dtype`.
    """
    part = block if block.dtype == dtype else block.astype(dtype)
    part += 0.0  # -0.0 == 0.0: make them the same bits
    if (part.shape[1] * dtype.itemsize) % 8 == 0:
        words = part.view(np.uint64)
    else:
        words = part.view(np.uint32 if dtype.itemsize == 4 else np.uint64).astype(np.uint64)
    return words @ _multipliers(words.shape[1])


def _hash_rows(values: np.ndarray, rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """`_hash_block` of each of `values[rows]`."""
    out = np.empty(len(rows), dtype=np.uint64)
    for start in range(0, len(rows), _STEP_ROWS):
        part = np.array(values[rows[start : start + _STEP_ROWS]], dtype=dtype)
        out[start : start + len(part)] = _hash_block(part, dtype)
    return out


def _take(
    tables: list[RawTable], offsets: np.ndarray, ch: str, rows: np.ndarray, dtype: np.dtype
) -> np.ndarray:
    """Rows `rows` (of the concatenation) of channel `ch`, without concatenating."""
    which = np.searchsorted(offsets, rows, side="right") - 1
    out = np.empty((len(rows), tables[0].spectra[ch].shape[1]), dtype=dtype)
    for t in np.unique(which):
        here = which == t
        out[here] = tables[t].spectra[ch][rows[here] - offsets[t]]
    return out


def _spectra_dtype(tables: list[RawTable], channels: list[str]) -> np.dtype:
    """The dtype that holds every file's spectra: rows are compared and hashed in it."""
    return np.result_type(*(t.spectra[ch].dtype for t in tables for ch in channels))


def _duplicates(
    candidates: np.ndarray,
    tables: list[RawTable],
    channels: list[str],
    severity: np.ndarray,
    types: np.ndarray,
    row_hashes: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """Rows (among `candidates`, in order) identical to an earlier candidate:
    the same values in every channel (0.0 and -0.0 alike), severity and type.

    `row_hashes`, per channel the hash of every row (`_row_checks`), spares
    hashing the candidates again."""
    dup = np.zeros(len(candidates), dtype=bool)
    rows = np.flatnonzero(candidates)
    if len(rows) < 2:
        return dup
    offsets = _offsets(tables)
    dtype = _spectra_dtype(tables, channels)
    codes = pd.factorize(pd.Series(severity[rows], dtype=object))[0].astype(np.uint64)
    hashes = codes * _MIX + types[rows].astype(np.int64).view(np.uint64)
    for ch in channels:
        if row_hashes is not None:
            part = row_hashes[ch][rows]
        else:
            part = np.empty(len(rows), dtype=np.uint64)
            for t, raw in enumerate(tables):
                lo, hi = np.searchsorted(rows, offsets[t : t + 2])
                part[lo:hi] = _hash_rows(raw.spectra[ch], rows[lo:hi] - offsets[t], dtype)
        hashes = hashes * _MIX + part

    # Equal hashes side by side, each run in row order: the first of a run is kept.
    order = np.argsort(hashes, kind="stable")
    sorted_hashes = hashes[order]
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    later = np.ones(len(order), dtype=bool)
    later[starts] = False
    if not later.any():
        return dup
    first = order[starts[np.cumsum(~later) - 1]]
    pairs = np.flatnonzero(later)
    a, b = rows[first[pairs]], rows[order[pairs]]
    # the hash only proposes a match; values decide
    same = (severity[a] == severity[b]) & (types[a] == types[b])
    for ch in channels:
        same &= (_take(tables, offsets, ch, a, dtype) == _take(tables, offsets, ch, b, dtype)).all(
            axis=1
        )
    dup[b[same]] = True
    if not same.all():
        # different rows with one hash (about one in 2**64 pairs): settle their runs exactly
        for run_first in np.unique(first[pairs[~same]]):
            _settle_run(
                rows[order[first == run_first]],
                dup,
                tables,
                offsets,
                channels,
                severity,
                types,
                dtype,
            )
    return dup


def _settle_run(
    members: np.ndarray,
    dup: np.ndarray,
    tables: list[RawTable],
    offsets: np.ndarray,
    channels: list[str],
    severity: np.ndarray,
    types: np.ndarray,
    dtype: np.dtype,
) -> None:
    """Mark, among rows sharing one hash, each row equal to an earlier one."""
    members = np.sort(members)
    values = {ch: _take(tables, offsets, ch, members, dtype) for ch in channels}
    kept: list[int] = []
    for i, row in enumerate(members):
        dup[row] = any(
            severity[row] == severity[members[j]]
            and types[row] == types[members[j]]
            and all(np.array_equal(values[ch][i], values[ch][j]) for ch in channels)
            for j in kept
        )
        if not dup[row]:
            kept.append(i)


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
    n = len(table)
    reason = np.full(n, "", dtype=object)

    def assign(mask: np.ndarray, name: str) -> None:
        reason[(reason == "") & mask] = name

    checks = _row_checks(
        tables, channels, saturation, min_integral, _spectra_dtype(tables, channels)
    )
    bad, over, dim = checks.bad, checks.over, checks.dim
    if tabular:
        bad |= ~np.isfinite(table[tabular].to_numpy(dtype=np.float64)).all(axis=1)
    assign(bad, "nan")
    assign(over, "saturation")
    assign(dim, "low_integral")

    label_raw = table["label_raw"].astype(object).to_numpy()
    # a missing label ("") is never a class, whatever the map says
    labels = pd.Series(label_raw, dtype=object)
    known = (labels.isin(list(label_map)) & (labels != "")).to_numpy(dtype=bool)
    assign(~known, "unknown_label")

    if (~known).any():
        log.warning(_unknown_labels_message(table, label_raw, ~known))

    severity = labels.map(label_map).fillna("").to_numpy(dtype=object)
    # one label column: no type, and the label alone is the full truth
    one_column = "type" not in table.columns
    types = np.zeros(n, dtype=np.int64) if one_column else table["type"].to_numpy(dtype=np.int64)
    duplicates = _duplicates(reason == "", tables, channels, severity, types, checks.hashes)
    del checks
    assign(duplicates, "duplicate")

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

    kept_spectra = _kept_blocks(tables, channels, keep)

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


def _kept_blocks(
    tables: list[RawTable], channels: list[str], keep: np.ndarray
) -> dict[str, list[RowBlock]]:
    """Per channel, each file's kept rows: its array itself when it keeps them all."""
    offsets = _offsets(tables)
    blocks: dict[str, list[RowBlock]] = {ch: [] for ch in channels}
    for t, raw in enumerate(tables):
        here = keep[offsets[t] : offsets[t + 1]]
        rows = None if here.all() else np.flatnonzero(here)
        for ch in channels:
            blocks[ch].append(RowBlock(raw.spectra[ch], rows))
    return blocks


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
