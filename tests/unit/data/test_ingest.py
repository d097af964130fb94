"""Ingest end to end: every row accounted for, outputs whole or absent, raw files untouched."""

from __future__ import annotations

import gzip
import json
import lzma
import pickle
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ingest_cases import CHANNELS, expect_error, ingest, ingest_with_memory_limit, sha

from spectragrid.data.clean_file import read_clean
from spectragrid.data.cleaning import REASONS
from spectragrid.data.demo import (
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
)
from spectragrid.data.raw import RawDataError
from spectragrid.data.unpickle import load_pickle_dataframe


def test_every_row_accounted_for(demo: dict) -> None:
    info, report, out = demo["info"], demo["report"], demo["out"]
    assert report["input_rows"] == info["n_rows"] == sum(info["rows"].values())
    assert report["kept"] + sum(report["dropped"].values()) == report["input_rows"]
    assert list(report["dropped"]) == list(REASONS)
    assert report["dropped"] == {
        "nan": info["dirt"]["nan"],
        "saturation": info["dirt"]["saturation"],
        "low_integral": info["dirt"]["low_integral"],
        "unknown_label": info["dirt"]["unknown_label"],
        "duplicate": info["dirt"]["duplicate"],
    }
    assert report["kept"] == info["n_samples"] - sum(
        v for k, v in info["dirt"].items() if k != "duplicate"
    )
    # keep_default_na=False: the reason "nan" is a word here, not a missing value
    dropped = pd.read_csv(out / "dropped.csv", dtype={"sample_id": str}, keep_default_na=False)
    assert list(dropped.columns) == ["sample_id", "source_file", "source_row", "reason"]
    assert len(dropped) == sum(report["dropped"].values())
    for reason in REASONS:
        ids = sorted(dropped.loc[dropped["reason"] == reason, "sample_id"])
        assert ids == info["dirt_ids"][reason]
    per_file = {f["file"]: f for f in report["files"]}
    for name, rows in info["rows"].items():
        assert per_file[name]["rows"] == rows
        assert per_file[name]["kept"] + sum(per_file[name]["dropped"].values()) == rows
    assert json.loads((out / "report.json").read_text()) == report
    assert sorted(report["unknown_labels"]) == ["?", "??", "ok?"]


def test_clean_file_content(demo: dict) -> None:
    data = read_clean(demo["out"] / "clean.parquet")
    table = data.table
    assert list(table.columns) == [
        "sample_id",
        "severity",
        "type",
        "full_truth",
        "label_raw",
        "group",
        "greffon_transmittance",
        "greffon_brix",
        "outil_id",
        "mesure_date",
        "source_file",
        "source_row",
    ]
    assert len(table) == demo["report"]["kept"]
    assert table["sample_id"].is_unique
    assert set(table["severity"]) == {"OK", "CROCHET", "VR", "NC"}
    assert {"OK - Inspecteur", "OK - SpectrAcer"} <= set(table["label_raw"])
    assert (table.loc[table["label_raw"].str.startswith("OK"), "severity"] == "OK").all()
    assert (table["full_truth"] == table["severity"] + table["type"].astype(str)).all()
    assert table["type"].dtype == np.int64
    assert table["mesure_date"].dtype.kind == "M"
    assert set(table["outil_id"]) == {"SA3-01", "SA3-02"}
    dirty = {i for k, ids in demo["info"]["dirt_ids"].items() if k != "duplicate" for i in ids}
    assert not set(table["sample_id"]) & dirty
    for ch in CHANNELS:
        assert data.spectra[ch].dtype == np.float32
        assert data.spectra[ch].shape == (len(table), 446)
    assert data.meta["wavelengths"]["380"][0] == 295.0


def test_spectra_round_trip_bit_exact_against_raw(demo: dict) -> None:
    data = read_clean(demo["out"] / "clean.parquet")
    for path in demo["raw"]:
        raw = load_pickle_dataframe(path)
        mine = data.table["source_file"] == path.name
        rows = data.table.loc[mine, "source_row"].to_numpy()
        assert data.table.loc[mine, "sample_id"].tolist() == raw.index[rows].tolist()
        for ch in CHANNELS:
            cols = [f"{ch}_{w}" for w in range(295, 741)]
            expected = raw[cols].to_numpy()[rows].astype(np.float32)
            assert data.spectra[ch][mine.to_numpy()].tobytes() == expected.tobytes()


def test_report_provenance_and_raw_untouched(demo: dict) -> None:
    report = demo["report"]
    for entry, path in zip(report["files"], demo["raw"], strict=True):
        digest, mtime = demo["before"][path]
        assert entry["sha256"] == digest == sha(path)
        assert path.stat().st_mtime_ns == mtime
        assert entry["path"] == str(path)
        assert entry["dropped_columns"] == ["sa_verdict", "sa_prob_ok", "sa_controle", "firmware"]
    assert report["channels"]["425"] == {"points": 446, "first": 295.0, "last": 740.0, "step": 1.0}
    assert report["thresholds"]["saturation"] == REFERENCE_SATURATION
    assert report["thresholds"]["min_integral"] == REFERENCE_MIN_INTEGRAL
    assert sorted(p.name for p in demo["out"].iterdir()) == [
        "clean.parquet",
        "dropped.csv",
        "report.json",
    ]


# --- errors -------------------------------------------------------------------------------


def test_same_file_twice(demo: dict, tmp_path: Path) -> None:
    expect_error(tmp_path, [demo["raw"][0], demo["raw"][0]], "listed twice")


def test_existing_outputs_survive_a_failed_run(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    ingest([demo["raw"][1]], out)
    before = {p.name: sha(p) for p in out.iterdir()}
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(RawDataError):
        ingest([demo["raw"][1], broken], out)
    assert {p.name: sha(p) for p in out.iterdir()} == before


def _hostile(name: str, folder: Path) -> Path:
    """Small files that stand for gigabytes, each in its own way."""
    path = folder / name
    if name == "declared.pkl.gz":
        # one bytes object declared 6 GiB long: the unpickler allocates before reading
        path.write_bytes(gzip.compress(b"\x80\x04\x8e" + struct.pack("<Q", 6 << 30) + bytes(4096)))
    elif name == "opcodes.pkl.xz":
        # a pickle that never ends, 6 GiB once decompressed, in about 1 MB
        body = lzma.compress(b"N0" * (8 << 20))
        path.write_bytes(lzma.compress(b"\x80\x02" + b"N0" * (8 << 20)) + body * 383)
    elif name == "zeros.pkl.xz":
        path.write_bytes(lzma.compress(bytes(16 << 20)) * 384)  # 6 GiB of zeros
    elif name == "zero.pkl":
        path.symlink_to("/dev/zero")
    elif name == "lazy.pkl":
        frame = pd.DataFrame(index=pd.RangeIndex(3_000_000_000, name="sequence"))
        path.write_bytes(pickle.dumps(frame))
    return path


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("declared.pkl.gz", "declared.pkl.gz: ran out of memory while unpickling it"),
        (
            "opcodes.pkl.xz",
            "opcodes.pkl.xz: refused: it decompresses to more than 64.0 MiB, the cap for a",
        ),
        ("zeros.pkl.xz", "zeros.pkl.xz: cannot read: the file is truncated or not a pickle"),
        ("zero.pkl", "zero.pkl: is a character device (a link to /dev/zero), not a regular"),
        ("lazy.pkl", "lazy.pkl: refused: the DataFrame has 3,000,000,000 rows and 0 columns"),
    ],
)
def test_files_that_stand_for_gigabytes_fail_in_bounded_memory(
    tmp_path: Path, name: str, said: str
) -> None:
    # before streaming and caps, such files grew the job to gigabytes (5.9 GB for the xz
    # files under a 6 GB limit) and ended in a MemoryError that named no file
    path = _hostile(name, tmp_path)
    out = tmp_path / "out"
    seen = ingest_with_memory_limit([path], out, limit_mb=1536)
    assert seen["said"].startswith(f"RawDataError: {tmp_path}/{said}"), seen["said"]
    assert seen["peak_mb"] < 500
    assert not out.exists() or not any(out.iterdir())


def test_a_memory_limit_leaves_real_files_alone(demo: dict, tmp_path: Path) -> None:
    seen = ingest_with_memory_limit(demo["raw"], tmp_path / "out", limit_mb=1536)
    assert seen["said"] == "ingested"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clean.parquet",
        "dropped.csv",
        "report.json",
    ]


# --- cleaning rules on hand-made rows --------------------------------------------------------


def test_per_file_accounting_matches_the_dropped_list(demo: dict) -> None:
    report, out = demo["report"], demo["out"]
    dropped = pd.read_csv(out / "dropped.csv", dtype={"sample_id": str}, keep_default_na=False)
    kept = read_clean(out / "clean.parquet").table
    for entry, path in zip(report["files"], demo["raw"], strict=True):
        rows = len(load_pickle_dataframe(path))
        mine = dropped.loc[dropped["source_file"] == entry["file"]]
        assert entry["rows"] == rows
        assert entry["kept"] + sum(entry["dropped"].values()) == rows
        assert mine["reason"].value_counts().to_dict() == {
            r: n for r, n in entry["dropped"].items() if n
        }
        kept_rows = kept.loc[kept["source_file"] == entry["file"], "source_row"]
        assert len(kept_rows) == entry["kept"]
        # every row of the file is kept or dropped, never both, never neither
        assert sorted([*kept_rows, *mine["source_row"]]) == list(range(rows))


def test_the_report_names_the_labels_k_folds_cannot_spread(demo: dict, tmp_path: Path) -> None:
    import json

    # 400 demo rows: the rarest full truths have a handful of samples each
    clean = pd.read_parquet(demo["out"] / "clean.parquet")
    counts = clean["full_truth"].value_counts()
    rare = sorted(counts.index[counts < 5])
    assert rare, counts
    noticed = [n.split("'")[1] for n in demo["report"]["notices"] if " has " in n]
    assert sorted(noticed) == rare
    first = next(n for n in demo["report"]["notices"] if n.startswith(f"full truth '{rare[0]}'"))
    assert f"has {counts[rare[0]]} sample" in first and "fewer than splits.k = 5" in first
    written = json.loads((demo["out"] / "report.json").read_text())
    assert written["notices"] == demo["report"]["notices"]
    # with 3 folds, only the labels with fewer than 3 samples are named
    report = ingest(demo["raw"], tmp_path / "k3", k=3)
    assert [n.split("'")[1] for n in report["notices"] if " has " in n] == [
        v for v in noticed if counts[v] < 3
    ]
