"""Batch scoring as a rule: the served model, its parity with the cells, every row accounted for.

On a copy of the finished tiny study: `snakemake results/predictions/<batch>.parquet`
plans the served model and the batch only, scores every row of the batch's raw
files, and lists the rows it cannot score with the cleaning's reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_study import BATCH, copy_finished, csv_bytes, demo_frame, serving_config
from tiny_study import Workdir

from spectragrid.core import layout
from spectragrid.report.summary_tables import aggregate
from spectragrid.serve.batch_input import model_inputs, read_batch_file
from spectragrid.serve.model import ServedModel, sha256_of
from spectragrid.serve.scoring import predict_batch, score_batch
from spectragrid.serve.served import build_served_model

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def scored(finished_tiny_study: Workdir, tmp_path_factory) -> Workdir:
    work = copy_finished(finished_tiny_study, tmp_path_factory.mktemp("scored"))
    work.write_config(serving_config())
    target = layout.PREDICTION_FILES["parquet"].format(batch=BATCH)
    # nothing of the study reruns: only the served model and the batch
    assert work.planned_jobs(target) == {"serve_model": 1, "predict": 1}
    work.snakemake(target)
    return work


def _scores(work: Workdir) -> pd.DataFrame:
    return pd.read_parquet(work.path / layout.PREDICTION_FILES["parquet"].format(batch=BATCH))


def _served(work: Workdir) -> ServedModel:
    return ServedModel.load(work.path / layout.served_file("OVA_OK", "onnx"))


def test_the_default_study_plans_no_serving_job(scored: Workdir) -> None:
    assert scored.planned_jobs() == {}


def test_best_is_the_summary_best_point_its_folds_in_one_file(scored: Workdir) -> None:
    card = json.loads((scored.path / layout.served_file("OVA_OK", "card")).read_text())
    agg = aggregate(pd.read_parquet(scored.path / layout.SUMMARY_PARQUET))
    best = agg.loc[agg["test_macro_f1_mean"].idxmax()]
    chosen = card["serving"]["chosen_by"]
    assert chosen["rule"] == "best"
    assert chosen["mean"] == pytest.approx(best["test_macro_f1_mean"])
    assert {k: chosen["point"][k] for k in ("labels", "model")} == {
        "labels": best["labels"],
        "model": best["model"],
    }
    assert card["serving"]["kind"] == "ensemble"
    assert len(card["serving"]["members"]) == 3
    served = _served(scored)
    assert card["sha256"] == served.sha256 == sha256_of(served.path)
    # provenance travels inside the ONNX file itself
    assert served.metadata["serving"]["members"] == card["serving"]["members"]
    assert served.classes == ["OK", "rest"]


def test_every_row_is_scored_or_listed_as_the_cleaning_drops_it(scored: Workdir) -> None:
    scores = _scores(scored)
    rows = sum(len(demo_frame(scored, i)) for i in range(2))
    assert len(scores) == rows
    csv = pd.read_csv(scored.path / layout.PREDICTION_FILES["csv"].format(batch=BATCH))
    assert len(csv) == rows
    assert set(scores["OVA_OK.model_sha256"]) == {_served(scored).sha256}
    listed = scores[scores["OVA_OK.reason"] != ""]
    assert listed["OVA_OK.prob_OK"].isna().all() and listed["OVA_OK.decision"].isna().all()
    scored_rows = scores[scores["OVA_OK.reason"] == ""]
    assert scored_rows["OVA_OK.decision"].isin(["OK", "rest", "uncertain"]).all()
    # the same rows the ingest dropped for a reason that holds without labels
    # "nan" is a reason here, not a missing value
    dropped = pd.read_csv(
        scored.path / layout.DROPPED_FILE.format(dataset="demo"), keep_default_na=False
    )
    dropped = dropped[dropped["reason"].isin(["nan", "saturation", "low_integral"])]
    want = dict(
        zip(
            zip(dropped["source_file"], dropped["source_row"], strict=True),
            dropped["reason"],
            strict=True,
        )
    )
    got = dict(
        zip(
            zip(listed["source_file"], listed["source_row"], strict=True),
            listed["OVA_OK.reason"].str.split(":").str[0],
            strict=True,
        )
    )
    assert got == want and len(want) > 0


def test_batch_scores_equal_the_cells_test_predictions(scored: Workdir, tmp_path: Path) -> None:
    """One cell served: its batch scores are its own test predictions, sample for sample."""
    cell = scored.cell(model="cnn", fold=1)
    out = tmp_path / "served"
    build_served_model(
        target="OVA_OK",
        choice={
            "best": False,
            "labels": "raw",
            "channels": "all",
            "model": "cnn",
            "seed": 0,
            "fold": 1,
        },
        cell_dirs=[str(cell)],
        clean_path=scored.path / layout.clean_file("demo"),
        summary_path=None,
        dataset="demo",
        best_metric="test_macro_f1",
        cutoff={"rule": "youden_product", "recall": 0.95, "precision": 0.95},
        out_onnx=out / "model.onnx",
        out_card=out / "card.json",
    )
    scores = predict_batch(
        [scored.path / p for p in layout.demo_raw_files()],
        {"OVA_OK": out / "model.onnx"},
        serving_config()["dataset"]["columns"],
        serving_config()["cleaning"]["saturation"],
        serving_config()["cleaning"]["min_integral"],
        tmp_path / "scores.parquet",
        tmp_path / "scores.csv",
    )
    expected = pd.read_parquet(cell / layout.CELL_FILES["predictions"]).set_index("sample_id")
    got = scores.drop_duplicates("sample_id").set_index("sample_id").loc[expected.index]
    assert (got["OVA_OK.reason"] == "").all()
    diff = np.abs(
        got[["OVA_OK.prob_OK", "OVA_OK.prob_rest"]].to_numpy(np.float64)
        - expected[["prob_OK", "prob_rest"]].to_numpy(np.float64)
    )
    assert len(expected) > 50 and diff.max() <= TOLERANCE
    # its cutoffs are the cell's sheet's, so the decisions follow its test fold
    card = json.loads((out / "card.json").read_text())
    assert card["serving"]["kind"] == "cell" and card["parity"]["n"] == len(expected)


def test_the_ensemble_scores_as_the_mean_of_its_folds(scored: Workdir) -> None:
    served = _served(scored)
    members = [
        ServedModel.load(scored.path / layout.RESULTS / m["cell"] / layout.CELL_FILES["onnx"])
        for m in served.metadata["serving"]["members"]
    ]
    batch = read_batch_file(
        scored.path / layout.demo_raw_files()[0], serving_config()["dataset"]["columns"]
    )
    inputs = model_inputs(batch, served, **serving_config()["cleaning"])
    ok = inputs.reason == ""
    mean = np.mean(
        [m.probabilities(inputs.spectra[ok], inputs.tabular[ok]) for m in members], axis=0
    )
    scores = _scores(scored)
    mine = scores[scores["source_file"] == batch.table["source_file"].iloc[0]]
    got = mine[["OVA_OK.prob_OK", "OVA_OK.prob_rest"]].to_numpy(np.float64)[ok]
    assert np.abs(got - mean).max() <= TOLERANCE


def test_the_served_card_names_each_member_s_onnx_by_its_sha256(scored: Workdir) -> None:
    """The checksum the card records is the one the cell recorded, and the file's."""
    served = _served(scored)
    members = served.metadata["serving"]["members"]
    assert len(members) > 1
    for member in members:
        onnx_file = scored.path / layout.RESULTS / member["cell"] / layout.CELL_FILES["onnx"]
        assert member["onnx_sha256"] == sha256_of(onnx_file)


def _variant(frame: pd.DataFrame) -> pd.DataFrame:
    """Four clean rows: one with a NaN, one saturated, one with 380 a copy of 277, one as is."""
    rows = frame.iloc[:40]
    sums = {
        ch: rows[[c for c in rows if c.startswith(f"{ch}_")]].sum(axis=1)
        for ch in ("277", "380", "425")
    }
    good = rows[(sums["277"] > 200_000) & (sums["380"] > 300_000) & (sums["425"] > 400_000)]
    good = good[good[[c for c in good if c[:3] in ("277", "380", "425")]].max(axis=1) < 5000]
    out = good.iloc[:4].copy()
    out.iloc[0, out.columns.get_loc("380_400")] = np.nan
    out.iloc[1, out.columns.get_loc("425_500")] = 1e6
    out.iloc[2, [out.columns.get_loc(f"380_{w}") for w in range(295, 741)]] = out.iloc[
        2, [out.columns.get_loc(f"277_{w}") for w in range(295, 741)]
    ].to_numpy()
    return out


def test_unscorable_rows_are_listed_with_the_reason(scored: Workdir, tmp_path: Path) -> None:
    served = _served(scored)
    columns = serving_config()["dataset"]["columns"]
    cleaning = serving_config()["cleaning"]
    rows = _variant(demo_frame(scored))
    path = tmp_path / "rows.csv"
    path.write_bytes(csv_bytes(rows))
    scores = score_batch(read_batch_file(path, columns), {"OVA_OK": served}, **cleaning)
    reasons = list(scores["OVA_OK.reason"])
    assert reasons[0].startswith("nan: channel '380'")
    assert reasons[1].startswith("saturation: channel '425'")
    assert reasons[2].startswith("identical_channels: '277' and '380'")
    assert reasons[3] == ""
    # the row that is scored scores as in the study's batch
    batch = _scores(scored).drop_duplicates("sample_id").set_index("sample_id")
    assert scores["OVA_OK.prob_OK"].iloc[3] == pytest.approx(
        batch.loc[str(rows.index[3]), "OVA_OK.prob_OK"], abs=TOLERANCE
    )

    no_425 = rows.drop(columns=[c for c in rows if c.startswith("425_")])
    path.write_bytes(csv_bytes(no_425))
    reasons = score_batch(read_batch_file(path, columns), {"OVA_OK": served}, **cleaning)[
        "OVA_OK.reason"
    ]
    assert reasons.str.startswith("channel: the file has no channel '425'").all()

    shifted = rows.rename(columns=lambda c: f"277_{int(c[4:]) + 1}" if c.startswith("277_") else c)
    path.write_bytes(csv_bytes(shifted))
    reasons = score_batch(read_batch_file(path, columns), {"OVA_OK": served}, **cleaning)[
        "OVA_OK.reason"
    ]
    assert reasons.str.contains("axis: channel '277' is measured at 296-741 nm").all()

    no_brix = rows.drop(columns=["greffon_brix"])
    path.write_bytes(csv_bytes(no_brix))
    reasons = score_batch(read_batch_file(path, columns), {"OVA_OK": served}, **cleaning)[
        "OVA_OK.reason"
    ]
    if "greffon_brix" in served.tabular:
        assert reasons.str.startswith("tabular: the file has no column 'greffon_brix'").all()
    else:
        assert (reasons == "").iloc[3]
