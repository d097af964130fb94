from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.core.metrics import METRIC_NAMES, classification_metrics
from spectragrid.data.targets import Target
from spectragrid.report.compute_cost import attach_cell_costs, read_benchmarks, rule_costs
from spectragrid.report.review_page import flagged_overlap, model_agreement, write_review_sheet
from spectragrid.report.summary_page import (
    METRIC_TITLES,
    UNFLAGGED_NOTE,
    render_summary_html,
    write_summary,
)
from spectragrid.report.summary_tables import (
    SummaryError,
    add_truth_metrics,
    aggregate,
    best_per_target,
    errors_by_truth,
    given_from_cells,
    given_labels,
    issue_stats,
    load_cells,
    lower_is_better,
    paired_p_value,
    paired_raw_clean,
    parse_issues_path,
    truth_series,
    write_tables,
)

K = 5
N = 100
CLASSES = ["OK", "rest"]
MEMBERS = [["OK0"], ["CROCHET0", "VR2", "NC4"]]
TARGET = Target("OVA_OK", "OVA OK", tuple(CLASSES), tuple(tuple(m) for m in MEMBERS))
SAMPLE_IDS = [f"s{i:03d}" for i in range(N)]
TRUE = [("OK0", "OK0", "CROCHET0", "VR2", "NC4")[i % 5] for i in range(N)]
# Given labels: OK samples 0, 5, 10 were labelled VR2, and VR2 sample 3 was labelled OK0.
GIVEN = list(TRUE)
for i in (0, 5, 10):
    GIVEN[i] = "VR2"
GIVEN[3] = "OK0"
MISLABELLED = {"s000", "s005", "s010", "s003"}


def fold_of(i: int) -> int:
    return (i // 5) % K


def cell_dir(root: Path, labels: str, fold: int, model: str = "cnn", seed: int = 0) -> Path:
    return root / "cells" / labels / "OVA_OK" / "all" / model / f"s{seed}" / f"f{fold}of{K}"


def write_cell(
    root: Path,
    labels: str,
    fold: int,
    *,
    model: str = "cnn",
    classes: list[str] = CLASSES,
    card: bool = True,
    sheet: bool = True,
    flagged: frozenset[str] = frozenset(),
) -> Path:
    folder = cell_dir(root, labels, fold, model)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [s for i, s in enumerate(SAMPLE_IDS) if fold_of(i) == fold]
    given = [GIVEN[SAMPLE_IDS.index(s)] for s in ids]
    y = TARGET.encode(pd.Series(given))
    rng = np.random.default_rng(fold * 10 + (labels == "clean"))
    p0 = np.clip(np.where(y == 0, 0.7, 0.3) + rng.normal(0, 0.25, len(ids)), 0.01, 0.99)
    proba = np.column_stack([p0, 1 - p0])
    predictions = pd.DataFrame(
        {
            "sample_id": ids,
            "full_truth": given,
            "label": np.array(classes)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
        }
    )
    for j, name in enumerate(classes):
        predictions[f"prob_{name}"] = proba[:, j]
    predictions.to_parquet(folder / "predictions.parquet", index=False)
    keep = ~predictions["sample_id"].isin(flagged).to_numpy()
    metrics = {
        "cell": {
            "dataset": "demo",
            "labels": labels,
            "target": "OVA_OK",
            "channels": "all",
            "model": model,
            "seed": 0,
            "fold": fold,
            "k": K,
        },
        "display_name": f"{model} y=['OVA', 'OK'] c=('277', '380', '425') t=() {fold}-{K} s=0",
        "target": {"name": "OVA_OK", "code": "OVA OK", "classes": classes, "members": MEMBERS},
        "channels": ["277", "380", "425"],
        "n_train": 60,
        "n_val": 20,
        "n_test": len(ids),
        "n_removed_flagged": len(flagged) if labels == "clean" else 0,
        "best_epoch": 3,
        "epochs_run": 5,
        "test": classification_metrics(y, proba),
        "test_unflagged": (
            classification_metrics(y[keep], proba[keep]) if labels == "clean" else None
        ),
        "onnx_parity": {"max_abs_diff": 2e-8, "argmax_agree": 1.0, "n": len(ids)},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    if card:
        (folder / "card.json").write_text(
            json.dumps(
                {
                    "parameters": 1234,
                    "flops_per_sample": 5678,
                    "seconds_per_epoch": 0.5,
                    "train_samples_per_second": 120.0,
                    "wall_seconds": 3.0 + fold,
                    "device": "cpu",
                }
            )
        )
    if sheet:
        (folder / "sheet.png").write_bytes(b"png")
    return folder / "metrics.json"


def truth_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": SAMPLE_IDS,
            "severity": [t.rstrip("0123456789") for t in TRUE],
            "type": [int(t[len(t.rstrip("0123456789")) :]) for t in TRUE],
            "full_truth": TRUE,
        }
    )


def write_issues(root: Path, flagged: list[str], seed: int = 0) -> Path:
    folder = root / "label_issues" / "OVA_OK" / "all" / f"s{seed}" / f"k{K}"
    folder.mkdir(parents=True, exist_ok=True)
    given = [GIVEN[SAMPLE_IDS.index(s)] for s in flagged]
    classes = [CLASSES[c] for c in TARGET.encode(pd.Series(given, dtype=object))]
    pd.DataFrame(
        {
            "sample_id": flagged,
            "given_label": classes,
            "suggested_label": [CLASSES[1 - CLASSES.index(c)] for c in classes],
            "label_quality": np.linspace(0.01, 0.2, len(flagged)),
            "rank": range(1, len(flagged) + 1),
        }
    ).to_csv(folder / "issues.csv", index=False)
    return folder / "issues.csv"


FLAGGED = ["s000", "s003", "s007"]  # two truly mislabelled of four, one false alarm


@pytest.fixture
def grid(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "results" / "demo"
    paths = [write_cell(root, "raw", f) for f in range(K)]
    paths += [
        write_cell(root, "clean", f, flagged=frozenset(FLAGGED), card=f != 0, sheet=f != 1)
        for f in range(K)
    ]
    return tmp_path / "results", paths


def test_load_cells_reads_coordinates_metrics_costs_and_links(grid) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    assert len(cells) == 2 * K
    assert list(cells[["labels", "fold"]].itertuples(index=False, name=None))[:2] == [
        ("clean", 0),
        ("clean", 1),
    ]
    assert cells["seed"].dtype == np.int64 and cells["k"].eq(K).all()
    raw0 = cells[(cells.labels == "raw") & (cells.fold == 0)].iloc[0]
    metrics = json.loads(paths[0].read_text())
    for name in METRIC_NAMES:
        assert raw0[f"test_{name}"] == pytest.approx(metrics["test"][name], nan_ok=True)
        assert math.isnan(raw0[f"unflagged_{name}"])
    clean = cells[cells.labels == "clean"].set_index("fold")
    assert clean["unflagged_accuracy"].notna().all()
    assert clean["n_removed_flagged"].eq(3).all()
    assert raw0["parameters"] == 1234 and raw0["device"] == "cpu"
    assert raw0["wall_seconds"] == 3.0
    assert math.isnan(clean.loc[0, "wall_seconds"]) and pd.isna(clean.loc[0, "device"])
    assert raw0["sheet"] == "demo/cells/raw/OVA_OK/all/cnn/s0/f0of5/sheet.png"
    assert raw0["predictions"].endswith("f0of5/predictions.parquet")
    assert pd.isna(raw0["onnx"])  # no model.onnx written: no broken link
    assert pd.isna(clean.loc[1, "sheet"])
    assert raw0["onnx_max_abs_diff"] == pytest.approx(2e-8)
    assert json.loads(raw0["classes"]) == CLASSES


def test_load_cells_rejects_bad_files(tmp_path: Path) -> None:
    path = write_cell(tmp_path, "raw", 0)
    with pytest.raises(SummaryError, match="same cell"):
        load_cells([path, path], tmp_path)
    metrics = json.loads(path.read_text())
    del metrics["cell"]["fold"]
    path.write_text(json.dumps(metrics))
    with pytest.raises(SummaryError, match="fold"):
        load_cells([path], tmp_path)
    path.write_text("{not json")
    with pytest.raises(SummaryError, match=r"metrics\.json"):
        load_cells([path], tmp_path)
    assert load_cells([], tmp_path).empty


def test_truth_metrics_score_against_noise_free_labels(grid) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    raw0 = cells[(cells.labels == "raw") & (cells.fold == 0)].iloc[0]
    predictions = pd.read_parquet(paths[0].parent / "predictions.parquet")
    truth = dict(zip(SAMPLE_IDS, TRUE, strict=True))
    y_true = TARGET.encode(predictions["sample_id"].map(truth))
    proba = predictions[["prob_OK", "prob_rest"]].to_numpy()
    expected = classification_metrics(y_true, proba)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "auc"):
        assert raw0[f"truth_{name}"] == pytest.approx(expected[name])
    # fold 0 holds s000-s004, s025-s029, ...: s000 and s003 are mislabelled, 2 of 20
    assert raw0["n_test_truth"] == 20
    assert raw0["noise_rate_test"] == pytest.approx(2 / 20)
    without = add_truth_metrics(load_cells(paths, base), None, paths)
    assert without["truth_accuracy"].isna().all()


def test_truth_metrics_build_full_truth_from_severity_and_type(grid) -> None:
    base, paths = grid
    truth = truth_frame().drop(columns="full_truth")
    cells = add_truth_metrics(load_cells(paths, base), truth, paths)
    assert cells["truth_accuracy"].notna().all()


def test_paired_p_value_chooses_the_test() -> None:
    raw = np.array([0.80, 0.82, 0.79, 0.81, 0.80])
    clean = raw + np.array([0.02, 0.03, 0.01, 0.04, 0.05])
    p, test = paired_p_value(raw, clean)
    assert test == "Wilcoxon" and p == pytest.approx(0.0625)  # exact, all 5 signs agree
    p, test = paired_p_value(raw[:3], clean[:3])
    assert test == "paired t" and 0 < p < 0.2
    assert math.isnan(paired_p_value(raw[:1], clean[:1])[0])
    assert paired_p_value(raw, raw) == (1.0, "none (all differences 0)")
    p, test = paired_p_value(raw[:3], raw[:3] + 0.01)
    assert math.isnan(p) and test.startswith("t")
    p, _ = paired_p_value(np.array([0.8, math.nan, 0.7]), np.array([0.9, 0.9, math.nan]))
    assert math.isnan(p)  # one usable pair only


def test_paired_raw_clean_fold_by_fold(grid) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    # a raw cell of another model has no clean twin: no pair
    extra = write_cell(base / "demo", "raw", 0, model="mlp")
    cells = pd.concat([cells, load_cells([extra], base)], ignore_index=True)
    paired = paired_raw_clean(cells)
    assert len(paired) == 1
    row = paired.iloc[0]
    assert row["n_folds"] == K and row["folds"] == "0,1,2,3,4"
    raw = cells[(cells.labels == "raw") & (cells.model == "cnn")].sort_values("fold")
    clean = cells[cells.labels == "clean"].sort_values("fold")
    diff = clean["test_accuracy"].to_numpy() - raw["test_accuracy"].to_numpy()
    assert row["test_accuracy_diff_mean"] == pytest.approx(diff.mean())
    assert row["test_accuracy_diff_sd"] == pytest.approx(diff.std(ddof=1))
    assert row["test_accuracy_raw_mean"] == pytest.approx(raw["test_accuracy"].mean())
    assert row["test_accuracy_diffs"].split() == [f"f{f}:{d:+.3f}" for f, d in enumerate(diff)]
    assert row["test_accuracy_p"] == pytest.approx(
        paired_p_value(raw["test_accuracy"], clean["test_accuracy"])[0]
    )
    assert np.isfinite(row["truth_macro_f1_diff_mean"])
    assert row["unflagged_accuracy_clean_mean"] == pytest.approx(clean["unflagged_accuracy"].mean())
    assert row["n_removed_flagged_mean"] == 3
    assert paired_raw_clean(cells.iloc[0:0]).empty


def test_aggregate_mean_and_sd_over_folds(grid) -> None:
    base, paths = grid
    cells = load_cells(paths, base)
    agg = aggregate(cells)
    assert list(agg["labels"]) == ["clean", "raw"]
    assert agg["n_folds"].eq(K).all()
    raw = agg[agg.labels == "raw"].iloc[0]
    values = cells.loc[cells.labels == "raw", "test_macro_f1"]
    assert raw["test_macro_f1_mean"] == pytest.approx(values.mean())
    assert raw["test_macro_f1_sd"] == pytest.approx(values.std(ddof=1))
    assert math.isnan(raw["unflagged_accuracy_mean"])
    single = aggregate(cells[cells.fold == 0])
    assert single["n_folds"].eq(1).all() and single["test_accuracy_sd"].isna().all()


def test_parse_issues_path() -> None:
    coords = parse_issues_path(Path("results/demo/label_issues/OVA_OK/all/s42/k20/issues.csv"))
    assert coords == {"target": "OVA_OK", "channels": "all", "seed": 42, "k": 20}
    for bad in (
        "results/demo/issues/OVA_OK/all/s42/k20/issues.csv",
        "results/demo/label_issues/OVA_OK/all/seed42/k20/issues.csv",
        "results/demo/label_issues/OVA_OK/s42/k20/issues.csv",
    ):
        with pytest.raises(SummaryError, match="label_issues"):
            parse_issues_path(Path(bad))


def test_issue_stats_detection_against_truth(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base / "demo", FLAGGED)
    given = given_labels(p.parent / "predictions.parquet" for p in paths)
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


def test_given_labels_refuse_conflicts(tmp_path: Path) -> None:
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.DataFrame({"sample_id": ["x"], "full_truth": ["OK0"]}).to_parquet(a)
    pd.DataFrame({"sample_id": ["x"], "full_truth": ["VR2"]}).to_parquet(b)
    with pytest.raises(SummaryError, match="'x'"):
        given_labels([a, b])


def test_write_tables_round_trip(grid, tmp_path: Path) -> None:
    base, paths = grid
    cells = add_truth_metrics(load_cells(paths, base), truth_frame(), paths)
    out_csv, out_parquet = tmp_path / "out" / "summary.csv", tmp_path / "out" / "summary.parquet"
    write_tables(cells, out_csv, out_parquet)
    back = pd.read_parquet(out_parquet)
    assert len(back) == len(cells) and list(back.columns) == list(cells.columns)
    assert back["test_accuracy"].tolist() == pytest.approx(cells["test_accuracy"].tolist())
    assert len(pd.read_csv(out_csv)) == len(cells)
    assert sorted(p.name for p in out_csv.parent.iterdir()) == ["summary.csv", "summary.parquet"]


class Tables(HTMLParser):
    """Tables by id: header texts and rows of cell texts; every href and src."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict] = {}
        self.refs: list[str] = []
        self._table: dict | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        self.refs += [v for k, v in attrs.items() if k in ("href", "src")]
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), {"head": [], "rows": []})
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if self._row and not self._table["head"]:
                self._table["head"] = self._row
            else:
                self._table["rows"].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


EVIL_CLASS = "<script>alert(1)</script>"
EVIL_MODEL = 'm"&<>'


def render_page(grid, tmp_path: Path, truth: bool = True) -> tuple[str, Tables, pd.DataFrame]:
    base, paths = grid
    root = base / "demo"
    paths = paths + [
        write_cell(root, labels, f, model=EVIL_MODEL, classes=["OK", EVIL_CLASS])
        for labels in ("raw", "clean")
        for f in range(K)
    ]
    cells = add_truth_metrics(load_cells(paths, base), truth_frame() if truth else None, paths)
    issues_path = write_issues(root, FLAGGED)
    issues = issue_stats(
        [issues_path],
        given_labels(p.parent / "predictions.parquet" for p in paths),
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
        out, cells, aggregate(cells), paired_raw_clean(cells), issues, report, provenance
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
    # two models x nine metrics (seven on the test fold, two against the truth)
    assert len(raw_clean["rows"]) == 2 * 9
    assert f"clean, {UNFLAGGED_NOTE}" in raw_clean["head"]
    assert "p" in raw_clean["head"] and "Δ clean − raw" in raw_clean["head"]

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


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


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


def test_write_summary_end_to_end(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base / "demo", FLAGGED)
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


BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def write_benchmarks(base: Path) -> list[Path]:
    """train/sheet benchmarks for every cell of the grid fixture, plus two whole-study ones."""
    root = base / "benchmarks"
    paths = []
    for labels in ("raw", "clean"):
        for fold in range(K):
            folder = root / cell_dir(Path("demo"), labels, fold)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "train.tsv").write_text(
                BENCH_HEADER
                + f"{10 + fold}\t0:00:10\t{500 + fold}\t-\t-\t-\t1\t1\t50\t{8 + fold}\n"
                + f"{12 + fold}\t0:00:12\t{400 + fold}\t-\t-\t-\t1\t1\t50\t{9 + fold}\n"
            )
            (folder / "sheet.tsv").write_text(
                BENCH_HEADER + "2\t0:00:02\t250\t-\t-\t-\t0\t0\t9\t1\n"
            )
            paths += [folder / "train.tsv", folder / "sheet.tsv"]
    (root / "demo").mkdir(parents=True, exist_ok=True)
    (root / "demo" / "ingest.tsv").write_text(
        BENCH_HEADER + "1.5\t0:00:01\t150\t-\t-\t-\t0\t0\t0\t1\n"
    )
    (root / "demo" / "split_s0_k5.tsv").write_text(
        BENCH_HEADER + "0.5\t0:00:00\tNA\t-\t-\t-\t0\t0\t0\t0\n"
    )
    return [*paths, root / "demo" / "ingest.tsv", root / "demo" / "split_s0_k5.tsv"]


def test_benchmarks_per_rule_and_per_cell(grid) -> None:
    base, paths = grid
    bench_paths = write_benchmarks(base)
    bench = read_benchmarks([*bench_paths, base / "missing.tsv"], base / "benchmarks")
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


def test_errors_by_truth_hand_computed() -> None:
    predictions = pd.DataFrame(
        {
            "full_truth": ["OK0", "OK0", "OK0", "VR2", "VR2", "NC4"],
            "label_index": [0, 0, 0, 1, 1, 1],
            "pred_index": [0, 1, 1, 0, 1, 0],
        }
    )
    table = errors_by_truth(predictions, ["OK", "rest"])
    assert table["full_truth"].tolist() == ["OK0", "NC4", "VR2"]
    assert table["n"].tolist() == [3, 1, 2]
    assert table["n_errors"].tolist() == [2, 1, 1]
    assert table["error_rate"].tolist() == pytest.approx([2 / 3, 1.0, 0.5])
    assert table["top_wrong"].tolist() == ["rest", "OK", "OK"]
    assert errors_by_truth(predictions.iloc[0:0], ["OK", "rest"]).empty


def test_best_per_target_and_direction(grid) -> None:
    base, paths = grid
    agg = aggregate(load_cells(paths, base))
    best = best_per_target(agg, "test_macro_f1")
    assert len(best) == 2 and set(best["labels"]) == {"raw", "clean"}
    assert lower_is_better("test_log_loss") and lower_is_better("truth_ece")
    assert not lower_is_better("test_macro_f1")
    with pytest.raises(ValueError, match="best_metric"):
        best_per_target(agg, "test_nonsense")


def test_agreement_and_overlap_of_flagged_sets(grid) -> None:
    base, paths = grid
    issues_path = write_issues(base / "demo", FLAGGED)
    other = write_issues(base / "demo", ["s000", "s010"], seed=1)
    overlap = flagged_overlap([issues_path, other])
    row = overlap.iloc[0]
    assert (row["n_a"], row["n_b"], row["n_both"]) == (3, 2, 1)
    assert row["jaccard"] == pytest.approx(1 / 4)
    cells = load_cells(paths, base)
    agreement = model_agreement([issues_path], cells, base)
    assert agreement["model"].tolist() == ["cnn"]
    predictions = pd.concat(
        pd.read_parquet(p.parent / "predictions.parquet") for p in paths[:K]
    )  # the raw cells
    mine = predictions[predictions.sample_id.isin(FLAGGED)]
    disagree = (mine.pred_index != mine.label_index).mean()
    assert agreement.iloc[0]["flagged_model_disagrees"] == pytest.approx(disagree)
    assert agreement.iloc[0]["n_predicted"] == 3
    rest = predictions[~predictions.sample_id.isin(FLAGGED)]
    assert agreement.iloc[0]["unflagged_model_disagrees"] == pytest.approx(
        (rest.pred_index != rest.label_index).mean()
    )


def test_review_sheet_lists_every_flagged_sample(grid, tmp_path: Path) -> None:
    base, paths = grid
    issues_path = write_issues(base / "demo", FLAGGED)
    given = given_labels(p.parent / "predictions.parquet" for p in paths)
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


def test_write_summary_with_benchmarks_and_review_sheets(grid) -> None:
    base, paths = grid
    issues_path = write_issues(base / "demo", FLAGGED)
    cells = write_summary(
        metrics_paths=paths,
        issues_paths=[issues_path],
        targets={"OVA_OK": TARGET},
        out_html=base / "summary.html",
        out_csv=base / "summary.csv",
        out_parquet=base / "summary.parquet",
        truth=truth_frame(),
        provenance={"config_hash": "x", "report": {"costs": {"NC*": 100}}},
        benchmark_paths=write_benchmarks(base),
        benchmarks_root=base / "benchmarks",
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
