from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.data.clean_file import read_clean
from spectragrid.data.cleaning import REASONS, clean
from spectragrid.data.demo import (
    DEMO_COLUMNS,
    DEMO_LABEL_MAP,
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
    generate_demo,
)
from spectragrid.data.ingest import run_ingest
from spectragrid.data.raw import RawDataError, UnsafePickleError, read_raw_pickle
from spectragrid.data.unpickle import load_pickle_dataframe

CHANNELS = ["277", "380", "425"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _ingest(raw_files: list[Path], out: Path, **overrides) -> dict:
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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ingest")
    info = generate_demo(root / "demo", n_samples=400, seed=0)
    raw = [Path(p) for p in info["raw_files"]]
    before = {p: (_sha(p), p.stat().st_mtime_ns) for p in raw}
    report = _ingest(raw, root / "out")
    return {"info": info, "raw": raw, "before": before, "report": report, "out": root / "out"}


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
        sha, mtime = demo["before"][path]
        assert entry["sha256"] == sha == _sha(path)
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


@pytest.fixture()
def small(demo: dict, tmp_path: Path) -> pd.DataFrame:
    """First 40 rows of the first demo file, to be broken and written by each test."""
    df = load_pickle_dataframe(demo["raw"][0]).iloc[:40].copy()
    return df[~df.index.duplicated()]


def _expect_error(tmp_path: Path, raw_files: list[Path], match: str, error=RawDataError) -> str:
    out = tmp_path / "out"
    with pytest.raises(error, match=match) as info:
        _ingest(raw_files, out)
    assert not out.exists() or not any(out.iterdir()), "outputs written despite the error"
    return str(info.value)


def _save(df: pd.DataFrame, path: Path) -> Path:
    df.to_pickle(path)
    return path


def test_identical_channels_are_an_error(small: pd.DataFrame, tmp_path: Path) -> None:
    for w in range(295, 741):
        small[f"380_{w}"] = small[f"277_{w}"]
    path = _save(small, tmp_path / "copied.pkl")
    message = _expect_error(tmp_path, [path], r"channels '277' and '380' are identical")
    assert "copied.pkl" in message


def test_identical_channels_in_one_of_several_files(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    for w in range(295, 741):
        small[f"425_{w}"] = small[f"277_{w}"]
    path = _save(small, tmp_path / "broken.pkl")
    message = _expect_error(tmp_path, [demo["raw"][1], path], r"'277' and '425' are identical")
    assert "broken.pkl" in message and demo["raw"][1].name not in message


def test_missing_column_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _save(small.drop(columns=["scelle"]), tmp_path / "nolot.pkl")
    message = _expect_error(tmp_path, [path], r"group column 'scelle' is missing")
    assert str(path) in message
    path = _save(small.rename(columns={"greffon_brix": "brix"}), tmp_path / "renamed.pkl")
    _expect_error(tmp_path, [path], r"tabular column 'greffon_brix' is missing \(similar columns:")


def test_missing_channel_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _save(small.drop(columns=[f"425_{w}" for w in range(295, 741)]), tmp_path / "two.pkl")
    _expect_error(tmp_path, [path], r"channel '425' has no spectral columns .*found: 277, 380")


def test_columns_out_of_order(small: pd.DataFrame, tmp_path: Path) -> None:
    cols = list(small.columns)
    i, j = cols.index("380_400"), cols.index("380_401")
    cols[i], cols[j] = cols[j], cols[i]
    path = _save(small[cols], tmp_path / "swapped.pkl")
    _expect_error(
        tmp_path,
        [path],
        r"swapped\.pkl: channel '380': .*first offending column '380_400' after '380_401'",
    )
    gap = small.drop(columns=["277_500"])
    path = _save(gap, tmp_path / "gap.pkl")
    _expect_error(tmp_path, [path], r"channel '277': .*'277_501' after '277_499' \(step 2")


def test_non_dataframe_and_truncated_pickles(small: pd.DataFrame, tmp_path: Path) -> None:
    series = tmp_path / "series.pkl"
    small["277_300"].to_pickle(series)
    _expect_error(tmp_path, [series], r"series\.pkl: the pickle holds a pandas.Series")
    cut = tmp_path / "cut.pkl"
    data = pickle.dumps(small)
    cut.write_bytes(data[: len(data) - 100])
    _expect_error(tmp_path, [cut], r"cut\.pkl: .*truncated or not a pickle")


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_unsafe_pickle_refused_and_never_run(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    evil = small.copy()
    evil["firmware"] = pd.Series([_Evil(marker)] * len(evil), index=evil.index, dtype=object)
    path = _save(evil, tmp_path / "evil.pkl")
    message = _expect_error(tmp_path, [demo["raw"][1], path], "refused to load", UnsafePickleError)
    assert "evil.pkl" in message and "system" in message
    assert not marker.exists()


def test_conflicting_sample_ids_name_both_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    a = _save(small.iloc[:20], tmp_path / "a.pkl")
    other = small.iloc[20:].copy()
    other.index = pd.Index(small.index[:1].tolist() + small.index[21:].tolist(), name="sequence")
    b = _save(other, tmp_path / "b.pkl")
    message = _expect_error(tmp_path, [a, b], r"appears in a\.pkl row 0 and b\.pkl row 0")
    assert repr(small.index[0]) in message


def test_everything_dropped(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _save(small, tmp_path / "x.pkl")
    out = tmp_path / "out"
    with pytest.raises(RawDataError, match=r"all \d+ rows were dropped .*unknown_label \d+"):
        _ingest([path], out, label_map={"OK": "OK"})
    assert not out.exists() or not any(out.iterdir())


def test_bad_type_value_names_the_row(small: pd.DataFrame, tmp_path: Path) -> None:
    small["greffon_defaut_type"] = small["greffon_defaut_type"].astype(float)
    small.iloc[3, small.columns.get_loc("greffon_defaut_type")] = np.nan
    path = _save(small, tmp_path / "t.pkl")
    _expect_error(tmp_path, [path], rf"t\.pkl: type column .* row 3 \(id '{small.index[3]}'\)")


def test_id_as_a_column_and_missing_ids(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _save(small.reset_index(), tmp_path / "flat.pkl")
    raw = read_raw_pickle(path, DEMO_COLUMNS, CHANNELS)
    assert raw.table["sample_id"].tolist() == small.index.tolist()
    assert raw.table["source_row"].tolist() == list(range(len(small)))
    assert raw.sha256 == _sha(path)
    flat = small.reset_index()
    flat.loc[2, "sequence"] = None
    path = _save(flat, tmp_path / "noid.pkl")
    _expect_error(tmp_path, [path], r"noid\.pkl: id 'sequence' is missing in row 2")
    path = _save(small.rename_axis("seq"), tmp_path / "other.pkl")
    _expect_error(
        tmp_path, [path], r"id 'sequence' is neither the index name \('seq'\) nor a column"
    )


def test_same_file_twice(demo: dict, tmp_path: Path) -> None:
    _expect_error(tmp_path, [demo["raw"][0], demo["raw"][0]], "listed twice")


def test_existing_outputs_survive_a_failed_run(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    _ingest([demo["raw"][1]], out)
    before = {p.name: _sha(p) for p in out.iterdir()}
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(RawDataError):
        _ingest([demo["raw"][1], broken], out)
    assert {p.name: _sha(p) for p in out.iterdir()} == before


# --- cleaning rules on hand-made rows --------------------------------------------------------


def test_rule_order_and_duplicates_ignore_the_id(demo: dict) -> None:
    raw = read_raw_pickle(demo["raw"][1], DEMO_COLUMNS, CHANNELS)
    keep = (
        ~raw.table["sample_id"]
        .isin([i for ids in demo["info"]["dirt_ids"].values() for i in ids])
        .to_numpy()
    )
    base = copy.deepcopy(raw)
    base.table = raw.table.loc[keep].head(6).reset_index(drop=True)
    base.spectra = {ch: raw.spectra[ch][keep][:6].copy() for ch in CHANNELS}
    base.table["source_row"] = np.arange(6)
    # row 1: NaN and saturated -> nan wins; row 2: saturated and dim in another channel
    base.spectra["277"][1, 5] = np.nan
    base.spectra["380"][1, 50] = 62_000
    base.spectra["425"][2, 40] = 62_000
    base.spectra["277"][2] *= 0.1
    # row 3: a NaN in a tabular value
    base.table.loc[3, "greffon_brix"] = np.nan
    # row 5: same spectra and labels as row 4 under another id -> duplicate
    for ch in CHANNELS:
        base.spectra[ch][5] = base.spectra[ch][4]
    base.table.loc[5, ["label_raw", "type"]] = base.table.loc[4, ["label_raw", "type"]].to_numpy()
    result = clean([base], DEMO_LABEL_MAP, REFERENCE_SATURATION, REFERENCE_MIN_INTEGRAL)
    assert result.dropped["reason"].tolist() == ["nan", "saturation", "nan", "duplicate"]
    assert result.dropped["source_row"].tolist() == [1, 2, 3, 5]
    assert result.table["source_row"].tolist() == [0, 4]
    assert result.report["dropped"] == {
        "nan": 2,
        "saturation": 1,
        "low_integral": 0,
        "unknown_label": 0,
        "duplicate": 1,
    }
    assert result.spectra["277"].dtype == np.float32
    # a channel without a threshold is not limited
    relaxed = clean([base], DEMO_LABEL_MAP, {"277": 6500}, {})
    assert "saturation" not in set(relaxed.dropped["reason"])


# --- more bad data: each names the file and the column or row, and writes nothing -----------


def test_missing_label_columns_are_named(small: pd.DataFrame, tmp_path: Path) -> None:
    path = _save(small.drop(columns=["greffon_defaut_severite"]), tmp_path / "nolabel.pkl")
    message = _expect_error(
        tmp_path, [path], r"severity column 'greffon_defaut_severite' is missing"
    )
    assert str(path) in message
    path = _save(small.drop(columns=["greffon_defaut_type"]), tmp_path / "notype.pkl")
    _expect_error(tmp_path, [path], r"notype\.pkl: type column 'greffon_defaut_type' is missing")


def test_a_channel_that_is_all_nan_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    small[[f"425_{w}" for w in range(295, 741)]] = np.nan
    path = _save(small, tmp_path / "dark.pkl")
    _expect_error(
        tmp_path,
        [path],
        r"dark\.pkl: channel '425' \(425_295 … 425_740\) holds no finite value in any of the "
        r"\d+ rows",
    )


def test_a_wavelength_column_that_is_all_nan_is_named(small: pd.DataFrame, tmp_path: Path) -> None:
    small["380_500"] = np.nan
    path = _save(small, tmp_path / "hole.pkl")
    _expect_error(tmp_path, [path], r"hole\.pkl: channel '380': column\(s\) '380_500' hold no")


def test_a_nan_in_some_rows_only_drops_those_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    small.iloc[[2, 5], small.columns.get_loc("425_300")] = np.nan
    path = _save(small, tmp_path / "spots.pkl")
    report = _ingest([path], tmp_path / "out")
    assert report["dropped"]["nan"] == 2
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    assert dropped.loc[dropped["reason"] == "nan", "source_row"].tolist() == [2, 5]


def test_a_file_without_rows_is_named(small: pd.DataFrame, demo: dict, tmp_path: Path) -> None:
    path = _save(small.iloc[:0], tmp_path / "empty.pkl")
    _expect_error(tmp_path, [demo["raw"][1], path], r"empty\.pkl: the DataFrame has no rows")


def test_unknown_label_spellings_are_dropped_counted_and_named(
    small: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    column = small.columns.get_loc("greffon_defaut_severite")
    small.iloc[[3, 7], column] = "OK - Inspector"
    small.iloc[9, column] = "nc"
    path = _save(small, tmp_path / "typos.pkl")
    with caplog.at_level("WARNING", logger="spectragrid"):
        report = _ingest([path], tmp_path / "out")
    assert report["unknown_labels"] == {"OK - Inspector": 2, "nc": 1}
    assert report["dropped"]["unknown_label"] == 3
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    unknown = dropped.loc[dropped["reason"] == "unknown_label"]
    assert unknown["source_row"].tolist() == [3, 7, 9]
    assert set(unknown["source_file"]) == {"typos.pkl"}
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "3 rows carry a label spelling that dataset.label_map does not map" in warning
    assert "'OK - Inspector' (2 rows, first typos.pkl row 3)" in warning
    assert "'nc' (1 rows, first typos.pkl row 9)" in warning


def test_the_same_sample_in_two_campaigns_is_kept_once(small: pd.DataFrame, tmp_path: Path) -> None:
    a = _save(small.iloc[:20], tmp_path / "a.pkl")
    # the first sample measured in campaign a reappears, identical, as row 0 of campaign b
    b = _save(pd.concat([small.iloc[:1], small.iloc[20:]]), tmp_path / "b.pkl")
    report = _ingest([a, b], tmp_path / "out")
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", dtype={"sample_id": str})
    row = dropped.loc[dropped["reason"] == "duplicate"]
    assert row[["sample_id", "source_file", "source_row"]].values.tolist() == [
        [small.index[0], "b.pkl", 0]
    ]
    assert read_clean(tmp_path / "out" / "clean.parquet").table["sample_id"].is_unique
    assert report["kept"] + sum(report["dropped"].values()) == 20 + 1 + len(small) - 20


def test_no_group_column_makes_each_sample_its_own_group(
    small: pd.DataFrame, tmp_path: Path
) -> None:
    path = _save(small.drop(columns=["scelle"]), tmp_path / "nolot.pkl")
    _ingest([path], tmp_path / "out", columns={**DEMO_COLUMNS, "group": None})
    table = read_clean(tmp_path / "out" / "clean.parquet").table
    assert (table["group"] == table["sample_id"]).all()


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
