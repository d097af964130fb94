"""Helpers shared by the tests of the raw reader, the cleaning rules and ingest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from spectragrid.data.demo import (
    DEMO_COLUMNS,
    DEMO_LABEL_MAP,
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
)
from spectragrid.data.ingest import run_ingest
from spectragrid.data.raw import RawDataError

CHANNELS = ["277", "380", "425"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ingest(raw_files: list[Path], out: Path, **overrides) -> dict:
    kwargs = {
        "columns": DEMO_COLUMNS,
        "channels": CHANNELS,
        "label_map": DEMO_LABEL_MAP,
        "saturation": REFERENCE_SATURATION,
        "min_integral": REFERENCE_MIN_INTEGRAL,
    }
    kwargs.update(overrides)
    return run_ingest(
        raw_files, out / "clean.parquet", out / "report.json", out / "dropped.csv", **kwargs
    )


def expect_error(tmp_path: Path, raw_files: list[Path], match: str, error=RawDataError) -> str:
    out = tmp_path / "out"
    with pytest.raises(error, match=match) as info:
        ingest(raw_files, out)
    assert not out.exists() or not any(out.iterdir()), "outputs written despite the error"
    return str(info.value)


def save(df: pd.DataFrame, path: Path) -> Path:
    df.to_pickle(path)
    return path
