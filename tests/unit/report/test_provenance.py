from __future__ import annotations

import platform
import re
from importlib import metadata
from pathlib import Path

from spectragrid.report.provenance import VERSIONED, package_versions, study_provenance


def test_package_versions_name_python_and_every_versioned_package() -> None:
    versions = package_versions()
    assert list(versions) == ["python", *VERSIONED]
    assert versions["python"] == platform.python_version()
    assert versions["pandas"] == metadata.version("pandas")
    assert all(v for v in versions.values())


def test_study_provenance_in_page_order() -> None:
    cleaning = {"files": [{"file": "raw/a.pkl", "sha256": "ab" * 32, "rows": 3}]}
    settings = {"best_metric": "test_macro_f1", "costs": {"OK0": -1}}
    provenance = study_provenance("cafe1234", cleaning, Path("truth.csv"), settings)
    assert list(provenance) == [
        "config_hash",
        "date",
        "versions",
        "raw_files",
        "truth_file",
        "report",
    ]
    assert provenance["config_hash"] == "cafe1234"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", provenance["date"])
    assert provenance["raw_files"] == {"raw/a.pkl": "ab" * 32}
    assert provenance["truth_file"] == "truth.csv"
    assert provenance["report"] == settings and provenance["report"] is not settings
    assert study_provenance("x", {}, None, {})["truth_file"] is None
