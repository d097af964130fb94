"""Run cost from Snakemake's `benchmark:` files: wall time and peak memory per rule and
per cell.

A benchmark file sits at `results/benchmarks/<key>/<rule>.tsv` where <key> is
the output folder of the job without `results/` (`layout.benchmark_file`; for
the K folds of a cell's fold group, `layout.FOLD_GROUP_KEY`), or at
`results/benchmarks/<dataset>/<rule>_<split>.tsv` for the split, <split> being
the folds file's name (`layout.SPLIT_NAME`).
Columns: s, h:m:s, max_rss, max_vms, max_uss, max_pss, io_in, io_out,
mean_load, cpu_time (memory in MB); one row per repeat. A job run in the warm
interpreter (core.job_server) is a child Snakemake does not see: its CPU time
and peak memory come from the `.usage.json` beside the file
(`layout.job_usage_file`).
"""

from __future__ import annotations

import json
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


def _number(columns: dict[str, list[float]], column: str, how: str) -> float:
    values = [v for v in columns.get(column, []) if not math.isnan(v)]
    if not values:
        return math.nan
    return float(max(values) if how == "max" else sum(values) / len(values))


def _as_float(value: str) -> float:
    # Snakemake writes "-" for a measure it could not take.
    try:
        return float(value)
    except ValueError:
        return math.nan


def _read_tsv(path: Path) -> dict[str, list[float]] | None:
    """Column -> values of one benchmark file; None when it is empty or not a table.

    Parsed by hand: at 1,000 cells (2,000 files of two lines) `pd.read_csv` spent
    seven seconds on its own set-up.
    """
    with open(path, encoding="utf-8") as stream:
        lines = [line.rstrip("\r\n") for line in stream if line.strip()]
    if not lines:
        return None
    header = lines[0].split("\t")
    columns: dict[str, list[float]] = {name: [] for name in header}
    for line in lines[1:]:
        fields = line.split("\t")
        if len(fields) > len(header):
            return None
        fields += [""] * (len(header) - len(fields))
        for name, value in zip(header, fields, strict=True):
            columns[name].append(_as_float(value))
    return columns


def _warm_usage(benchmark: Path) -> dict[str, float]:
    """The warm job's own measures beside `benchmark`, or {} (a cold job's are in it)."""
    try:
        usage = json.loads(benchmark.with_suffix(".usage.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(usage, dict):
        return {}
    return {
        name: float(usage[name])
        for name in ("max_rss_mb", "cpu_seconds")
        if isinstance(usage.get(name), int | float)
    }


def read_benchmarks(paths: Iterable[Path], root: Path | None = None) -> pd.DataFrame:
    """One row per benchmark file: its rule, its key (the folder relative to `root`, the
    benchmarks folder), mean seconds and CPU seconds over repeats, peak RSS. A file that is
    missing or unreadable is skipped: cost is informative, never a reason to fail."""
    rows = []
    for path in map(Path, paths):
        try:
            columns = _read_tsv(path)
        except (OSError, ValueError):
            continue
        if columns is None:
            continue
        rule = _SPLIT_SUFFIX.sub("", path.stem)
        try:
            key = path.parent.relative_to(root).as_posix() if root is not None else ""
        except ValueError:
            key = path.parent.as_posix()
        usage = _warm_usage(path)
        rows.append(
            {
                "rule": rule,
                "key": "" if key == "." else key,
                "seconds": _number(columns, "s", "mean"),
                "max_rss_mb": usage.get("max_rss_mb", _number(columns, "max_rss", "max")),
                "cpu_seconds": usage.get("cpu_seconds", _number(columns, "cpu_time", "mean")),
                "io_in_mb": _number(columns, "io_in", "mean"),
                "io_out_mb": _number(columns, "io_out", "mean"),
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


def _cells_of_job(key: str) -> list[tuple[dict, float]]:
    """The cells a job's benchmark key covers, each with its share of the job's time:
    one cell, or the K folds of a fold group (an equal share each; the peak memory
    is the job's). None for a whole-study or per-dataset job."""
    try:
        return [(layout.parse_cell_dir(key), 1.0)]
    except layout.LayoutError:
        pass
    try:
        group = layout.parse_fold_group_dir(key)
    except layout.LayoutError:
        return []
    k = group["k"]
    return [({**group, "fold": fold, "k": k}, 1.0 / k) for fold in range(k)]


def cell_costs(bench: pd.DataFrame) -> pd.DataFrame:
    """Per cell key: `<rule>_seconds` and `<rule>_max_rss_mb` for the per-cell rules
    (train, sheet), with the cell's coordinates parsed from the key."""
    columns = list(layout.CELL_COORDINATES)
    rows: dict[str, dict] = {}
    for r in bench.itertuples(index=False):
        for coordinates, share in _cells_of_job(str(r.key)):
            row = rows.setdefault(layout.CELL_KEY.format(**coordinates), coordinates)
            row[f"{r.rule}_seconds"] = r.seconds * share
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
