from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from report_cases import (
    DATASET,
    FLAGGED,
    GIVEN,
    MISLABELLED,
    SAMPLE_IDS,
    TARGET,
    K,
    N,
    issues_file,
    truth_frame,
    write_grid,
    write_issues,
)

from spectragrid.core import layout
from spectragrid.report.issue_stats import (
    given_from_cells,
    given_labels,
    issue_stats,
    parse_issues_path,
)
from spectragrid.report.summary_tables import SummaryError
from spectragrid.train.label_action import IssuesFileError


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def predictions_of(metrics_path: Path) -> Path:
    return metrics_path.parent / layout.CELL_FILES["predictions"]


def test_parse_issues_path() -> None:
    path = Path(layout.issues_dir(DATASET, "OVA_OK", "all", 42, 20)) / layout.ISSUES_FILES["issues"]
    coords = parse_issues_path(path)
    assert coords == {"target": "OVA_OK", "channels": "all", "seed": 42, "k": 20}
    for bad in (
        "results/demo/issues/OVA_OK/all/s42/k20/issues.csv",
        "results/demo/label_issues/OVA_OK/all/seed42/k20/issues.csv",
        "results/demo/label_issues/OVA_OK/s42/k20/issues.csv",
    ):
        with pytest.raises(SummaryError, match="label_issues"):
            parse_issues_path(Path(bad))
    with pytest.raises(SummaryError, match=re.escape(layout.ISSUES_FILES["issues"])):
        parse_issues_path(path.with_name("flagged.csv"))


def test_issue_stats_detection_against_truth(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base.parent, FLAGGED)
    given = given_labels(predictions_of(p) for p in paths)
    assert given.to_dict() == dict(zip(SAMPLE_IDS, GIVEN, strict=True))
    stats = issue_stats([issues_path], given, truth_frame(), {"OVA_OK": TARGET})
    row = stats.iloc[0]
    assert (row["target"], row["channels"], row["seed"], row["k"]) == ("OVA_OK", "all", 0, K)
    assert row["n_flagged"] == 3 and row["n_samples"] == N
    assert row["n_truly_mislabelled"] == len(MISLABELLED)
    assert row["true_positives"] == 2
    assert row["precision"] == pytest.approx(2 / 3)
    assert row["recall"] == pytest.approx(2 / 4)
    assert row["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert row["top_flagged"].startswith("s000 (rest→OK)")
    counts_only = issue_stats([issues_path], None, None, {})
    assert counts_only.iloc[0]["n_flagged"] == 3 and math.isnan(counts_only.iloc[0]["precision"])
    with pytest.raises(SummaryError, match="unknown target"):
        issue_stats([issues_path], given, truth_frame(), {})
    assert given_from_cells(paths).to_dict() == given.to_dict()


def test_issue_stats_name_an_issues_file_without_its_columns(tmp_path: Path) -> None:
    path = issues_file(tmp_path)
    path.parent.mkdir(parents=True)
    pd.DataFrame({"sample_id": ["s000"], "rank": [1]}).to_csv(path, index=False)
    with pytest.raises(IssuesFileError, match=rf"{path.name}: missing column"):
        issue_stats([path], None, None, {})


def test_given_labels_refuse_conflicts(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"sample_id": ["x"], "full_truth": ["OK0"]}).to_parquet(a)
    pd.DataFrame({"sample_id": ["x"], "full_truth": ["VR2"]}).to_parquet(b)
    with pytest.raises(SummaryError, match="'x'"):
        given_labels([a, b])
