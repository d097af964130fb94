from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from report_cases import (
    EVIL_CLASS,
    EVIL_MODEL,
    FLAGGED,
    TARGET,
    K,
    Tables,
    html_escaped,
    truth_frame,
    write_cell,
    write_grid,
    write_issues,
)

from spectragrid.core import layout
from spectragrid.report.issue_stats import given_labels, issue_stats
from spectragrid.report.raw_vs_clean import paired_raw_clean
from spectragrid.report.summary_page import (
    METRIC_TITLES,
    UNFLAGGED_NOTE,
    SummaryExtras,
    render_summary_html,
)
from spectragrid.report.summary_tables import add_truth_metrics, aggregate, load_cells


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    return write_grid(tmp_path)


def render_page(
    grid, tmp_path: Path, truth: bool = True, extras: SummaryExtras | None = None
) -> tuple[str, Tables, pd.DataFrame]:
    base, paths = grid
    work = base.parent
    paths = paths + [
        write_cell(work, labels, f, model=EVIL_MODEL, classes=["OK", EVIL_CLASS])
        for labels in ("raw", "clean")
        for f in range(K)
    ]
    cells = add_truth_metrics(load_cells(paths, base), truth_frame() if truth else None, paths)
    issues_path = write_issues(work, FLAGGED)
    issues = issue_stats(
        [issues_path],
        given_labels(p.parent / layout.CELL_FILES["predictions"] for p in paths),
        truth_frame() if truth else None,
        {"OVA_OK": TARGET},
    )
    report = {
        "input_rows": 110,
        "kept": 100,
        "dropped": {"saturation": 6, EVIL_CLASS: 4},
        "files": [{"file": "raw/a.pkl", "sha256": "ab" * 32, "rows": 110, "kept": 100}],
    }
    provenance = {
        "config_hash": "cafe1234",
        "date": "2026-01-02",
        "versions": {"spectragrid": "0.1.0", "torch": "2.5"},
    }
    out = base / "summary.html"
    render_summary_html(
        out,
        cells,
        aggregate(cells),
        paired_raw_clean(cells),
        issues,
        report,
        provenance,
        extras=extras,
    )
    page = out.read_text(encoding="utf-8")
    parser = Tables()
    parser.feed(page)
    return page, parser, cells


def test_summary_html_tables_and_escaping(grid, tmp_path: Path) -> None:
    page, parsed, cells = render_page(grid, tmp_path)
    assert "http://" not in page and "https://" not in page
    assert "<script>alert" not in page
    assert html_escaped(EVIL_CLASS) in page
    assert "m&quot;&amp;&lt;&gt;" in page
    assert page.count("<script>") == 1  # the page's own script only

    tables = parsed.tables
    cells_table = tables["cells-table"]
    assert len(cells_table["rows"]) == len(cells) == 4 * K
    head = cells_table["head"]
    for expected in ("labels", "target", "channels", "model", "seed", "fold", "k"):
        assert expected in head
    for title in METRIC_TITLES.values():
        assert title in head
    assert "truth accuracy" in head and "n train" in head and "n test" in head
    assert {len(r) for r in cells_table["rows"]} == {len(head)}
    models = {r[head.index("model")] for r in cells_table["rows"]}
    assert models == {"cnn", EVIL_MODEL}

    best = tables["best-table"]
    assert len(best["rows"]) == 2  # one target, raw and clean
    assert {r[best["head"].index("labels")] for r in best["rows"]} == {"clean", "raw"}

    raw_clean = tables["raw-vs-clean-table"]
    # two models x fourteen metrics (seven on the test fold, seven against the truth)
    assert len(raw_clean["rows"]) == 2 * 14
    assert f"clean, {UNFLAGGED_NOTE}" in raw_clean["head"]
    assert "p" in raw_clean["head"] and "Δ clean − raw" in raw_clean["head"]
    assert "verdict" in raw_clean["head"] and "95% interval of Δ" in raw_clean["head"]
    verdicts = {r[raw_clean["head"].index("verdict")] for r in raw_clean["rows"]}
    assert verdicts <= {"helped", "hurt", "no detectable difference", "cannot tell"}

    issues = tables["issues-table"]
    assert len(issues["rows"]) == 1
    assert issues["rows"][0][issues["head"].index("precision")] == "0.667"
    assert issues["rows"][0][issues["head"].index("recall")] == "0.500"

    assert len(tables["dropped"]["rows"]) == 2
    assert EVIL_CLASS in {r[0] for r in tables["dropped"]["rows"]}
    assert tables["files"]["rows"][0][1] == "ab" * 32
    provenance = {r[0]: r[1] for r in tables["provenance-table"]["rows"]}
    assert provenance["config_hash"] == "cafe1234" and provenance["versions.torch"] == "2.5"
    assert len(tables["cost-table"]["rows"]) == len(cells)
    assert any(EVIL_CLASS in r[-1] for r in tables["targets"]["rows"])

    # links are relative to the page and stay inside it once quoted
    assert parsed.refs and all(not r.startswith(("/", "javascript:")) for r in parsed.refs)
    assert any(r.startswith("demo/cells/raw/OVA_OK/all/m%22%26%3C%3E/") for r in parsed.refs)
    assert sorted(p.name for p in (grid[0]).iterdir()) == ["demo", "summary.html"]


def part_tables(page_dir: Path) -> dict[str, tuple[str, Tables]]:
    """Each lazily loaded part beside the page: its script's text and its parsed HTML."""
    out = {}
    for script in sorted((page_dir / "summary_files" / "parts").glob("*.js")):
        text = script.read_text(encoding="utf-8")
        part_id, html = json.loads(
            "[" + text.split("spectragridPart(", 1)[1].rsplit(");", 1)[0] + "]"
        )
        parsed = Tables()
        parsed.feed(html)
        out[part_id] = (text, parsed)
    return out


def test_large_study_keeps_per_cell_tables_beside_the_page(grid, tmp_path: Path) -> None:
    base = grid[0]
    _, inline, cells = render_page(grid, tmp_path)
    page, parsed, _ = render_page(grid, tmp_path, extras=SummaryExtras(base, inline_cells=0))
    assert "cells-table" not in parsed.tables and "cost-table" not in parsed.tables
    # the rest of the page is unchanged
    for table in ("grid-table", "raw-vs-clean-table", "best-table", "issues-table"):
        assert parsed.tables[table] == inline.tables[table], table
    parts = part_tables(base)
    assert sorted(parts) == ["cells-table", "cost-table"]
    for part_id, (script, tables) in parts.items():
        # the same rows as the inline table, and the page points at this very file
        assert tables.tables[part_id] == inline.tables[part_id]
        assert len(tables.tables[part_id]["rows"]) == len(cells)
        name = next(p.name for p in (base / "summary_files" / "parts").glob(f"{part_id}-*.js"))
        assert f'data-src="summary_files/parts/{name}"' in page
        # user strings stay escaped, and no markup can close a script from inside the file
        assert "<" not in script and ">" not in script
    cells_part = parts["cells-table"][1].tables["cells-table"]
    models = {r[cells_part["head"].index("model")] for r in cells_part["rows"]}
    assert models == {"cnn", EVIL_MODEL}
    assert page.count("<script>") == 2  # the page's script and the part loader

    # an inline page leaves no stale part behind
    render_page(grid, tmp_path)
    assert list((base / "summary_files" / "parts").glob("*.js")) == []


def test_summary_html_without_truth_hides_truth_columns(grid, tmp_path: Path) -> None:
    _, parsed, _ = render_page(grid, tmp_path, truth=False)
    assert "truth accuracy" not in parsed.tables["cells-table"]["head"]
    assert "precision" not in parsed.tables["issues-table"]["head"]
    assert len(parsed.tables["raw-vs-clean-table"]["rows"]) == 2 * 7


def test_summary_html_rejects_unknown_best_metric(grid, tmp_path: Path) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    with pytest.raises(ValueError, match="best_metric"):
        render_summary_html(
            tmp_path / "s.html",
            cells,
            aggregate(cells),
            paired_raw_clean(cells),
            issue_stats([], None, None, {}),
            {},
            {},
            best_metric="test_nonsense",
        )
    assert not (tmp_path / "s.html").exists()


def test_best_per_target_lower_is_better(grid, tmp_path: Path) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    agg = aggregate(cells)
    out = base / "s.html"
    render_summary_html(
        out, cells, agg, paired_raw_clean(cells), issue_stats([], None, None, {}), {}, {},
        best_metric="test_log_loss",
    )  # fmt: skip
    parser = Tables()
    parser.feed(out.read_text(encoding="utf-8"))
    best = parser.tables["best-table"]
    column = best["head"].index("log-loss (best)")
    shown = {r[1]: r[column] for r in best["rows"]}
    for labels, value in shown.items():
        mean = agg.loc[agg.labels == labels, "test_log_loss_mean"].iloc[0]
        assert value.startswith(f"{mean:.3f} ± ")


def test_summary_html_links_each_issues_file_to_its_review_sheet(grid, tmp_path: Path) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    issues = issue_stats([write_issues(base.parent, FLAGGED)], None, None, {})
    out = base / "summary.html"
    extras = SummaryExtras(
        base_dir=base,
        review_links={"issues_OVA_OK_all_s0_k5": "summary_files/issues_OVA_OK_all_s0_k5.html"},
        charts=False,
    )
    paired = paired_raw_clean(cells)
    render_summary_html(out, cells, aggregate(cells), paired, issues, {}, {}, extras=extras)
    page = out.read_text(encoding="utf-8")
    parser = Tables()
    parser.feed(page)
    assert "summary_files/issues_OVA_OK_all_s0_k5.html" in parser.refs
    row = parser.tables["issues-table"]["rows"][0]
    assert row[parser.tables["issues-table"]["head"].index("review sheet")] == "review"
    assert "data:image/png;base64," not in page  # charts=False draws none
