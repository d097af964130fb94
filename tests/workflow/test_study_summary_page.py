"""The summary page, a result sheet and a review sheet in a real headless Chromium, offline.

The study is faked (cell outputs written directly, no training) so the test
takes seconds: the page renders, the console stays clean, sorting and
filtering work, no request leaves the results folder, and labels and column
names that look like HTML show as text. A study of 1,000 cells checks the
page's size and that its per-cell tables, kept beside it, load when opened.
A screenshot is kept in test-artifacts/summary.png. `snakemake --report` on
the finished tiny study is checked at the end (slow).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pytest
from tiny_study import ROOT, tiny_config

from spectragrid.core import layout
from spectragrid.core.config import validate
from spectragrid.core.metrics import classification_metrics
from spectragrid.data.targets import Target
from spectragrid.report.sheet import build_sheet
from spectragrid.report.summary import write_summary
from spectragrid.train.output_checksums import MANIFEST_KEY, checksums

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # No network at all: anything that tried to leave would fail, and be logged.
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
# User strings that would run or fetch something if they were not escaped.
EVIL_CLASS = '<img src="x" onerror="window.__pwned=1">'
EVIL_COLUMN = "<script>window.__pwned=2</script>"
EVIL_FILE = "<b>campaign</b>.pkl"
K = 3
N = 90


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def chrome_available() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = (
        f"{CHROMIUM} or {CHROMEDRIVER} is missing: run scripts/install_browser.sh "
        "(Debian packages chromium and chromium-driver)"
    )
    if _in_ci():
        pytest.fail(message + " (CI is set: the browser test may not be skipped)")
    pytest.skip(message)


def _png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 220, 240)).save(buffer, format="PNG")
    return buffer.getvalue()


TARGETS = {
    "OVA_OK": Target("OVA_OK", "OVA OK", ("OK", "rest"), (("OK0",), ("CROCHET0", "VR2", "NC4"))),
    "AVA_IN": Target(
        "AVA_IN", "AVA IN", ("OK", EVIL_CLASS, "VR"), (("OK0",), ("CROCHET0", "NC4"), ("VR2",))
    ),
}
TRUTH = [("OK0", "OK0", "CROCHET0", "VR2", "NC4")[i % 5] for i in range(N)]
SAMPLE_IDS = [f"id{i:03d}" for i in range(N)]


def _write_cell(work: Path, labels: str, target: Target, model: str, fold: int, k: int = K) -> Path:
    key = {
        "dataset": "demo",
        "labels": labels,
        "target": target.name,
        "channels": "all",
        "model": model,
        "seed": 0,
        "fold": fold,
        "k": k,
    }
    folder = work / layout.cell_dir(**key)
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / file for name, file in layout.CELL_FILES.items()}
    rows = [i for i in range(N) if i % k == fold]
    ids = [SAMPLE_IDS[i] for i in rows]
    truth = [TRUTH[i] for i in rows]
    y = target.encode(pd.Series(truth))
    rng = np.random.default_rng(fold * 7 + len(model) + (labels == "clean"))
    logits = rng.normal(size=(len(rows), target.n_classes))
    logits[np.arange(len(rows)), y] += 1.2 + 0.3 * (labels == "clean")
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predictions = pd.DataFrame(
        {
            "sample_id": ids,
            "full_truth": truth,
            "label": np.array(target.classes, dtype=object)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
            "flagged": np.zeros(len(rows), bool),
        }
    )
    for j, name in enumerate(target.classes):
        predictions[f"prob_{name}"] = proba[:, j]
    predictions.to_parquet(files["predictions"], index=False)
    metrics = {
        "cell": key,
        "display_name": f"{model} y={target.code} c=('277', '380', '425') {fold}-{k} s=0",
        "target": target.as_dict(),
        "n_train": 50,
        "n_val": 10,
        "n_test": len(rows),
        "n_removed_flagged": 2 if labels == "clean" else 0,
        "best_epoch": 2,
        "epochs_run": 3,
        "test": classification_metrics(y, proba),
        "test_unflagged": classification_metrics(y, proba) if labels == "clean" else None,
        "onnx_parity": {"max_abs_diff": 1e-8, "argmax_agree": 1.0},
    }
    card = {
        "parameters": 1000,
        "flops_per_sample": 5000,
        "seconds_per_epoch": 0.1,
        "train_samples_per_second": 500.0,
        "wall_seconds": 1.5,
        "device": "cpu",
        "threads": 1,
    }
    files["card"].write_text(json.dumps(card))
    pd.DataFrame(
        {"epoch": [0, 1, 2], "val_loss": [1.0, 0.8, 0.7], "val_accuracy": [0.4, 0.6, 0.7]}
    ).to_csv(files["history"], index=False)
    (folder / layout.SHEET_FILES["png"]).write_bytes(_png())
    files["onnx"].write_bytes(b"onnx")
    files["checkpoint"].write_bytes(b"ckpt")
    # Written last and holding the others' sha256, as a trained cell's is.
    metrics[MANIFEST_KEY] = checksums(folder)
    files["metrics"].write_text(json.dumps(metrics))
    cell_key = layout.results_key(layout.cell_dir(**key))
    train, sheet = (work / layout.benchmark_file(cell_key, job) for job in ("train", "sheet"))
    train.parent.mkdir(parents=True, exist_ok=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    train.write_text(header + f"{3 + fold}.5\t0:00:03\t512.0\t-\t-\t-\t1\t2\t90\t3\n")
    sheet.write_text(header + "2.0\t0:00:02\t250.0\t-\t-\t-\t0\t1\t80\t1.5\n")
    return files["metrics"]


def _write_issues(work: Path, target: Target, k: int = K) -> Path:
    path = (
        work / layout.issues_dir("demo", target.name, "all", 0, k) / layout.ISSUES_FILES["issues"]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    flagged = SAMPLE_IDS[:4]
    pd.DataFrame(
        {
            "sample_id": flagged,
            "given_label": [target.classes[0]] * 4,
            "suggested_label": [target.classes[1]] * 4,
            "label_quality": [0.01, 0.02, 0.03, 0.04],
            "rank": [1, 2, 3, 4],
        }
    ).to_csv(path, index=False)
    return path


def build_fake_study(work: Path, models: tuple[str, ...] = ("cnn", "small"), k: int = K) -> Path:
    """results/ under `work` with 2 targets x `models` x raw/clean x `k` folds, issues and
    benchmarks; returns summary.html."""
    metrics = [
        _write_cell(work, labels, target, model, fold, k)
        for target in TARGETS.values()
        for labels in ("raw", "clean")
        for model in models
        for fold in range(k)
    ]
    issues = [_write_issues(work, t, k) for t in TARGETS.values()]
    truth = pd.DataFrame({"sample_id": SAMPLE_IDS, "full_truth": TRUTH})
    cleaning = {
        "input_rows": N + 4,
        "kept": N,
        "dropped": {"saturation": 3, EVIL_COLUMN: 1},
        "files": [
            {
                "file": EVIL_FILE,
                "sha256": "ab" * 32,
                "rows": N + 4,
                "kept": N,
                "dropped_columns": ["sa_verdict", EVIL_COLUMN],
            },
        ],
    }
    write_summary(
        metrics_paths=metrics,
        issues_paths=issues,
        targets=TARGETS,
        out_html=work / layout.SUMMARY_HTML,
        out_csv=work / layout.SUMMARY_CSV,
        out_parquet=work / layout.SUMMARY_PARQUET,
        truth=truth,
        cleaning_report=cleaning,
        provenance={"config_hash": "cafe", "versions": {"spectragrid": "0.1.0"}},
        benchmark_paths=sorted((work / layout.BENCHMARKS).rglob("*.tsv")),
        benchmarks_root=work / layout.BENCHMARKS,
        review_dir=work / layout.SUMMARY_FILES,
    )
    return work / layout.SUMMARY_HTML


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return build_fake_study(tmp_path_factory.mktemp("fake"))


@pytest.fixture(scope="module")
def browser(chrome_available, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    # Selenium Manager must never look for a driver or a browser online.
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chrome-profile')}")
    options.add_argument("--window-size=1400,1000")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") != "Network.requestWillBeSent":
            continue
        # The browser's own pages (a new-tab page it prepares in the background) load
        # chrome:// resources from its binary: not the page's requests, never the network.
        if message["params"].get("documentURL", "").startswith("chrome://"):
            continue
        urls.append(message["params"]["request"]["url"])
    return urls


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def assert_stays_local(urls: list[str], results: Path) -> None:
    assert urls, "the performance log recorded no request at all"
    root = results.resolve()
    for url in urls:
        if url.startswith("data:"):
            continue
        parsed = urlparse(url)
        assert parsed.scheme == "file", f"a request left the file: {url}"
        assert Path(unquote(parsed.path)).resolve().is_relative_to(root), url


def column_values(driver, table_id: str, header: str) -> list[str]:
    return driver.execute_script(
        """
        const table = document.getElementById(arguments[0]);
        const heads = Array.from(table.tHead.rows[0].cells).map(c => c.textContent.trim());
        const col = heads.indexOf(arguments[1]);
        return Array.from(table.tBodies[0].rows)
          .filter(r => r.style.display !== "none")
          .map(r => r.cells[col].getAttribute("data-v") ?? r.cells[col].textContent.trim());
        """,
        table_id,
        header,
    )


def test_summary_page_in_headless_chromium(browser, study: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, study)
    assert browser.title == "spectragrid summary"
    assert browser.find_element(By.TAG_NAME, "h1").text.startswith("spectragrid summary")
    for anchor in (
        "glance",
        "best",
        "grid",
        "raw-vs-clean",
        "errors",
        "cells",
        "issues",
        "cleaning",
        "cost",
        "provenance",
    ):
        assert browser.find_elements(By.ID, anchor), anchor
    images = browser.execute_script(
        "return Array.from(document.images).filter(i => i.src.startsWith('data:'))"
        ".map(i => [i.complete, i.naturalWidth])"
    )
    assert len(images) >= 4 and all(done and width > 0 for done, width in images)

    # sorting reorders the rows, both ways
    before = column_values(browser, "cells-table", "accuracy")
    header = browser.find_element(By.XPATH, "//table[@id='cells-table']//th[text()='accuracy']")
    header.click()
    ascending = [float(v) for v in column_values(browser, "cells-table", "accuracy")]
    assert ascending == sorted(ascending) and ascending != [float(v) for v in before]
    header.click()
    descending = [float(v) for v in column_values(browser, "cells-table", "accuracy")]
    assert descending == sorted(descending, reverse=True)

    # filtering hides rows: the text box, then a drop-down on top of it
    total = len(column_values(browser, "cells-table", "labels"))
    box = browser.find_element(By.CSS_SELECTOR, "input[data-table='cells-table']")
    box.send_keys("small")
    shown = column_values(browser, "cells-table", "model")
    assert 0 < len(shown) < total and set(shown) == {"small"}
    assert browser.find_element(By.ID, "cells-table-count").text == f"{len(shown)} of {total} rows"
    labels = browser.find_element(
        By.CSS_SELECTOR, "div.filters[data-for='cells-table'] select[aria-label='filter by labels']"
    )
    Select(labels).select_by_visible_text("clean")
    assert set(column_values(browser, "cells-table", "labels")) == {"clean"}
    assert len(column_values(browser, "cells-table", "labels")) == len(shown) // 2
    box.clear()
    Select(labels).select_by_index(0)
    box.send_keys(" ")  # an input event with an empty query shows everything again
    assert len(column_values(browser, "cells-table", "labels")) == total

    # user strings are text, not markup
    body = browser.find_element(By.TAG_NAME, "body").text
    for evil in (EVIL_CLASS, EVIL_COLUMN, EVIL_FILE):
        assert evil in body, evil
    assert browser.execute_script("return window.__pwned === undefined")

    assert console_errors(browser) == []
    assert_stays_local(requested_urls(browser), study.parent)

    ARTIFACTS.mkdir(exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 100, 12000))
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / "summary.png"))
    browser.set_window_size(1400, 1000)
    assert (ARTIFACTS / "summary.png").stat().st_size > 10_000


# 2 targets x 50 models x raw/clean x 5 folds = 1,000 cells.
LARGE_MODELS = tuple(f"m{i:02d}" for i in range(50))
LARGE_K = 5
MAX_PAGE_BYTES = 3 * 2**20


@pytest.fixture(scope="module")
def large_study(tmp_path_factory) -> Path:
    return build_fake_study(tmp_path_factory.mktemp("large"), LARGE_MODELS, LARGE_K)


def open_part(driver, part_id: str) -> int:
    """Open the section of a lazily loaded part; the number of rows it brought."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    details = driver.find_element(By.CSS_SELECTOR, f"details[data-part='{part_id}']")
    details.find_element(By.TAG_NAME, "summary").click()
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script(
            "const t = document.getElementById(arguments[0]);"
            "return t !== null && t.tBodies[0].rows.length > 0",
            part_id,
        )
    )
    return driver.execute_script(
        "return document.getElementById(arguments[0]).tBodies[0].rows.length", part_id
    )


def test_summary_of_1000_cells_opens_from_disk_and_loads_cells_on_demand(
    browser, large_study: Path
) -> None:
    from selenium.webdriver.common.by import By

    n_cells = 2 * len(LARGE_MODELS) * 2 * LARGE_K
    summary = pd.read_csv(large_study.parent / Path(layout.SUMMARY_CSV).name)
    assert len(summary) == n_cells == 1000
    assert large_study.stat().st_size <= MAX_PAGE_BYTES

    open_page(browser, large_study)
    # the summary tables are in the page; the per-cell ones only once asked for
    assert len(column_values(browser, "grid-table", "labels")) == n_cells // LARGE_K
    pairs = column_values(browser, "raw-vs-clean-table", "model")
    assert set(pairs) == set(LARGE_MODELS) and len(pairs) % (2 * len(LARGE_MODELS)) == 0
    assert not browser.find_elements(By.ID, "cells-table")
    assert not browser.find_elements(By.ID, "cost-table")

    assert open_part(browser, "cells-table") == n_cells
    # the rows are the study's cells: every accuracy of summary.csv, and nothing else
    shown = sorted(float(v) for v in column_values(browser, "cells-table", "accuracy"))
    assert shown == pytest.approx(sorted(summary["test_accuracy"]))
    # the loaded table sorts and filters like the inline ones
    header = browser.find_element(By.XPATH, "//table[@id='cells-table']//th[text()='accuracy']")
    header.click()
    ascending = [float(v) for v in column_values(browser, "cells-table", "accuracy")]
    assert ascending == sorted(ascending)
    box = browser.find_element(By.CSS_SELECTOR, "input[data-table='cells-table']")
    box.send_keys("m07")
    assert set(column_values(browser, "cells-table", "model")) == {"m07"}
    assert browser.find_element(By.ID, "cells-table-count").text == f"20 of {n_cells} rows"
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#cells-table a')).map(a => a.href)"
    )
    assert links and all(Path(unquote(urlparse(u).path)).exists() for u in links[:50])

    assert open_part(browser, "cost-table") == n_cells
    assert set(column_values(browser, "cost-table", "device")) == {"cpu"}
    # user strings that look like markup stay text in the loaded parts too
    assert browser.execute_script("return window.__pwned === undefined")
    assert console_errors(browser) == []
    urls = requested_urls(browser)
    assert sum("/summary_files/parts/" in u for u in urls) == 2
    assert_stays_local(urls, large_study.parent)


def test_sheet_and_review_pages_in_headless_chromium(browser, study: Path) -> None:
    from selenium.webdriver.common.by import By

    work = study.parent.parent
    cell = work / layout.cell_dir("demo", "raw", "AVA_IN", "all", "cnn", 0, 0, K)
    files = {name: cell / file for name, file in layout.CELL_FILES.items()}
    report = validate(tiny_config())["report"]
    build_sheet(
        files["predictions"],
        files["metrics"],
        files["history"],
        files["card"],
        cell / "sheet_real.png",
        cell / layout.SHEET_FILES["html"],
        cutoff=report["cutoff"],
        costs=report["costs"],
    )
    open_page(browser, cell / layout.SHEET_FILES["html"])
    body = browser.find_element(By.TAG_NAME, "body").text
    assert EVIL_CLASS in body
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.execute_script("return document.images[0].naturalWidth") > 1000
    assert console_errors(browser) == []
    assert_stays_local(requested_urls(browser), study.parent)

    reviews = sorted((work / layout.SUMMARY_FILES).glob("*.html"))
    assert len(reviews) == len(TARGETS)
    for review in reviews:
        open_page(browser, review)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#review-table tbody tr")) == 4
        assert browser.execute_script("return window.__pwned === undefined")
        assert console_errors(browser) == []
        assert_stays_local(requested_urls(browser), study.parent)


def test_summary_links_point_at_files_beside_it(study: Path) -> None:
    page = study.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    work = study.parent.parent
    summary = pd.read_csv(work / layout.SUMMARY_CSV)
    assert len(summary) == 2 * 2 * 2 * K
    assert set(layout.CELL_COORDINATES) <= set(summary.columns)
    assert summary["train_seconds"].notna().all() and summary["train_max_rss_mb"].eq(512).all()
    for column in ("sheet", "onnx", "predictions"):
        for relative in summary[column]:
            assert (study.parent / relative).exists(), relative
    assert pd.read_parquet(work / layout.SUMMARY_PARQUET).shape == summary.shape


@pytest.mark.slow
def test_snakemake_report_holds_the_sheets_and_the_summary(finished_tiny_study, tmp_path) -> None:
    work = finished_tiny_study
    results = work.path / layout.RESULTS
    assert (work.path / layout.SUMMARY_FILES).is_dir()
    sheets = sorted(results.rglob(layout.SHEET_FILES["html"]))
    assert len(sheets) == 12  # 2 models x 3 folds x raw/clean
    out = tmp_path / "report.zip"
    work.snakemake("--report", str(out))
    with zipfile.ZipFile(out) as archive:
        names = archive.namelist()
        page = archive.read(next(n for n in names if n.endswith("/report.html"))).decode()
    summary_files = (Path(layout.SUMMARY_HTML).name, Path(layout.SUMMARY_CSV).name)
    for wanted in (*summary_files, *layout.SHEET_FILES.values()):
        assert any(n.endswith(wanted) for n in names), wanted
    for sheet in layout.SHEET_FILES.values():
        assert sum(n.endswith(sheet) for n in names) == len(sheets)
    assert any(n.endswith(".html") and "issues_OVA_OK_all_s0_k3" in n for n in names)
    # every caption rendered whole: no placeholder left empty, no markup error
    assert "System Message" not in page
    assert "one of\\n3 folds" in page or "one of 3 folds" in page


@pytest.mark.slow
def test_html_like_class_names_from_a_real_study_show_as_text(browser, tmp_path) -> None:
    """The whole workflow, with a user-defined target whose class names are markup."""
    from selenium.webdriver.common.by import By
    from tiny_study import Workdir, tiny_config

    defect = "defect & <b>bold</b>"
    config = tiny_config()
    config["targets"] = {
        "CUSTOM": {
            "column": "severity",
            "classes": {EVIL_CLASS: ["OK"], defect: ["CROCHET", "VR", "NC"]},
        }
    }
    config["grid"] = {"models": ["small"], "targets": ["CUSTOM"], "channel_sets": ["all"]}
    config["label_issues"] = {"enabled": False}
    work = Workdir(tmp_path)
    work.write_config(config)
    work.snakemake()
    results = tmp_path / layout.RESULTS
    cell = tmp_path / layout.cell_dir("demo", "raw", "CUSTOM", "all", "small", 0, 0, 3)
    metrics = json.loads((cell / layout.CELL_FILES["metrics"]).read_text())
    assert metrics["target"]["classes"] == [EVIL_CLASS, defect]
    for page in (tmp_path / layout.SUMMARY_HTML, cell / layout.SHEET_FILES["html"]):
        open_page(browser, page)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert EVIL_CLASS in body and defect in body, page
        assert browser.execute_script("return window.__pwned === undefined"), page
        assert console_errors(browser) == [], page
        assert_stays_local(requested_urls(browser), results)
