from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from report_cases import (
    FLAGGED,
    TARGET,
    K,
    Tables,
    truth_frame,
    write_benchmarks,
    write_grid,
    write_issues,
)

from spectragrid.core import layout
from spectragrid.report.issue_stats import given_from_cells
from spectragrid.report.summary import build_report, write_review_sheets, write_summary


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def test_write_summary_end_to_end(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base.parent, FLAGGED)
    cells = write_summary(
        metrics_paths=paths,
        issues_paths=[issues_path],
        targets={"OVA_OK": TARGET},
        out_html=base / "summary.html",
        out_csv=base / "summary.csv",
        out_parquet=base / "summary.parquet",
        truth=truth_frame(),
        provenance={"config_hash": "x"},
    )
    assert len(pd.read_parquet(base / "summary.parquet")) == len(cells) == 2 * K
    parser = Tables()
    parser.feed((base / "summary.html").read_text(encoding="utf-8"))
    issues = parser.tables["issues-table"]
    assert issues["rows"][0][issues["head"].index("F1")] == "0.571"


def test_write_summary_with_benchmarks_and_review_sheets(grid) -> None:
    base, paths = grid
    issues_path = write_issues(base.parent, FLAGGED)
    cells = write_summary(
        metrics_paths=paths,
        issues_paths=[issues_path],
        targets={"OVA_OK": TARGET},
        out_html=base / "summary.html",
        out_csv=base / "summary.csv",
        out_parquet=base / "summary.parquet",
        truth=truth_frame(),
        provenance={"config_hash": "x", "report": {"costs": {"NC*": 100}}},
        benchmark_paths=write_benchmarks(base.parent),
        benchmarks_root=base.parent / layout.BENCHMARKS,
        review_dir=base / "summary_files",
    )
    table = pd.read_csv(base / "summary.csv")
    assert table["train_seconds"].notna().all() and len(table) == len(cells)
    parser = Tables()
    page = (base / "summary.html").read_text(encoding="utf-8")
    parser.feed(page)
    assert "summary_files/issues_OVA_OK_all_s0_k5.html" in parser.refs
    assert (base / "summary_files" / "issues_OVA_OK_all_s0_k5.html").exists()
    rules = {r[0]: r for r in parser.tables["rule-cost-table"]["rows"]}
    assert set(rules) == {"train", "sheet", "ingest", "split"}
    grid_table = parser.tables["grid-table"]
    assert len(grid_table["rows"]) == 2
    head = grid_table["head"]
    for title in ("accuracy", "balanced accuracy", "macro-F1", "AUC", "log-loss", "HTER"):
        assert title in head
    clean = next(r for r in grid_table["rows"] if r[0] == "clean")
    assert clean[head.index("Δ macro-F1 vs raw")] != ""
    provenance = {r[0]: r[1] for r in parser.tables["provenance-table"]["rows"]}
    assert provenance["report.costs.NC*"] == "100"
    assert "did cleaning help?" not in page or "data:image/png;base64," in page
    assert page.count("data:image/png;base64,") >= 4


def test_write_review_sheets_links_relative_to_the_summary(grid) -> None:
    base, paths = grid
    first = write_issues(base.parent, FLAGGED)
    second = write_issues(base.parent, ["s000", "s010"], seed=1)
    links = write_review_sheets(
        [first, second],
        base / "summary_files",
        base,
        given_from_cells(paths),
        truth_frame(),
        {"OVA_OK": TARGET},
    )
    assert links == {
        "issues_OVA_OK_all_s0_k5": "summary_files/issues_OVA_OK_all_s0_k5.html",
        "issues_OVA_OK_all_s1_k5": "summary_files/issues_OVA_OK_all_s1_k5.html",
    }
    review = pd.read_csv(base / "summary_files" / "issues_OVA_OK_all_s1_k5.csv", dtype=str)
    assert review["sample_id"].tolist() == ["s000", "s010"]
    assert review["given_full_truth"].tolist() == ["VR2", "VR2"]


def test_build_report_from_the_files_of_a_study(grid) -> None:
    base, paths = grid
    work = base.parent
    issues_path = write_issues(work, FLAGGED)
    truth_path = work / "truth.csv"
    truth_frame()[["sample_id", "severity", "type"]].to_csv(truth_path, index=False)
    cleaning = work / layout.cleaning_report("demo")
    cleaning.write_text(
        json.dumps({"input_rows": 100, "kept": 100, "files": [{"file": "a.pkl", "sha256": "ab"}]})
    )
    settings = {"best_metric": "test_macro_f1", "cutoff": {"rule": "recall"}, "costs": {"OK0": -1}}
    cells = build_report(
        metrics_paths=paths,
        issues_paths=[issues_path],
        cleaning_report_path=cleaning,
        truth_path=truth_path,
        columns={"id": "sample_id", "severity": "severity", "type": "type"},
        label_map={s: s for s in ("OK", "CROCHET", "VR", "NC")},
        config_hash="cafe1234",
        best_metric="test_macro_f1",
        out_html=base / "summary.html",
        out_csv=base / "summary.csv",
        out_parquet=base / "summary.parquet",
        review_dir=base / "summary_files",
        report_settings=settings,
        check_outputs=False,
    )
    assert len(cells) == 2 * K and cells["truth_accuracy"].notna().all()
    parser = Tables()
    parser.feed((base / "summary.html").read_text(encoding="utf-8"))
    provenance = {r[0]: r[1] for r in parser.tables["provenance-table"]["rows"]}
    assert provenance["config_hash"] == "cafe1234"
    assert provenance["raw_files.a.pkl"] == "ab"
    assert provenance["truth_file"] == str(truth_path)
    assert provenance["report.costs.OK0"] == "-1"
    assert provenance["report.cutoff.rule"] == "recall"
    issues = parser.tables["issues-table"]
    assert issues["rows"][0][issues["head"].index("F1")] == "0.571"
    assert (base / "summary_files" / "issues_OVA_OK_all_s0_k5.csv").exists()
