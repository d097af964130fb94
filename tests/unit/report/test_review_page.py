from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_cases import FLAGGED, TARGET, Tables, truth_frame, write_grid, write_issues

from spectragrid.core import layout
from spectragrid.data.clean_file import CleanData
from spectragrid.report.issue_stats import given_labels
from spectragrid.report.review_page import write_review_sheet
from spectragrid.report.summary_tables import truth_series


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def test_review_sheet_lists_every_flagged_sample(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base.parent, FLAGGED)
    given = given_labels(p.parent / layout.CELL_FILES["predictions"] for p in paths)
    out = write_review_sheet(
        issues_path, tmp_path / "files", given, truth_series(truth_frame()), TARGET
    )
    assert out.name == "issues_OVA_OK_all_s0_k5.html"
    parser = Tables()
    parser.feed(out.read_text(encoding="utf-8"))
    table = parser.tables["review-table"]
    assert [r[1] for r in table["rows"]] == FLAGGED
    column = table["head"].index("truly mislabelled")
    # s000 and s003 are mislabelled, s007 is not
    assert [r[column] for r in table["rows"]] == ["yes", "yes", "no"]
    # the CSV a reviewer edits: same samples by rank, empty corrected_label to fill in
    review = pd.read_csv(out.with_suffix(".csv"), dtype=str, keep_default_na=False)
    assert review["sample_id"].tolist() == FLAGGED
    assert list(review.columns)[:5] == [
        "sample_id",
        "rank",
        "given_label",
        "suggested_label",
        "label_quality",
    ]
    assert (review["corrected_label"] == "").all() and "comment" in review


def fake_clean(ids: list[str], full_truth: list[str]) -> CleanData:
    """A clean dataset of one channel whose spectra rise with the sample's class."""
    classes = TARGET.encode(pd.Series(full_truth))
    wavelengths = np.linspace(300, 500, 16)
    spectra = np.outer(classes + 1, np.ones(16)).astype(np.float32)
    table = pd.DataFrame({"sample_id": ids, "full_truth": full_truth})
    return CleanData(
        table=table,
        spectra={"277": spectra},
        wavelengths={"277": wavelengths},
        meta={},
    )


def test_review_sheet_plots_the_most_suspicious_spectra(grid, tmp_path: Path) -> None:
    base, paths = grid
    given = given_labels(p.parent / layout.CELL_FILES["predictions"] for p in paths)
    clean = fake_clean(list(given.index), list(given))
    issues_path = write_issues(base.parent, FLAGGED)
    plain = write_review_sheet(issues_path, tmp_path / "plain", given, None, TARGET)
    plotted = write_review_sheet(
        issues_path, tmp_path / "plotted", given, None, TARGET, clean=clean, channels=["277"]
    )
    page = plotted.read_text(encoding="utf-8")
    assert "The 3 most suspicious spectra" in page
    assert page.count("data:image/png;base64,") == 1
    assert "data:image/png;base64," not in plain.read_text(encoding="utf-8")
    parser = Tables()
    parser.feed(page)
    assert "truly mislabelled" not in parser.tables["review-table"]["head"]  # no truth given
