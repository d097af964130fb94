"""Fixtures of the data stage's tests: demo raw files ingested once, and a small frame."""

from __future__ import annotations

import signal
from pathlib import Path

import pandas as pd
import pytest
from ingest_cases import ingest, sha

from spectragrid.data.demo import (
    generate_demo,
)
from spectragrid.data.unpickle import load_pickle_dataframe


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ingest")
    info = generate_demo(root / "demo", n_samples=400, seed=0)
    raw = [Path(p) for p in info["raw_files"]]
    before = {p: (sha(p), p.stat().st_mtime_ns) for p in raw}
    report = ingest(raw, root / "out")
    return {"info": info, "raw": raw, "before": before, "report": report, "out": root / "out"}


@pytest.fixture()
def small(demo: dict, tmp_path: Path) -> pd.DataFrame:
    """First 40 rows of the first demo file, to be broken and written by each test."""
    df = load_pickle_dataframe(demo["raw"][0]).iloc[:40].copy()
    return df[~df.index.duplicated()]


class Hung(BaseException):
    """Raised by `no_hang` when a test blocks: a BaseException, so no handler swallows it."""


@pytest.fixture()
def no_hang():
    """Fail a test that blocks (opening a FIFO waits for a writer) instead of hanging the run."""

    def alarm(signum, frame):
        raise Hung("blocked for 30 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(30)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
