"""The summary job: every cell's outputs, the label issues, the truth, the benchmarks and
the provenance into summary.csv, summary.parquet, summary.html and the review sheets.

The tables come from `summary_tables`, `raw_vs_clean`, `issue_stats` and
`compute_cost`, the reviewers' data from `spectragrid.issues.review`;
`summary_page` and `review_page` only render.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from spectragrid.data.clean_file import CleanData, read_clean
from spectragrid.data.image_clean import ImageData, is_image_file, read_images
from spectragrid.data.targets import Target
from spectragrid.data.truth import read_truth
from spectragrid.issues.review import flagged_overlap, issues_name, model_agreement
from spectragrid.report.baseline import SIGNIFICANCE
from spectragrid.report.compute_cost import attach_cell_costs, read_benchmarks, rule_costs
from spectragrid.report.issue_stats import given_from_cells, issue_stats, parse_issues_path
from spectragrid.report.provenance import study_provenance
from spectragrid.report.raw_vs_clean import paired_raw_clean
from spectragrid.report.review_page import write_review_sheet
from spectragrid.report.summary_page import SummaryExtras, render_summary_html
from spectragrid.report.summary_tables import (
    add_truth_metrics,
    aggregate,
    load_cells,
    target_of,
    truth_series,
    write_tables,
)
from spectragrid.train.output_checksums import verify_cell


def build_report(
    metrics_paths: list[Path],
    issues_paths: list[Path],
    cleaning_report_path: Path,
    truth_path: Path | None,
    columns: dict,
    label_map: dict,
    config_hash: str,
    best_metric: str,
    out_html: Path,
    out_csv: Path,
    out_parquet: Path,
    benchmark_paths: Sequence[Path] = (),
    benchmarks_root: Path | None = None,
    review_dir: Path | None = None,
    clean_path: Path | None = None,
    channel_sets: dict[str, list[str]] | None = None,
    report_settings: Mapping | None = None,
    check_outputs: bool = True,
    significance: float = SIGNIFICANCE,
) -> pd.DataFrame:
    """The summary job from the files the workflow hands it and the validated config.

    With `check_outputs`, every cell's files are first checked against the
    checksums its metrics.json records: a corrupt cell is named (and removed,
    so that the next run trains it again) rather than listed.
    """
    verified: dict[Path, dict] = {}
    if check_outputs:
        for path in map(Path, metrics_paths):
            verified[path] = verify_cell(path.parent)
    targets: dict[str, Target] = {}
    for path in map(Path, metrics_paths):
        metrics = verified[path] if path in verified else json.loads(path.read_text())
        target = target_of(metrics, path)
        targets.setdefault(target.name, target)
    cleaning_report = json.loads(Path(cleaning_report_path).read_text())
    truth = read_truth(truth_path, columns, label_map) if truth_path else None
    provenance = study_provenance(config_hash, cleaning_report, truth_path, report_settings or {})
    clean = None
    if clean_path is not None and issues_paths:
        # Only the channels of the grid's channel sets: the review sheets plot nothing else.
        wanted = sorted({str(c) for channels in (channel_sets or {}).values() for c in channels})
        clean = (
            read_images(Path(clean_path))
            if is_image_file(Path(clean_path))
            else read_clean(Path(clean_path), wanted or None)
        )
    return write_summary(
        metrics_paths=metrics_paths,
        issues_paths=issues_paths,
        targets=targets,
        out_html=out_html,
        out_csv=out_csv,
        out_parquet=out_parquet,
        truth=truth,
        cleaning_report=cleaning_report,
        provenance=provenance,
        best_metric=best_metric,
        benchmark_paths=benchmark_paths,
        benchmarks_root=benchmarks_root,
        review_dir=review_dir,
        clean=clean,
        channel_sets=channel_sets,
        significance=significance,
    )


def write_summary(
    *,
    metrics_paths: Sequence[Path],
    issues_paths: Sequence[Path],
    targets: dict[str, Target],
    out_html: Path,
    out_csv: Path,
    out_parquet: Path,
    truth: pd.DataFrame | None = None,
    given: pd.Series | None = None,
    cleaning_report: dict | None = None,
    provenance: dict | None = None,
    best_metric: str = "test_macro_f1",
    benchmark_paths: Sequence[Path] = (),
    benchmarks_root: Path | None = None,
    review_dir: Path | None = None,
    clean: CleanData | ImageData | None = None,
    channel_sets: dict[str, list[str]] | None = None,
    with_charts: bool = True,
    significance: float = SIGNIFICANCE,
) -> pd.DataFrame:
    """Every step from cell outputs to summary.csv/.parquet, summary.html and the review
    sheets (in `review_dir`, when given).

    Without `given`, the given labels come from the raw cells' predictions. `clean` lets
    the review sheets plot spectra. `significance` (report.significance) is the level of
    every paired test's verdict. Returns the per-cell table.
    """
    out_html = Path(out_html)
    base_dir = out_html.parent
    cells = load_cells(metrics_paths, base_dir)
    cells = add_truth_metrics(cells, truth, metrics_paths)
    bench = read_benchmarks(benchmark_paths, benchmarks_root)
    cells = attach_cell_costs(cells, bench)
    if given is None:
        given = given_from_cells(metrics_paths)
    issues = issue_stats(issues_paths, given, truth, targets)
    review_links: dict[str, str] = {}
    if review_dir is not None:
        review_links = write_review_sheets(
            issues_paths, Path(review_dir), base_dir, given, truth, targets, clean, channel_sets
        )
    extras = SummaryExtras(
        base_dir=base_dir,
        agreement=model_agreement(issues_paths, cells, base_dir),
        overlap=flagged_overlap(issues_paths),
        rule_costs=rule_costs(bench),
        review_links=review_links,
        charts=with_charts,
        significance=significance,
    )
    write_tables(cells, out_csv, out_parquet)
    render_summary_html(
        out_html,
        cells,
        aggregate(cells),
        paired_raw_clean(cells, significance),
        issues,
        cleaning_report or {},
        provenance or {},
        best_metric,
        extras,
    )
    return cells


def write_review_sheets(
    issues_paths: Sequence[Path],
    review_dir: Path,
    base_dir: Path,
    given: pd.Series | None,
    truth: pd.DataFrame | None,
    targets: Mapping[str, Target],
    clean: CleanData | ImageData | None = None,
    channel_sets: Mapping[str, list[str]] | None = None,
) -> dict[str, str]:
    """One review sheet (HTML and CSV) per issues file in `review_dir`; returns each
    sheet's path relative to `base_dir` (the folder of summary.html), by file stem."""
    review_dir.mkdir(parents=True, exist_ok=True)
    true_values = truth_series(truth) if truth is not None else None
    given_str = given.astype(str) if given is not None else None
    links: dict[str, str] = {}
    for path in map(Path, issues_paths):
        coords = parse_issues_path(path)
        channels = (channel_sets or {}).get(coords["channels"], [])
        # Spectra are plotted only where every channel of the set was read.
        plotted = (
            clean
            if isinstance(clean, ImageData)
            or (clean is not None and set(channels) <= set(clean.spectra))
            else None
        )
        out = write_review_sheet(
            path,
            review_dir,
            given_str,
            true_values,
            targets.get(coords["target"]),
            clean=plotted,
            channels=channels,
        )
        links[issues_name(coords)] = Path(
            os.path.relpath(out.resolve(), Path(base_dir).resolve())
        ).as_posix()
    return links
