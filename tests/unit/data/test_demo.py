from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectragrid.data.demo import (
    CAMPAIGNS,
    DEMO_COLUMNS,
    DEMO_LABEL_MAP,
    REFERENCE_MIN_INTEGRAL,
    REFERENCE_SATURATION,
    generate_demo,
    main,
)
from spectragrid.data.truth import read_truth
from spectragrid.data.unpickle import load_pickle_dataframe

CHANNELS = ("277", "380", "425")
EXPECTED_COLUMNS = [
    "greffon_defaut_severite",
    "greffon_defaut_type",
    "greffon_transmittance",
    "greffon_brix",
    "scelle",
    "outil_id",
    "mesure_date",
    "sa_verdict",
    "sa_prob_ok",
    "sa_controle",
    "firmware",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The default-size demo, read back once for all checks."""
    out = tmp_path_factory.mktemp("demo")
    info = generate_demo(out)
    frames = [load_pickle_dataframe(Path(p)) for p in info["raw_files"]]
    truth = pd.read_csv(info["truth"], dtype={"sequence": str})
    return {"info": info, "frames": frames, "truth": truth, "out": out}


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    generate_demo(tmp_path / "a", n_samples=300, seed=7)
    generate_demo(tmp_path / "b", n_samples=300, seed=7)
    generate_demo(tmp_path / "c", n_samples=300, seed=8)
    a, b, c = (_hashes(tmp_path / x) for x in "abc")
    assert sorted(a) == [
        "raw/campaign_2023_SA3-01.pkl",
        "raw/campaign_2024_SA3-02.pkl",
        "truth.csv",
    ]
    assert a == b
    assert all(a[k] != c[k] for k in a)


def test_layout_of_the_pickles(demo: dict) -> None:
    info, frames = demo["info"], demo["frames"]
    spectral = [f"{ch}_{w}" for ch in CHANNELS for w in range(295, 741)]
    for df, spec in zip(frames, CAMPAIGNS, strict=True):
        assert df.index.name == "sequence"
        assert list(df.columns) == spectral + EXPECTED_COLUMNS
        assert (df[spectral].dtypes == np.float64).all()
        assert df["greffon_defaut_type"].dtype == np.int64
        assert df["mesure_date"].dtype.kind == "M"
        assert set(df["outil_id"]) == {spec["instrument"]}
        assert df.index.str.startswith(spec["prefix"] + "-").all()
        season = pd.Timestamp(spec["season"])
        assert df["mesure_date"].between(season, season + pd.Timedelta(days=spec["days"])).all()
        assert set(df["firmware"]) == {"v1.2"}
        assert df["greffon_transmittance"].between(40, 90).all()
        assert df["greffon_brix"].between(65, 68).all()
        assert df[~df.index.duplicated()].groupby("scelle").size().max() <= 3
    rows = [len(df) for df in frames]
    assert rows == list(info["rows"].values())
    assert sum(rows) == 3000 + info["dirt"]["duplicate"]
    assert 0.5 < rows[0] / sum(rows) < 0.6


def test_truth_never_reaches_the_pickles(demo: dict) -> None:
    for df in demo["frames"]:
        assert "noisy" not in df.columns
        given = df["greffon_defaut_severite"].map(DEMO_LABEL_MAP)
        truth = demo["truth"].drop_duplicates("sequence").set_index("sequence")
        true = truth.loc[df.index, "greffon_defaut_severite"].to_numpy()
        # the recorded label is not the truth wherever noise was injected
        noisy = truth.loc[df.index, "noisy"].to_numpy()
        assert (given.to_numpy()[noisy] != true[noisy]).mean() > 0.9


def test_class_shares(demo: dict) -> None:
    truth = demo["truth"].drop_duplicates("sequence")
    share = truth["greffon_defaut_severite"].value_counts(normalize=True)
    assert share["OK"] == pytest.approx(0.66, abs=0.02)
    assert share["CROCHET"] == pytest.approx(0.16, abs=0.02)
    assert share["VR"] + share["NC"] == pytest.approx(0.18, abs=0.02)
    counts = truth["greffon_defaut_severite"].value_counts()
    assert counts.min() >= 40
    per_type = truth.groupby(["greffon_defaut_severite", "greffon_defaut_type"]).size()
    assert (per_type.loc["VR"] >= 15).sum() >= 3
    assert (per_type.loc["NC"] >= 15).sum() >= 2
    assert set(per_type.loc["OK"].index) == {0} and set(per_type.loc["CROCHET"].index) == {0}
    assert per_type.min() < 15  # tiny classes exist
    assert len(per_type) >= 15


def test_dirt_counts_and_spread(demo: dict) -> None:
    info = demo["info"]
    assert info["dirt"] == {
        "saturation": 30,
        "low_integral": 30,
        "nan": 30,
        "unknown_label": 3,
        "duplicate": 30,
    }
    for kind, ids in info["dirt_ids"].items():
        assert len(ids) == info["dirt"][kind]
        assert any(i.startswith("23-") for i in ids) and any(i.startswith("24-") for i in ids)
    small = generate_demo(demo["out"] / "small", n_samples=400)
    assert all(v >= 5 for k, v in small["dirt"].items() if k != "unknown_label")
    assert small["dirt"]["unknown_label"] >= 3


def test_dirt_trips_its_own_rule_and_clean_rows_stay_within_limits(demo: dict) -> None:
    info = demo["info"]
    df = pd.concat(demo["frames"])
    df = df[~df.index.duplicated()]
    dirty = {i for ids in info["dirt_ids"].values() for i in ids} - set(
        info["dirt_ids"]["duplicate"]
    )
    spectra = {ch: df[[f"{ch}_{w}" for w in range(295, 741)]].to_numpy() for ch in CHANNELS}
    peak = np.column_stack([np.nanmax(spectra[ch], axis=1) for ch in CHANNELS])
    total = np.column_stack([np.nansum(spectra[ch], axis=1) for ch in CHANNELS])
    has_nan = np.column_stack([np.isnan(spectra[ch]).any(axis=1) for ch in CHANNELS]).any(axis=1)
    saturated = (peak > np.array([REFERENCE_SATURATION[ch] for ch in CHANNELS])).any(axis=1)
    dim = (total < np.array([REFERENCE_MIN_INTEGRAL[ch] for ch in CHANNELS])).any(axis=1)
    ids = df.index.to_numpy()
    assert set(ids[has_nan]) == set(info["dirt_ids"]["nan"])
    assert set(ids[saturated]) == set(info["dirt_ids"]["saturation"])
    assert set(ids[dim & ~has_nan]) == set(info["dirt_ids"]["low_integral"])
    assert (peak[saturated].max(axis=1) >= 61_000).all()
    assert (peak[saturated].max(axis=1) <= 63_000).all()
    normal = ~np.isin(ids, list(dirty))
    assert (peak[normal] < 0.97 * np.array([REFERENCE_SATURATION[ch] for ch in CHANNELS])).all()
    assert np.median(peak[normal], axis=0).min() > 2500
    # dark-subtracted tails dip below zero
    assert (np.concatenate([spectra[ch][normal] for ch in CHANNELS], axis=1) < 0).any(
        axis=1
    ).mean() > 0.5
    labels = df.loc[info["dirt_ids"]["unknown_label"], "greffon_defaut_severite"]
    assert not labels.isin(list(DEMO_LABEL_MAP)).any()


def test_ids_unique_except_intentional_duplicates(demo: dict) -> None:
    info = demo["info"]
    both = pd.concat(demo["frames"])
    repeated = both.index[both.index.duplicated()]
    assert sorted(repeated) == info["dirt_ids"]["duplicate"]
    for df in demo["frames"]:
        for seq in df.index[df.index.duplicated()]:
            rows = df.loc[[seq]]
            assert len(rows) == 2
            assert rows.iloc[0].equals(rows.iloc[1])
            pos = np.flatnonzero(df.index == seq)
            assert pos[1] > pos[0]


def test_label_noise(demo: dict) -> None:
    info, truth = demo["info"], demo["truth"]
    assert info["n_noisy"] / info["n_clean_rows"] == pytest.approx(0.08, abs=0.005)
    given = pd.concat(demo["frames"])[["greffon_defaut_severite", "greffon_defaut_type"]]
    given = given[~given.index.duplicated()]
    truth = truth.drop_duplicates("sequence").set_index("sequence").loc[given.index]
    assert int(truth["noisy"].sum()) == info["n_noisy"]
    known = given["greffon_defaut_severite"].isin(list(DEMO_LABEL_MAP)).to_numpy()
    differs = (
        given["greffon_defaut_severite"].map(DEMO_LABEL_MAP) != truth["greffon_defaut_severite"]
    ) | (given["greffon_defaut_type"] != truth["greffon_defaut_type"])
    np.testing.assert_array_equal(differs.to_numpy()[known], truth["noisy"].to_numpy()[known])
    noisy = given.loc[truth["noisy"].to_numpy()]
    to_spectracer = (noisy["greffon_defaut_severite"] == "OK - SpectrAcer").mean()
    assert 0.75 <= to_spectracer <= 0.9
    assert (
        noisy.loc[noisy["greffon_defaut_severite"] == "OK - SpectrAcer", "greffon_defaut_type"] == 0
    ).all()
    ok = given.loc[
        given["greffon_defaut_severite"].str.startswith("OK - "), "greffon_defaut_severite"
    ]
    assert 0.4 < (ok == "OK - Inspecteur").mean() < 0.6
    quiet = generate_demo(demo["out"] / "quiet", n_samples=300, noise_rate=0.0)
    assert quiet["n_noisy"] == 0


def test_symmetric_noise_flips_between_all_severities(tmp_path: Path) -> None:
    info = generate_demo(tmp_path / "a", n_samples=2000, noise_rate=0.15, noise_shape="symmetric")
    assert info["n_noisy_to_ok"] == 0
    assert info["n_noisy"] / info["n_clean_rows"] == pytest.approx(0.15, abs=0.005)
    frames = [load_pickle_dataframe(Path(p)) for p in info["raw_files"]]
    given = pd.concat(frames)[["greffon_defaut_severite", "greffon_defaut_type"]]
    given = given[~given.index.duplicated()]
    truth = pd.read_csv(info["truth"], dtype={"sequence": str})
    truth = truth.drop_duplicates("sequence").set_index("sequence").loc[given.index]
    noisy = truth["noisy"].to_numpy()
    true_sev = truth["greffon_defaut_severite"].to_numpy()[noisy]
    given_sev = given["greffon_defaut_severite"].map(DEMO_LABEL_MAP).to_numpy()[noisy]
    assert (true_sev != given_sev).all()  # a flip always changes the severity
    # every severity is a wrong label's destination, each about a third of the flips away
    # from it: no bias toward OK as in the field's noise
    shares = pd.Series(given_sev).value_counts(normalize=True)
    assert set(shares.index) == {"OK", "CROCHET", "VR", "NC"}
    assert shares["OK"] < 0.4
    for sev in ("OK", "CROCHET", "VR", "NC"):
        away = given_sev[true_sev == sev]
        assert len(away) > 0 and set(away) == {"OK", "CROCHET", "VR", "NC"} - {sev}
    # deterministic, and a shape of its own
    generate_demo(tmp_path / "b", n_samples=2000, noise_rate=0.15, noise_shape="symmetric")
    generate_demo(tmp_path / "c", n_samples=2000, noise_rate=0.15)
    a, b, c = (_hashes(tmp_path / x) for x in "abc")
    assert a == b and a != c
    with pytest.raises(ValueError, match="noise_shape must be one of to_ok, symmetric"):
        generate_demo(tmp_path / "d", n_samples=300, noise_shape="uniform")


def test_instruments_differ_visibly(demo: dict) -> None:
    dirty = {i for ids in demo["info"]["dirt_ids"].values() for i in ids}
    means = []
    for df in demo["frames"]:
        df = df[~df.index.isin(list(dirty))]
        means.append(
            {ch: df[[f"{ch}_{w}" for w in range(295, 741)]].mean().to_numpy() for ch in CHANNELS}
        )
    for ch in CHANNELS:
        ratio = means[1][ch].sum() / means[0][ch].sum()
        assert 1.06 < ratio < 1.2
    shift = np.argmax(means[1]["380"][100:]) - np.argmax(means[0]["380"][100:])
    assert 1 <= shift <= 3


def test_replicates_share_class_and_spectrum_shape(demo: dict) -> None:
    df = demo["frames"][0]
    truth = demo["truth"].drop_duplicates("sequence").set_index("sequence")
    dirty = {i for ids in demo["info"]["dirt_ids"].values() for i in ids}
    df = df[~df.index.isin(list(dirty))]
    lots = df.groupby("scelle").groups
    cols = [f"425_{w}" for w in range(295, 741)]
    replicated = [list(idx) for idx in lots.values() if len(idx) >= 2][:50]
    assert len(replicated) == 50
    for idx in replicated:
        assert truth.loc[idx, "greffon_defaut_severite"].nunique() == 1
        assert df.loc[idx, "greffon_transmittance"].nunique() == 1
    within = np.mean([np.corrcoef(df.loc[idx[:2], cols].to_numpy())[0, 1] for idx in replicated])
    assert within > 0.99


def test_truth_file_and_reader(demo: dict, tmp_path: Path) -> None:
    info, truth_raw = demo["info"], demo["truth"]
    assert list(truth_raw.columns) == [
        "sequence",
        "greffon_defaut_severite",
        "greffon_defaut_type",
        "noisy",
    ]
    assert len(truth_raw) == info["n_rows"]
    assert set(truth_raw["greffon_defaut_severite"]) == {"OK", "CROCHET", "VR", "NC"}
    truth = read_truth(Path(info["truth"]), DEMO_COLUMNS, DEMO_LABEL_MAP)
    assert list(truth.columns) == ["sample_id", "severity", "type", "full_truth"]
    assert len(truth) == info["n_samples"]  # duplicated rows collapsed
    assert truth["sample_id"].is_unique
    row = truth.iloc[0]
    assert row["full_truth"] == f"{row['severity']}{row['type']}"
    assert truth["type"].dtype == np.int64

    raw_spelling = tmp_path / "t.csv"
    raw_spelling.write_text(
        "sequence,greffon_defaut_severite,greffon_defaut_type\n"
        "1,OK - SpectrAcer,0\n2,VR,11\n2,VR,11\n3,NC,5\n"
    )
    small = read_truth(raw_spelling, DEMO_COLUMNS, DEMO_LABEL_MAP)
    assert small["full_truth"].tolist() == ["OK0", "VR11", "NC5"]
    assert small["sample_id"].tolist() == ["1", "2", "3"]

    missing = tmp_path / "m.csv"
    missing.write_text("sequence,greffon_defaut_severite\n1,OK\n")
    with pytest.raises(
        ValueError, match=r"m\.csv: truth file lacks column\(s\) \['greffon_defaut_type'\]"
    ):
        read_truth(missing, DEMO_COLUMNS, DEMO_LABEL_MAP)
    unknown = tmp_path / "u.csv"
    unknown.write_text("sequence,greffon_defaut_severite,greffon_defaut_type\n1,MAYBE,0\n")
    with pytest.raises(ValueError, match=r"u\.csv: unknown severity value\(s\) \['MAYBE'\]"):
        read_truth(unknown, DEMO_COLUMNS, DEMO_LABEL_MAP)
    clash = tmp_path / "c.csv"
    clash.write_text("sequence,greffon_defaut_severite,greffon_defaut_type\n1,OK,0\n1,VR,5\n")
    with pytest.raises(ValueError, match="sample id '1' has conflicting truth rows"):
        read_truth(clash, DEMO_COLUMNS, DEMO_LABEL_MAP)


def test_cli_writes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert (
        main(["--out", str(out), "--n-samples", "250", "--seed", "2", "--noise-rate", "0.1"]) == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"wrote {out / 'raw' / 'campaign_2023_SA3-01.pkl'} (")
    assert lines[2].startswith(f"wrote {out / 'truth.csv'} (")
    # atomic writes leave nothing else behind
    assert sorted(p.name for p in (out / "raw").iterdir()) == [
        "campaign_2023_SA3-01.pkl",
        "campaign_2024_SA3-02.pkl",
    ]
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--n-samples", "10"])
