"""The finished tiny study copied, with a served model and one scored batch: what the
serving tests share (tests/workflow/test_serving*.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
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
