from __future__ import annotations

import math
from pathlib import Path

import pytest
from report_cases import K, cell_benchmark, write_benchmarks, write_grid

from spectragrid.core import layout
from spectragrid.report.compute_cost import (
    attach_cell_costs,
    cell_costs,
    read_benchmarks,
    rule_costs,
)
from spectragrid.report.summary_tables import load_cells


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def test_benchmarks_per_rule_and_per_cell(grid) -> None:
    base, paths = grid
    bench_paths = write_benchmarks(base.parent)
    root = base.parent / layout.BENCHMARKS
    bench = read_benchmarks([*bench_paths, base / "missing.tsv"], root)
    assert len(bench) == len(bench_paths)  # the missing file is skipped
    train = bench[bench.rule == "train"].set_index("key")
    key = "demo/cells/raw/OVA_OK/all/cnn/s0/f1of5"
    # repeats: mean seconds, peak memory
    assert train.loc[key, "seconds"] == 12 and train.loc[key, "max_rss_mb"] == 501
    assert set(bench["rule"]) == {"train", "sheet", "ingest", "split"}
    per_rule = rule_costs(bench).set_index("rule")
    assert per_rule.loc["train", "jobs"] == 2 * K
    assert per_rule.loc["train", "total_seconds"] == pytest.approx(
        2 * sum(11 + f for f in range(K))
    )
    assert per_rule.loc["train", "peak_rss_mb"] == 500 + K - 1
    assert math.isnan(per_rule.loc["split", "peak_rss_mb"])
    assert rule_costs(bench)["rule"].iloc[0] == "train"  # most expensive first
    cells = attach_cell_costs(load_cells(paths, base), bench)
    raw1 = cells[(cells.labels == "raw") & (cells.fold == 1)].iloc[0]
    assert raw1["train_seconds"] == 12 and raw1["train_max_rss_mb"] == 501
    assert raw1["sheet_seconds"] == 2
    assert len(cells) == 2 * K
    none = attach_cell_costs(load_cells(paths, base), read_benchmarks([], None))
    assert none["train_seconds"].isna().all()


def test_cell_costs_read_coordinates_from_the_cell_key(tmp_path: Path) -> None:
    paths = write_benchmarks(tmp_path)
    bench = read_benchmarks(paths, tmp_path / layout.BENCHMARKS)
    costs = cell_costs(bench)
    # the per-dataset ingest and split benchmarks are no cell's
    assert len(costs) == 2 * K
    assert list(costs.columns[: len(layout.CELL_COORDINATES)]) == list(layout.CELL_COORDINATES)
    clean3 = costs[(costs.labels == "clean") & (costs.fold == 3)].iloc[0]
    assert (clean3["dataset"], clean3["model"], clean3["seed"], clean3["k"]) == (
        "demo",
        "cnn",
        0,
        K,
    )
    assert clean3["train_seconds"] == 14 and clean3["sheet_max_rss_mb"] == 250
    assert costs["fold"].dtype.kind == "i"
    assert cell_benchmark(tmp_path, "clean", 3, "train") in paths


def test_a_warm_job_s_own_cpu_and_memory_replace_its_script_s(tmp_path: Path) -> None:
    """Snakemake measured the job script; its child, forked by the warm interpreter, wrote
    what it used beside the file (core.job_client): that is the job's cost."""
    paths = write_benchmarks(tmp_path)
    warm = cell_benchmark(tmp_path, "raw", 1, "train")
    warm.with_suffix(".usage.json").write_text('{"cpu_seconds": 3.5, "max_rss_mb": 612.0}')
    # unreadable: the benchmark file's own figures stand
    cell_benchmark(tmp_path, "raw", 2, "train").with_suffix(".usage.json").write_text("{")
    bench = read_benchmarks(paths, tmp_path / layout.BENCHMARKS).set_index("path")
    row = bench.loc[warm.as_posix()]
    assert (row["seconds"], row["cpu_seconds"], row["max_rss_mb"]) == (12, 3.5, 612)
    cold = bench.loc[cell_benchmark(tmp_path, "raw", 2, "train").as_posix()]
    assert (cold["cpu_seconds"], cold["max_rss_mb"]) == (10.5, 502)
