"""Helpers shared by the tests of the raw reader, the cleaning rules and ingest."""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
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
        "k": 5,
        "grouped": True,
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


_LIMITED = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from ingest_cases import ingest
raw, out = [Path(p) for p in json.loads(sys.argv[2])], Path(sys.argv[3])
try:
    ingest(raw, out)
    said = "ingested"
except Exception as err:
    said = f"{type(err).__name__}: {err}"
except BaseException as err:
    said = f"ESCAPED {type(err).__name__}: {err}"
# VmHWM is this program's own peak: ru_maxrss would carry over the size of the
# forked test process that started it
status = Path("/proc/self/status").read_text().splitlines()
peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) >> 10
print(json.dumps({"said": said, "peak_mb": peak_mb}))
"""


def ingest_with_memory_limit(raw_files: list[Path], out: Path, limit_mb: int = 1536) -> dict:
    """`ingest` in a child process whose address space is capped at `limit_mb`.

    Returns what it said (the error, or "ingested") and its peak resident memory in MB.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _LIMITED,
            str(Path(__file__).parent),
            json.dumps([str(p) for p in raw_files]),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
