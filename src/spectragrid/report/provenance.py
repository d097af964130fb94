"""Where a summary came from: the config, the raw files, the truth and the software.

Enough to tell two summaries apart and to rebuild one: the config hash, the
sha256 of every raw file as ingested, the truth file, the report settings in
force and the version of every package that shapes a number on the page.
"""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

VERSIONED = (
    "spectragrid",
    "snakemake",
    "torch",
    "lightning-fabric",
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


def study_provenance(
    config_hash: str,
    cleaning_report: Mapping,
    truth_path: Path | None,
    report_settings: Mapping,
) -> dict:
    """The provenance block of the summary, in the order the page lists it."""
    return {
        "config_hash": config_hash,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": package_versions(),
        "raw_files": {f["file"]: f["sha256"] for f in cleaning_report.get("files", [])},
        "truth_file": str(truth_path) if truth_path else None,
        "report": dict(report_settings),
    }
