"""The cleaning rules: each row kept or dropped for one reason; errors no drop can repair."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ingest_cases import CHANNELS, expect_error, ingest, save

from spectragrid.data.clean_file import read_clean
from spectragrid.data.cleaning import clean
from spectragrid.data.demo import (
    DEMO_COLUMNS,
    DEMO_LABEL_MAP,
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
)
from spectragrid.data.raw import RawDataError, read_raw_pickle


def test_identical_channels_are_an_error(small: pd.DataFrame, tmp_path: Path) -> None:
    for w in range(295, 741):
        small[f"380_{w}"] = small[f"277_{w}"]
    path = save(small, tmp_path / "copied.pkl")
    message = expect_error(tmp_path, [path], r"channels '277' and '380' are identical")
    assert "copied.pkl" in message


def test_identical_channels_in_one_of_several_files(
    demo: dict, small: pd.DataFrame, tmp_path: Path
) -> None:
    for w in range(295, 741):
        small[f"425_{w}"] = small[f"277_{w}"]
    path = save(small, tmp_path / "broken.pkl")
    message = expect_error(tmp_path, [demo["raw"][1], path], r"'277' and '425' are identical")
    assert "broken.pkl" in message and demo["raw"][1].name not in message


def test_conflicting_sample_ids_name_both_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    a = save(small.iloc[:20], tmp_path / "a.pkl")
    other = small.iloc[20:].copy()
    other.index = pd.Index(small.index[:1].tolist() + small.index[21:].tolist(), name="sequence")
    b = save(other, tmp_path / "b.pkl")
    message = expect_error(tmp_path, [a, b], r"appears in a\.pkl row 0 and b\.pkl row 0")
    assert repr(small.index[0]) in message


def test_everything_dropped(small: pd.DataFrame, tmp_path: Path) -> None:
    path = save(small, tmp_path / "x.pkl")
    out = tmp_path / "out"
    with pytest.raises(RawDataError, match=r"all \d+ rows were dropped .*unknown_label \d+"):
        ingest([path], out, label_map={"OK": "OK"})
    assert not out.exists() or not any(out.iterdir())


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
    assert result.channel("277").dtype == np.float32
    assert result.channel("277").shape == (2, 446)
    # a channel without a threshold is not limited
    relaxed = clean([base], DEMO_LABEL_MAP, {"277": 6500}, {})
    assert "saturation" not in set(relaxed.dropped["reason"])


# --- more bad data: each names the file and the column or row, and writes nothing -----------


def test_a_nan_in_some_rows_only_drops_those_rows(small: pd.DataFrame, tmp_path: Path) -> None:
    small.iloc[[2, 5], small.columns.get_loc("425_300")] = np.nan
    path = save(small, tmp_path / "spots.pkl")
    report = ingest([path], tmp_path / "out")
    assert report["dropped"]["nan"] == 2
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    assert dropped.loc[dropped["reason"] == "nan", "source_row"].tolist() == [2, 5]


def test_unknown_label_spellings_are_dropped_counted_and_named(
    small: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    column = small.columns.get_loc("greffon_defaut_severite")
    small.iloc[[3, 7], column] = "OK - Inspector"
    small.iloc[9, column] = "nc"
    path = save(small, tmp_path / "typos.pkl")
    with caplog.at_level("WARNING", logger="spectragrid"):
        report = ingest([path], tmp_path / "out")
    assert report["unknown_labels"] == {"OK - Inspector": 2, "nc": 1}
    assert report["dropped"]["unknown_label"] == 3
    dropped = pd.read_csv(tmp_path / "out" / "dropped.csv", keep_default_na=False)
    unknown = dropped.loc[dropped["reason"] == "unknown_label"]
    assert unknown["source_row"].tolist() == [3, 7, 9]
    assert set(unknown["source_file"]) == {"typos.pkl"}
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    (warning,) = [m for m in said if "label spelling" in m]
    assert "3 rows carry a label spelling that dataset.label_map does not map" in warning
    assert "'OK - Inspector' (2 rows, first typos.pkl row 3)" in warning
    assert "'nc' (1 rows, first typos.pkl row 9)" in warning


def test_the_same_sample_in_two_campaigns_is_kept_once(small: pd.DataFrame, tmp_path: Path) -> None:
    a = save(small.iloc[:20], tmp_path / "a.pkl")
    # the first sample measured in campaign a reappears, identical, as row 0 of campaign b
    b = save(pd.concat([small.iloc[:1], small.iloc[20:]]), tmp_path / "b.pkl")
    report = ingest([a, b], tmp_path / "out")
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
    path = save(small.drop(columns=["scelle"]), tmp_path / "nolot.pkl")
    ingest([path], tmp_path / "out", columns={**DEMO_COLUMNS, "group": None})
    table = read_clean(tmp_path / "out" / "clean.parquet").table
    assert (table["group"] == table["sample_id"]).all()


def test_one_label_column_is_mapped_and_is_the_full_truth(tmp_path: Path) -> None:
    from own_data import grain_frame

    from spectragrid.data.cleaning import clean

    frame = grain_frame(12)
    frame.loc[4, "variety"] = None  # a missing label: never a class
    frame.loc[5, "variety"] = "Wheat"  # a spelling the map does not list
    path = tmp_path / "grain.csv"
    frame.to_csv(path, index=False)
    columns = {"id": None, "label": "variety", "group": "lot"}
    raw = read_raw_pickle(path, columns, ["nir"])
    result = clean([raw], {"barley": "barley", "wheat": "wheat", "rye": "rye"}, {}, {})
    assert list(result.table.columns[:4]) == ["sample_id", "label", "full_truth", "label_raw"]
    assert (result.table["label"] == result.table["full_truth"]).all()
    assert result.report["dropped"]["unknown_label"] == 2
    assert result.report["unknown_labels"] == {"": 1, "Wheat": 1}
    assert result.report["kept_by_label"] == {"barley": 4, "rye": 3, "wheat": 3}


def _duplicates_row_by_row(candidates, spectra, severity, types):
    """The check as it was: a blake2b digest per row in Python, confirmed on the values."""
    import hashlib

    first_of: dict[bytes, int] = {}
    dup = np.zeros(len(candidates), dtype=bool)
    for i in np.flatnonzero(candidates).tolist():
        h = hashlib.blake2b(digest_size=16)
        for values in spectra.values():
            h.update((values[i] + 0.0).tobytes())
        h.update(f"\x00{severity[i]}\x00{types[i]}".encode())
        j = first_of.setdefault(h.digest(), i)
        if j != i and all(np.array_equal(v[i], v[j]) for v in spectra.values()):
            dup[i] = True
    return dup


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float64, np.float32)])
def test_vectorised_duplicates_are_the_row_by_row_duplicates(dtypes) -> None:
    """Copies within and across files, -0.0 against 0.0, the same spectra under another
    label or type, near misses and non-candidates: the same rows flagged as before."""
    from spectragrid.data.cleaning import _duplicates
    from spectragrid.data.raw import RawTable

    rng = np.random.default_rng(7)
    n, length = 300, 45
    spectra = {ch: rng.normal(500, 30, (n, length)).astype(np.float32) for ch in CHANNELS}
    severity = rng.choice(np.array(["OK", "VR", "NC"], dtype=object), n)
    types = rng.integers(0, 3, n)
    for src, dst in [(1, 2), (1, 250), (5, 6), (7, 8), (9, 10), (11, 12), (200, 299), (1, 3)]:
        for values in spectra.values():
            values[dst] = values[src]
        severity[dst], types[dst] = severity[src], types[src]
    spectra["277"][5, 0], spectra["277"][6, 0] = -0.0, 0.0  # equal values, other bits
    severity[8] = "OK" if severity[7] != "OK" else "VR"  # same spectra, another label
    types[10] = types[9] + 1  # same spectra, another type
    spectra["380"][12, 4] = np.nextafter(spectra["380"][12, 4], np.float32(np.inf))  # near miss
    candidates = np.ones(n, dtype=bool)
    candidates[[3, 299]] = False  # dropped earlier for another reason
    expected = _duplicates_row_by_row(candidates, spectra, severity, types)
    assert np.flatnonzero(expected).tolist() == [2, 6, 250]

    # the same rows as two raw files, the first maybe float64
    cut = 150
    tables = []
    for part, dtype in zip((slice(0, cut), slice(cut, n)), dtypes, strict=True):
        table = RawTable(
            table=pd.DataFrame(index=range(part.stop - part.start)),
            spectra={ch: v[part].astype(dtype) for ch, v in spectra.items()},
            wavelengths={},
            dropped_columns=[],
            sha256="",
            path=Path("x.pkl"),
            channels=CHANNELS,
        )
        tables.append(table)
    found = _duplicates(candidates, tables, CHANNELS, severity, types)
    assert np.array_equal(found, expected)


def test_rows_with_one_hash_but_other_values_are_settled_exactly(monkeypatch) -> None:
    """Should different rows share a hash, values still decide, against every earlier row."""
    from spectragrid.data import cleaning
    from spectragrid.data.raw import RawTable

    monkeypatch.setattr(
        cleaning, "_hash_rows", lambda values, rows, dtype: np.zeros(len(rows), np.uint64)
    )
    a, b = np.ones((1, 4), np.float32), np.full((1, 4), 2.0, np.float32)
    values = np.concatenate([a, b, b, a, b])
    table = RawTable(
        table=pd.DataFrame(index=range(5)),
        spectra={"x": values},
        wavelengths={},
        dropped_columns=[],
        sha256="",
        path=Path("x.pkl"),
        channels=["x"],
    )
    labels = np.array(["OK"] * 5, dtype=object)
    found = cleaning._duplicates(np.ones(5, bool), [table], ["x"], labels, np.zeros(5, np.int64))
    assert np.flatnonzero(found).tolist() == [2, 3, 4]


def _column_major_tables(spectra: dict, cut: int, dtypes=(np.float32, np.float32)) -> list:
    """The rows of `spectra` as two raw files whose channels are column-major views of one
    block per file, as an unpickled frame gives them."""
    from spectragrid.data.raw import RawTable

    tables = []
    n = len(next(iter(spectra.values())))
    for part, dtype in zip((slice(0, cut), slice(cut, n)), dtypes, strict=True):
        block = np.concatenate([v[part].T for v in spectra.values()]).astype(dtype)
        length = block.shape[0] // len(spectra)
        views = {ch: block[i * length : (i + 1) * length].T for i, ch in enumerate(spectra)}
        assert all(not v.flags.c_contiguous for v in views.values())
        tables.append(
            RawTable(
                table=pd.DataFrame(index=range(part.stop - part.start)),
                spectra=views,
                wavelengths={ch: np.arange(295.0, 295.0 + length) for ch in spectra},
                dropped_columns=[],
                sha256="",
                path=Path(f"f{part.start}.pkl"),
                channels=list(spectra),
            )
        )
    return tables


def test_row_checks_on_column_major_files_are_those_of_the_widened_rows() -> None:
    """Integrals of column-major float32 spectra with a wide dynamic range, at every place
    in the chunks: the float64 sums of the widened rows, so thresholds drop the same rows;
    saturation and non-finite rows too."""
    from spectragrid.data.cleaning import _hash_rows, _row_checks

    rng = np.random.default_rng(11)
    n, length = 1500, 446
    spectra = {
        ch: (rng.normal(0, 1, (n, length)) * 10.0 ** rng.integers(-6, 6, (n, length))).astype(
            np.float32
        )
        for ch in ("a", "b")
    }
    spectra["a"][[3, 700]] = np.nan
    spectra["b"][1200, 5] = np.inf
    widened = {ch: v.astype(np.float64).sum(axis=1) for ch, v in spectra.items()}
    # a threshold at a row's own integral: `<` is decided by the last bit
    middle = int(np.argsort(widened["a"])[n // 2])
    floor = {"a": float(widened["a"][middle])}
    limit = {"a": float(np.median(spectra["a"].max(axis=1))), "b": 1e30}
    tables = _column_major_tables(spectra, cut=613)
    checks = _row_checks(tables, ["a", "b"], limit, floor, np.dtype(np.float32))

    finite = np.isfinite(spectra["a"]).all(axis=1) & np.isfinite(spectra["b"]).all(axis=1)
    np.testing.assert_array_equal(checks.bad, ~finite)
    with np.errstate(invalid="ignore"):
        over = (spectra["a"].max(axis=1) > limit["a"]) | (spectra["b"].max(axis=1) > limit["b"])
    np.testing.assert_array_equal(checks.dim, widened["a"] < floor["a"])
    np.testing.assert_array_equal(checks.over, over)
    assert checks.dim.sum() == n // 2 and not checks.dim[middle]
    assert 0 < over.sum() < n and checks.over[1200]
    # the hashes the duplicate check starts from: those of the rows hashed one by one
    for ch, values in spectra.items():
        np.testing.assert_array_equal(
            checks.hashes[ch], _hash_rows(values, np.arange(n), np.dtype(np.float32))
        )


def test_colliding_hashes_in_a_whole_cleaning_still_flag_only_equal_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every row hashed alike, the values alone decide, across files and in
    column-major arrays: exactly the row-by-row duplicates are dropped."""
    from spectragrid.data import cleaning

    monkeypatch.setattr(cleaning, "_hash_block", lambda block, dtype: np.zeros(len(block), "u8"))
    rng = np.random.default_rng(5)
    n, length = 40, 12
    spectra = {ch: rng.normal(500, 30, (n, length)).astype(np.float32) for ch in ("x", "y")}
    severity = np.array(["OK"] * n, dtype=object)
    types = np.zeros(n, dtype=np.int64)
    for src, dst in [(1, 2), (1, 30), (5, 25), (7, 8)]:
        for values in spectra.values():
            values[dst] = values[src]
    severity[8] = "VR"  # same spectra, another label: kept
    tables = _column_major_tables(spectra, cut=20)
    for t, table in enumerate(tables):
        rows = range(20 * t, 20 * t + 20)
        table.table = pd.DataFrame(
            {
                "sample_id": [f"s{i}" for i in rows],
                "label_raw": severity[list(rows)],
                "type": types[list(rows)],
                "group": [f"s{i}" for i in rows],
                "source_file": table.path.name,
                "source_row": np.arange(20),
            }
        )
    result = clean(tables, {"OK": "OK", "VR": "VR"}, {}, {})
    expected = _duplicates_row_by_row(np.ones(n, bool), spectra, severity, types)
    assert np.flatnonzero(expected).tolist() == [2, 25, 30]
    assert result.dropped["sample_id"].tolist() == ["s2", "s25", "s30"]
    assert set(result.dropped["reason"]) == {"duplicate"}
    kept = np.flatnonzero(~expected)
    for ch in ("x", "y"):
        np.testing.assert_array_equal(result.channel(ch), spectra[ch][kept])
