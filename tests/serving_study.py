"""The finished tiny study copied, with a served model and one scored batch: what the
serving tests share (tests/workflow/test_serving*.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout
from spectragrid.data.unpickle import load_pickle_dataframe

BATCH = "demo_again"


def copy_finished(finished: Workdir, path: Path) -> Workdir:
    """A fresh Workdir with the finished study's outputs and Snakemake's records (times kept)."""
    work = Workdir(path)
    for folder in (layout.RESULTS, "resources", ".snakemake/metadata"):
        shutil.copytree(finished.path / folder, path / folder)
    return work


def serving_config() -> dict:
    config = tiny_config()
    config["predict"] = {"batches": {BATCH: list(layout.demo_raw_files())}}
    return config


def demo_frame(work: Workdir, campaign: int = 0) -> pd.DataFrame:
    """One demo campaign's raw DataFrame (read with the allow-listing unpickler)."""
    return load_pickle_dataframe(work.path / layout.demo_raw_files()[campaign])


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=True).encode()


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@contextmanager
def chromium(profile: Path) -> Iterator:
    """Headless Chromium driven by selenium; skips (fails in CI) where it is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        message = f"{CHROMIUM} or {CHROMEDRIVER} is missing: run scripts/install_browser.sh"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument("--window-size=1300,1100")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def artifacts(tmp_path: Path) -> Path:
    """Where screenshots go: $SPECTRAGRID_TEST_ARTIFACTS, else the test's folder."""
    folder = Path(os.environ.get("SPECTRAGRID_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
