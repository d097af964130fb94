"""The summary job: cell outputs, label issues, truth and provenance into one page."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path

import pandas as pd

from spectragrid.summary import target_of
from spectragrid.summary_html import write_summary
from spectragrid.truth import read_truth

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
)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


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
) -> pd.DataFrame:
    targets = {}
    for path in metrics_paths:
        target = target_of(json.loads(Path(path).read_text()), path)
        targets.setdefault(target.name, target)
    cleaning_report = json.loads(cleaning_report_path.read_text())
    truth = read_truth(truth_path, columns, label_map) if truth_path else None
    provenance = {
        "config_hash": config_hash,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": package_versions(),
        "raw_files": {f["file"]: f["sha256"] for f in cleaning_report.get("files", [])},
        "truth_file": str(truth_path) if truth_path else None,
    }
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
    )
