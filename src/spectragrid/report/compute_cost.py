"""Run cost from Snakemake's `benchmark:` files: wall time and peak memory per rule and
per cell.

A benchmark file sits at `results/benchmarks/<key>/<rule>.tsv` where <key> is
the output folder of the job without `results/` (`layout.benchmark_file`; for
a cell, `layout.CELL_KEY`), or at `results/benchmarks/<dataset>/<rule>_<split>.tsv`
for the split, <split> being the folds file's name (`layout.SPLIT_NAME`).
Columns: s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out,
mean_load, cpu_time (memory in MB); one row per repeat.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core import layout

BENCH_COLUMNS: tuple[str, ...] = (
    "rule",
    "key",
    "seconds",
    "max_rss_mb",
    "cpu_seconds",
    "io_in_mb",
    "io_out_mb",
    "path",
)
RULE_COST_COLUMNS: tuple[str, ...] = (
    "rule",
    "jobs",
    "total_seconds",
    "mean_seconds",
    "max_seconds",
    "cpu_seconds",
    "peak_rss_mb",
)
# The per-cell rules whose cost joins the cell's row of the summary.
CELL_RULES: tuple[str, ...] = ("train", "sheet")


def _split_suffix() -> re.Pattern[str]:
    """`_<split name>` at the end of a benchmark file's stem, its wildcards as patterns."""
    pattern = ""
    for literal, name, _, _ in string.Formatter().parse(layout.SPLIT_NAME):
        pattern += re.escape(literal)
        if name:
            pattern += layout.WILDCARDS[name]
    return re.compile(f"_{pattern}$")


_SPLIT_SUFFIX = _split_suffix()


def _number(frame: pd.DataFrame, column: str, how: str) -> float:
    if column not in frame:
        return math.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    if values.empty:
        return math.nan
    return float(values.max() if how == "max" else values.mean())


def read_benchmarks(paths: Iterable[Path], root: Path | None = None) -> pd.DataFrame:
    """One row per benchmark file: its rule, its key (the folder relative to `root`, the
    benchmarks folder), mean seconds and CPU seconds over repeats, peak RSS. A file that is
    missing or unreadable is skipped: cost is informative, never a reason to fail."""
    rows = []
    for path in map(Path, paths):
        try:
            frame = pd.read_csv(path, sep="\t")
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
        rule = _SPLIT_SUFFIX.sub("", path.stem)
        try:
            key = path.parent.relative_to(root).as_posix() if root is not None else ""
        except ValueError:
            key = path.parent.as_posix()
        rows.append(
            {
                "rule": rule,
                "key": "" if key == "." else key,
                "seconds": _number(frame, "s", "mean"),
                "max_rss_mb": _number(frame, "max_rss", "max"),
                "cpu_seconds": _number(frame, "cpu_time", "mean"),
                "io_in_mb": _number(frame, "io_in", "mean"),
                "io_out_mb": _number(frame, "io_out", "mean"),
                "path": path.as_posix(),
            }
        )
    return pd.DataFrame(rows, columns=list(BENCH_COLUMNS))


def rule_costs(bench: pd.DataFrame) -> pd.DataFrame:
    """Per rule: job count, total / mean / max wall seconds, CPU seconds, peak RSS."""
    if bench.empty:
        return pd.DataFrame(columns=list(RULE_COST_COLUMNS))
    grouped = (
        bench.groupby("rule", sort=True)
        .agg(
            jobs=("seconds", "size"),
            total_seconds=("seconds", "sum"),
            mean_seconds=("seconds", "mean"),
            max_seconds=("seconds", "max"),
            cpu_seconds=("cpu_seconds", "sum"),
            peak_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
    )
    return grouped.sort_values(["total_seconds", "rule"], ascending=[False, True]).reset_index(
        drop=True
    )


def cell_costs(bench: pd.DataFrame) -> pd.DataFrame:
    """Per cell key: `<rule>_seconds` and `<rule>_max_rss_mb` for the per-cell rules
    (train, sheet), with the cell's coordinates parsed from the key."""
    columns = list(layout.CELL_COORDINATES)
    rows: dict[str, dict] = {}
    for r in bench.itertuples(index=False):
        try:
            coordinates = layout.parse_cell_dir(str(r.key))
        except layout.LayoutError:
            continue  # a whole-study or per-dataset job, not a cell's
        row = rows.setdefault(r.key, coordinates)
        row[f"{r.rule}_seconds"] = r.seconds
        row[f"{r.rule}_max_rss_mb"] = r.max_rss_mb
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return pd.DataFrame(columns=columns)
    for name in layout.INT_COORDINATES:
        frame[name] = frame[name].astype(np.int64)
    return frame


def attach_cell_costs(cells: pd.DataFrame, bench: pd.DataFrame) -> pd.DataFrame:
    """`cells` with train/sheet wall seconds and peak RSS from the benchmarks (NaN where a
    cell has no benchmark file)."""
    keys = list(layout.CELL_COORDINATES)
    added = [f"{rule}_{measure}" for rule in CELL_RULES for measure in ("seconds", "max_rss_mb")]
    costs = cell_costs(bench)
    out = cells.drop(columns=[c for c in added if c in cells])
    if costs.empty or out.empty:
        for column in added:
            out[column] = math.nan
        return out
    for column in added:
        if column not in costs:
            costs[column] = math.nan
    merged = out.merge(costs[keys + added], on=keys, how="left")
    return merged
