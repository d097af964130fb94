"""The report jobs: one cell's result sheet, and the summary of the whole study."""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import pandas as pd

from spectragrid.data.truth import read_truth
from spectragrid.report.business_cost import DEFAULT_COSTS, CostTable
from spectragrid.report.cutoffs import CutoffRule

VERSIONED = (
    "spectragrid",
    "snakemake",
    "torch",
    "lightning",
    "cleanlab",
    "onnxruntime",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_sheet(
    predictions_path: Path,
    metrics_path: Path,
    history_path: Path | None,
    card_path: Path | None,
    out_png: Path,
    out_html: Path | None,
    cutoff: Mapping | None = None,
    costs: Mapping | None = None,
) -> None:
    """One cell's sheet (PNG and HTML) from its outputs and the `report` config."""
    # Matplotlib is only needed here: the summary and the Snakefile stay light.
    from spectragrid.report.sheet_data import render_sheet

    metrics = json.loads(Path(metrics_path).read_text())
    history = pd.read_csv(history_path) if history_path and Path(history_path).exists() else None
    card = (
        json.loads(Path(card_path).read_text()) if card_path and Path(card_path).exists() else None
    )
    render_sheet(
        pd.read_parquet(predictions_path),
        metrics["target"]["classes"],
        metrics["display_name"],
        Path(out_png),
        history,
        out_html=Path(out_html) if out_html else None,
        card=card,
        metrics=metrics,
        rule=CutoffRule.from_config(cutoff),
        costs=CostTable.from_config(costs),
    )


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
) -> pd.DataFrame:
    """The summary job: cell outputs, label issues, truth, benchmarks and provenance into
    summary.html, summary.csv, summary.parquet and the review sheets."""
    from spectragrid.report.summary_page import write_summary
    from spectragrid.report.summary_tables import target_of

    targets = {}
    for path in metrics_paths:
        target = target_of(json.loads(Path(path).read_text()), path)
        targets.setdefault(target.name, target)
    cleaning_report = json.loads(Path(cleaning_report_path).read_text())
    truth = read_truth(truth_path, columns, label_map) if truth_path else None
    settings = dict(report_settings or {})
    if "costs" in settings and settings["costs"] is None:
        settings["costs"] = dict(DEFAULT_COSTS)
    provenance = {
        "config_hash": config_hash,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": package_versions(),
        "raw_files": {f["file"]: f["sha256"] for f in cleaning_report.get("files", [])},
        "truth_file": str(truth_path) if truth_path else None,
        "report": settings,
    }
    clean = None
    if clean_path is not None and issues_paths:
        from spectragrid.data.clean_file import read_clean

        wanted = sorted({str(c) for channels in (channel_sets or {}).values() for c in channels})
        clean = read_clean(Path(clean_path), wanted or None)
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
    )
