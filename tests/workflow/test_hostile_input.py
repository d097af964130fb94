"""Hostile raw files, configs and label patches through the real snakemake.

Each case runs snakemake (and so its ingest job) in a process whose address
space is capped at 1.5 GB, and checks: the run fails with a message naming
the file and what is wrong with it, nothing that a payload would have done
happened (no marker file, no file read through a time zone), the peak
resident memory of the whole process tree stayed far below the cap, and
nothing that looks like an output is left under results/.
"""

from __future__ import annotations

import json
import lzma
import os
import pickle
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dateutil.tz import tzfile
from tiny_study import SNAKEMAKE, Workdir, tiny_config

from spectragrid.core import layout

pytestmark = pytest.mark.slow

LIMIT_MB = 1536
# snakemake and a job each take 150 to 250 MB here; before the fixes the bomb and
# /dev/zero cases grew the ingest job to the cap (5.9 GB under a 6 GB cap)
PEAK_BOUND_MB = 700

_LIMITED = """
import json, resource, subprocess, sys, time
limit = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
started = time.perf_counter()
proc = subprocess.run(sys.argv[3:], capture_output=True, text=True, timeout=float(sys.argv[2]))
print(json.dumps({
    "returncode": proc.returncode,
    "stdout": proc.stdout,
    "stderr": proc.stderr,
    "seconds": time.perf_counter() - started,
    "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10,
}))
"""


def _snakemake_limited(work: Workdir, *args: str, timeout: float = 300) -> dict:
    """snakemake (and the jobs it starts) under an address-space cap of LIMIT_MB.

    Returns its exit code, output, wall time and the peak resident memory of
    the largest process of its tree.
    """
    command = [*SNAKEMAKE, "--cores", "2", *args]
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED, str(LIMIT_MB), str(timeout), *command],
        cwd=work.path,
        capture_output=True,
        text=True,
        timeout=timeout + 60,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _user_config(raw: list[str]) -> dict:
    config = tiny_config()
    del config["dataset"]["demo"]
    config["dataset"].update(name="mine", raw=raw, truth=None)
    return config


class _Payload:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _frame_with(value) -> pd.DataFrame:
    return pd.DataFrame({"sequence": ["23-000001"], "note": pd.Series([value], dtype=object)})


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _secret(folder: Path) -> Path:
    secret = folder / "secret.txt"
    secret.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\n")
    return secret


def _bomb(path: Path) -> None:
    # a pickle that never ends: 6 GiB once decompressed, in about 1 MB of xz
    body = lzma.compress(b"N0" * (8 << 20))
    path.write_bytes(lzma.compress(b"\x80\x02" + b"N0" * (8 << 20)) + body * 383)


def _socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))  # the socket file stays once closed
    server.close()


# name -> (how to make it in the raw folder, given the folder and the marker path;
#          what the ingest job's message says after the file's path)
_CASES: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    # importing numpy.f2py.__main__ runs f2py's command line, which exits the job
    "f2py.pkl": (
        lambda raw, marker: _write(raw / "f2py.pkl", b"\x80\x04cnumpy.f2py.__main__\nX\n."),
        "refused to load: the pickle asks for numpy.f2py.__main__.X, which is not "
        "pandas/numpy data",
    ),
    "pyarrow_tests.pkl": (
        lambda raw, marker: _write(
            raw / "pyarrow_tests.pkl", b"\x80\x04cpyarrow.tests\nread_record_batch\n."
        ),
        "refused to load: the pickle asks for pyarrow.tests.read_record_batch",
    ),
    "runs_code.pkl.xz": (
        lambda raw, marker: _write(
            raw / "runs_code.pkl.xz",
            lzma.compress(pickle.dumps(_frame_with(_Payload(os.system, f"touch {marker}")))),
        ),
        "refused to load: the pickle asks for os.system, which is not pandas/numpy data",
    ),
    "tzfile_fifo.pkl": (
        lambda raw, marker: _write(
            raw / "tzfile_fifo.pkl",
            pickle.dumps(_frame_with(_Payload(tzfile, str(_fifo(raw / "zone"))))),
        ),
        f"refused to load: the pickle asks for {tzfile.__module__}.tzfile, which opens the "
        "file named in its arguments",
    ),
    "zone_path.pkl": (
        lambda raw, marker: _write(
            raw / "zone_path.pkl",
            pickle.dumps(
                _frame_with(_Payload(pd.DatetimeTZDtype, "ns", f"dateutil/{_secret(raw)}"))
            ),
        ),
        "refused to load: the pickle asks for dateutil.tz.gettz(",
    ),
    "bomb.pkl.xz": (
        lambda raw, marker: _bomb(raw / "bomb.pkl.xz"),
        "refused: it decompresses to more than 64.0 MiB, the cap for a 966.0 KiB xz file "
        "(32 times its size, at least 64.0 MiB); a likely decompression bomb",
    ),
    "zero.pkl": (
        lambda raw, marker: (raw / "zero.pkl").symlink_to("/dev/zero"),
        "is a character device (a link to /dev/zero), not a regular pickle file",
    ),
    "fifo.pkl": (
        lambda raw, marker: os.mkfifo(raw / "fifo.pkl"),
        "is a named pipe (FIFO), not a regular pickle file",
    ),
    "folder.pkl": (
        lambda raw, marker: (raw / "folder.pkl").mkdir(),
        "is a directory, not a regular pickle file",
    ),
    "socket.pkl": (
        lambda raw, marker: _socket(raw / "socket.pkl"),
        "is a socket, not a regular pickle file",
    ),
}


@pytest.mark.parametrize("name", list(_CASES))
def test_a_hostile_raw_file_fails_ingest_naming_it_in_bounded_memory(
    tmp_path: Path, name: str
) -> None:
    work = Workdir(tmp_path / "work")
    raw = work.path / "raw"
    raw.mkdir()
    marker = tmp_path / "payload_ran"
    make, said = _CASES[name]
    make(raw, marker)
    work.write_config(_user_config([f"raw/{name}"]))

    run = _snakemake_limited(work, layout.clean_file("mine"))

    assert run["returncode"] != 0
    assert "Error in rule ingest" in run["stderr"]
    assert "MissingOutputException" not in run["stderr"]
    (line,) = [ln for ln in run["stderr"].splitlines() if ln.startswith("spectragrid: ")]
    assert line.startswith(("spectragrid: RawDataError: ", "spectragrid: UnsafePickleError: "))
    assert f"raw/{name}: {said}" in line
    assert "SECRETHASH" not in run["stderr"] + run["stdout"]
    assert not marker.exists()
    assert run["peak_mb"] < PEAK_BOUND_MB, run["peak_mb"]
    # nothing that looks like an output, whole or half-written: only the job's log
    results = work.path / layout.RESULTS
    # (and the raw files' digests, for a regular file that was hashed to plan the run)
    cache = work.path / layout.RAW_DIGEST_CACHE
    left = sorted(
        str(p.relative_to(results)) for p in results.rglob("*") if p.is_file() and p != cache
    )
    assert left == [str(Path(layout.log_file("mine", "ingest")).relative_to(layout.RESULTS))]


def _nested_anchors(levels: int) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "".join(f"  {line}\n" for line in lines)


@pytest.mark.parametrize("case", ["nested_anchors", "long_value"])
def test_a_hostile_config_stops_snakemake_fast_with_a_short_message(
    tmp_path: Path, case: str
) -> None:
    work = Workdir(tmp_path)
    config = tiny_config()
    if case == "nested_anchors":
        # about 1 KB of YAML for 9**9 (387 million) values under dataset.name
        text = yaml.safe_dump(config, sort_keys=False).replace("  name: demo\n", "  name: *l9\n")
        (work.path / "config" / "config.yaml").write_text(
            "x_anchors:\n" + _nested_anchors(9) + text
        )
        expected = (
            "dataset.name.8: the config holds more than 100,000 values, counting each YAML "
            "alias (*name) as a copy of its anchor"
        )
    else:
        config["splits"]["k"] = "k" * 1_000_000
        work.write_config(config)
        expected = "splits.k: 'kkkk"

    started = time.perf_counter()
    run = _snakemake_limited(work, "-n", timeout=120)

    assert run["returncode"] != 0
    said = run["stdout"] + run["stderr"]
    assert "config is invalid:" in said
    (line,) = [ln for ln in said.splitlines() if ln.startswith(f"  - {expected}")]
    assert len(line) < 500
    assert len(said) < 20_000
    assert time.perf_counter() - started < 60
    assert run["peak_mb"] < PEAK_BOUND_MB, run["peak_mb"]
    assert not (work.path / layout.RESULTS).exists()


def _patch_case(folder: Path, name: str) -> Path:
    path = folder / name
    if name == "fifo.csv":
        os.mkfifo(path)
    elif name == "folder.csv":
        path.mkdir()
    elif name == "shadow":
        path.write_text("root:$6$SECRETHASH:19000:0:99999:7:::\ndaemon:*:19000::::::\n")
    return path


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("fifo.csv", "patches/fifo.csv: is a named pipe (FIFO), not a regular CSV file"),
        ("folder.csv", "patches/folder.csv: is a directory, not a regular CSV file"),
        ("missing.csv", "patches/missing.csv does not exist"),
        (
            "shadow",
            "patches/shadow line 1: expected a CSV header naming the columns sample_id, "
            "corrected_label",
        ),
    ],
)
def test_a_label_patch_that_is_not_a_patch_file_stops_snakemake(
    tmp_path: Path, name: str, said: str
) -> None:
    work = Workdir(tmp_path)
    (work.path / "patches").mkdir()
    _patch_case(work.path / "patches", name)
    config = tiny_config()
    config["dataset"]["label_patch"] = f"patches/{name}"
    work.write_config(config)

    run = _snakemake_limited(work, "-n", timeout=120)

    assert run["returncode"] != 0
    output = run["stdout"] + run["stderr"]
    assert f"dataset.label_patch: {said}" in output
    assert "SECRETHASH" not in output and "daemon" not in output
    assert not (work.path / layout.RESULTS).exists()


FORMULA_IDS = [
    '=HYPERLINK("http://example.invalid/","open me")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
]


def test_sample_ids_a_spreadsheet_would_run_are_written_as_text(tmp_path: Path) -> None:
    """dropped.csv, which users open to see what cleaning removed, quotes formula-like ids."""
    from spectragrid.data.demo import generate_demo
    from spectragrid.data.unpickle import load_pickle_dataframe

    demo = generate_demo(tmp_path / "demo", n_samples=300, seed=0)
    frame = load_pickle_dataframe(Path(demo["raw_files"][0]))
    frame = frame[~frame.index.duplicated()].iloc[:60].copy()
    ids = list(frame.index)
    ids[: len(FORMULA_IDS)] = FORMULA_IDS
    frame.index = pd.Index(ids, name=frame.index.name)
    # saturate those rows so that cleaning drops them and lists them
    saturated = [c for c in frame.columns if str(c).startswith("277_")]
    frame.loc[FORMULA_IDS, saturated] = 60_000.0
    work = Workdir(tmp_path / "work")
    (work.path / "raw").mkdir()
    frame.to_pickle(work.path / "raw" / "campaign.pkl")
    work.write_config(_user_config(["raw/campaign.pkl"]))

    work.snakemake(layout.clean_file("mine"))

    dropped = work.path / layout.DATASET_DIR.format(dataset="mine") / "dropped.csv"
    import csv

    rows = list(csv.DictReader(dropped.open(newline="")))
    written = {row["sample_id"] for row in rows}
    assert {"'" + value for value in FORMULA_IDS} <= written
    assert not any(value.startswith(("=", "+", "-", "@")) for value in written)
