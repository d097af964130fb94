"""Shared cases of the report's tests: the report settings the schema defaults to, a small
finished grid written at its layout paths, and an HTML table reader."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core import layout
from spectragrid.core.config import load_schema
from spectragrid.core.metrics import classification_metrics
from spectragrid.data.targets import Target
from spectragrid.report.business_cost import CostTable
from spectragrid.report.cutoffs import CutoffRule


def schema_report() -> dict:
    """`report.cutoff` and `report.costs` as the config schema fills them in."""
    report = load_schema()["properties"]["report"]["properties"]
    cutoff = {name: spec["default"] for name, spec in report["cutoff"]["properties"].items()}
    return {"cutoff": cutoff, "costs": dict(report["costs"]["default"])}


def default_rule(**changes: object) -> CutoffRule:
    """The schema's cutoff rule, with `changes` applied (e.g. `rule="recall"`)."""
    return CutoffRule.from_config({**schema_report()["cutoff"], **changes})


def default_costs() -> CostTable:
    return CostTable.from_config(schema_report()["costs"])


# The grid: one dataset, target OVA_OK on channel set `all`, model cnn, seed 0, K folds,
# raw and clean labels.
DATASET = "demo"
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
FLAGGED = ["s000", "s003", "s007"]  # two truly mislabelled of four, one false alarm
EVIL_CLASS = "<script>alert(1)</script>"
EVIL_MODEL = 'm"&<>'


def fold_of(i: int) -> int:
    return (i // 5) % K


def cell_dir(work: Path, labels: str, fold: int, model: str = "cnn", seed: int = 0) -> Path:
    """A cell folder of the grid under `work` (the folder that holds results/)."""
    return work / layout.cell_dir(DATASET, labels, TARGET.name, "all", model, seed, fold, K)


def issues_file(work: Path, seed: int = 0) -> Path:
    folder = layout.issues_dir(DATASET, TARGET.name, "all", seed, K)
    return work / folder / layout.ISSUES_FILES["issues"]


def write_cell(
    work: Path,
    labels: str,
    fold: int,
    *,
    model: str = "cnn",
    classes: list[str] = CLASSES,
    card: bool = True,
    sheet: bool = True,
    flagged: frozenset[str] = frozenset(),
) -> Path:
    """One cell's predictions, metrics (and card and sheet); returns its metrics file."""
    folder = cell_dir(work, labels, fold, model)
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
    predictions.to_parquet(folder / layout.CELL_FILES["predictions"], index=False)
    keep = ~predictions["sample_id"].isin(flagged).to_numpy()
    metrics = {
        "cell": {
            "dataset": DATASET,
            "labels": labels,
            "target": TARGET.name,
            "channels": "all",
            "model": model,
            "seed": 0,
            "fold": fold,
            "k": K,
        },
        "display_name": f"{model} y=['OVA', 'OK'] c=('277', '380', '425') t=() {fold}-{K} s=0",
        "target": {"name": TARGET.name, "code": "OVA OK", "classes": classes, "members": MEMBERS},
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
    (folder / layout.CELL_FILES["metrics"]).write_text(json.dumps(metrics))
    if card:
        (folder / layout.CELL_FILES["card"]).write_text(
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
        (folder / layout.SHEET_FILES["png"]).write_bytes(b"png")
    return folder / layout.CELL_FILES["metrics"]


def write_grid(work: Path) -> tuple[Path, list[Path]]:
    """Raw and clean cells of every fold (the clean ones trained without FLAGGED; clean
    fold 0 has no card, clean fold 1 no sheet); returns results/ and the metrics files."""
    paths = [write_cell(work, "raw", f) for f in range(K)]
    paths += [
        write_cell(work, "clean", f, flagged=frozenset(FLAGGED), card=f != 0, sheet=f != 1)
        for f in range(K)
    ]
    return work / layout.RESULTS, paths


def truth_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": SAMPLE_IDS,
            "severity": [t.rstrip("0123456789") for t in TRUE],
            "type": [int(t[len(t.rstrip("0123456789")) :]) for t in TRUE],
            "full_truth": TRUE,
        }
    )


def write_issues(work: Path, flagged: list[str], seed: int = 0) -> Path:
    """The issues file of seed `seed`, flagging `flagged` (most suspicious first)."""
    path = issues_file(work, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    ).to_csv(path, index=False)
    return path


BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def cell_benchmark(work: Path, labels: str, fold: int, rule: str) -> Path:
    key = layout.results_key(
        layout.cell_dir(DATASET, labels, TARGET.name, "all", "cnn", 0, fold, K)
    )
    return work / layout.benchmark_file(key, rule)


def write_benchmarks(work: Path) -> list[Path]:
    """train/sheet benchmarks for every cell of the grid, plus two whole-dataset ones."""
    paths = []
    for labels in ("raw", "clean"):
        for fold in range(K):
            train = cell_benchmark(work, labels, fold, "train")
            sheet = cell_benchmark(work, labels, fold, "sheet")
            train.parent.mkdir(parents=True, exist_ok=True)
            train.write_text(
                BENCH_HEADER
                + f"{10 + fold}\t0:00:10\t{500 + fold}\t-\t-\t-\t1\t1\t50\t{8 + fold}\n"
                + f"{12 + fold}\t0:00:12\t{400 + fold}\t-\t-\t-\t1\t1\t50\t{9 + fold}\n"
            )
            sheet.write_text(BENCH_HEADER + "2\t0:00:02\t250\t-\t-\t-\t0\t0\t9\t1\n")
            paths += [train, sheet]
    dataset = layout.DATASET_KEY.format(dataset=DATASET)
    ingest = work / layout.benchmark_file(dataset, "ingest")
    split = work / layout.benchmark_file(dataset, "split_" + layout.SPLIT_NAME.format(seed=0, k=K))
    ingest.parent.mkdir(parents=True, exist_ok=True)
    ingest.write_text(BENCH_HEADER + "1.5\t0:00:01\t150\t-\t-\t-\t0\t0\t0\t1\n")
    split.write_text(BENCH_HEADER + "0.5\t0:00:00\tNA\t-\t-\t-\t0\t0\t0\t0\n")
    return [*paths, ingest, split]


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


class SheetTables(HTMLParser):
    """Tables by id as lists of rows (the header row first), and the number of scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.scripts = 0
        self._table: list | None = None
        self._row: list | None = None
        self._cell: list | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
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
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
