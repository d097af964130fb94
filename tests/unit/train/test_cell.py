"""One training cell through the library: determinism, records, ONNX parity, clean labels."""

import json
from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
import yaml

from spectragrid.core.layout import CELL_FILES
from spectragrid.data.demo import generate_demo
from spectragrid.data.ingest import ingest_with_config
from spectragrid.data.splits import split_clean_file
from spectragrid.train.cell import CellOutputs, CellSpec, run_cell
from spectragrid.train.training import Arrays

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    base = tmp_path_factory.mktemp("cell")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    demo = generate_demo(base / "demo", n_samples=300, seed=1, noise_rate=0.1)
    ingest_with_config(demo["raw_files"], base, config)
    split_clean_file(base / "clean.parquet", base / "folds.parquet", seed=0, k=3)
    return base


def _spec(labels="raw"):
    return CellSpec(
        dataset="demo",
        labels=labels,
        target="AVA_IN",
        target_spec="AVA IN",
        channels_name="all",
        channels=["277", "380", "425"],
        model="cnn",
        arch="cnn",
        model_params={"widths": [8, 8, 8]},
        train={"epochs": 2, "batch_size": 64, "patience": 2},
        tabular=["greffon_transmittance", "greffon_brix"],
        seed=0,
        fold=1,
        k=3,
    )


def _outputs(folder: Path) -> CellOutputs:
    folder.mkdir(parents=True, exist_ok=True)
    return CellOutputs(**{key: folder / name for key, name in CELL_FILES.items()})


def test_same_config_and_seed_give_identical_metrics(prepared):
    a = _outputs(prepared / "a")
    b = _outputs(prepared / "b")
    run_cell(_spec(), prepared / "clean.parquet", prepared / "folds.parquet", None, a)
    run_cell(_spec(), prepared / "clean.parquet", prepared / "folds.parquet", None, b)
    assert a.metrics.read_bytes() == b.metrics.read_bytes()
    assert pd.read_parquet(a.predictions).equals(pd.read_parquet(b.predictions))


def test_cell_records(prepared):
    out = _outputs(prepared / "records")
    metrics = run_cell(_spec(), prepared / "clean.parquet", prepared / "folds.parquet", None, out)
    assert metrics["target"]["classes"] == ["OK", "CROCHET", "VR", "NC"]
    assert metrics["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert metrics["onnx_parity"]["argmax_agree"] == 1.0
    folds = pd.read_parquet(prepared / "folds.parquet")
    predictions = pd.read_parquet(out.predictions)
    # the test part is exactly fold 1
    assert set(predictions["sample_id"]) == set(folds.loc[folds["fold"] == 1, "sample_id"])
    history = pd.read_csv(out.history)
    assert history["epoch"].tolist() == [0, 1, 2]
    state = torch.load(out.checkpoint, weights_only=True)
    assert state["classes"] == ["OK", "CROCHET", "VR", "NC"]
    model = onnx.load(str(out.onnx))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["classes"]) == ["OK", "CROCHET", "VR", "NC"]
    assert (
        meta["display_name"] == "cnn y=['AVA', 'IN'] c=('277', '380', '425') t=() 1-3 s=0 eps=0.0"
    )
    assert [i.name for i in model.graph.input] == ["data_spectra", "data_tabular"]
    card = json.loads(out.card.read_text())
    assert card["parameters"] > 0 and card["flops_per_sample"] > 0


def test_clean_cell_drops_flagged_rows_from_training_only(prepared):
    raw = run_cell(
        _spec(),
        prepared / "clean.parquet",
        prepared / "folds.parquet",
        None,
        _outputs(prepared / "raw"),
    )
    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id"])
    folds = pd.read_parquet(prepared / "folds.parquet")
    fold_of = dict(zip(folds["sample_id"], folds["fold"], strict=True))
    # flag 5 rows of each part: test fold 1, validation fold 2, training fold 0
    flagged = [s for f in (0, 1, 2) for s in [i for i in table["sample_id"] if fold_of[i] == f][:5]]
    issues = prepared / "issues.csv"
    pd.DataFrame(
        {
            "sample_id": flagged,
            "given_label": "OK",
            "suggested_label": "VR",
            "label_quality": 0.1,
            "rank": np.arange(1, 16),
        }
    ).to_csv(issues, index=False)
    clean = run_cell(
        _spec("clean"),
        prepared / "clean.parquet",
        prepared / "folds.parquet",
        issues,
        _outputs(prepared / "clean"),
    )
    assert clean["n_train"] == raw["n_train"] - 5
    assert clean["n_val"] == raw["n_val"] - 5
    assert clean["n_test"] == raw["n_test"]
    assert clean["n_removed_flagged"] == 10
    predictions = pd.read_parquet(prepared / "clean" / "predictions.parquet")
    assert predictions["flagged"].sum() == 5
    assert clean["test_unflagged"] is not None and raw["test_unflagged"] is None


def test_every_training_option_runs_through_a_cell(prepared):
    import dataclasses

    spec = dataclasses.replace(
        _spec(),
        transforms={"da": True, "new_fluorimeter": {"p": 0.5}},
        train={
            "epochs": 3,
            "batch_size": 64,
            "patience": 3,
            "optimizer": "adamw",
            "weight_decay": 0.01,
            "scheduler": "three_plateau",
            "eps": 0.1,
            "class_weights": "balanced",
            "focal_gamma": 2.0,
            "mixup_alpha": 0.4,
            "precision": "bf16-mixed",
        },
    )
    out = _outputs(prepared / "options")
    metrics = run_cell(spec, prepared / "clean.parquet", prepared / "folds.parquet", None, out)
    assert metrics["display_name"].startswith(
        "cnn y=['AVA', 'IN'] c=('277', '380', '425') t=('da', 'new_fluorimeter') 1-3 s=0 eps=0.1"
    )
    assert metrics["transforms"] == ["da", "new_fluorimeter"]
    assert metrics["onnx_parity"]["max_abs_diff"] <= 1e-4
    assert set(metrics["test_per_class"]) == {"OK", "CROCHET", "VR", "NC"}
    history = pd.read_csv(out.history)
    # three plateaus over 3 epochs (2e<n: x1, 4e<3n: x0.1, else x0.01) are 2/1/0
    # epochs; each row has the lr its epoch trained with, row 0 the initial lr
    assert history["lr"].round(8).tolist() == [0.001, 0.001, 0.001, 0.0001]
    card = json.loads(out.card.read_text())
    assert card["precision"] == "bf16-mixed"


def test_plateau_schedule_cuts_the_lr_after_each_epoch_without_improvement(prepared):
    """ReduceLROnPlateau on the validation loss, stepped once per epoch, replayed by hand."""
    import dataclasses

    spec = dataclasses.replace(
        _spec(),
        train={
            "epochs": 8,
            "batch_size": 64,
            "patience": 8,
            "lr": 0.01,
            "scheduler": "plateau",
            "plateau_patience": 0,
            "plateau_factor": 0.5,
        },
    )
    out = _outputs(prepared / "plateau")
    run_cell(spec, prepared / "clean.parquet", prepared / "folds.parquet", None, out)
    history = pd.read_csv(out.history)
    expected, lr, best = [0.01, 0.01], 0.01, np.inf
    for val_loss in history["val_loss"][1:-1]:
        if val_loss < best * (1 - 1e-4):  # ReduceLROnPlateau's default relative threshold
            best = val_loss
        else:
            lr *= 0.5
        expected.append(lr)
    assert history["lr"].tolist() == pytest.approx(expected)
    assert expected[-1] < 0.01  # the case exercises at least one cut


@pytest.mark.parametrize("action", ["relabel", "downweight"])
def test_clean_cell_actions(prepared, action):
    import dataclasses

    table = pd.read_parquet(prepared / "clean.parquet", columns=["sample_id"])
    issues = prepared / f"issues_{action}.csv"
    pd.DataFrame(
        {
            "sample_id": table["sample_id"][:30],
            "given_label": "OK",
            "suggested_label": "VR",
            "label_quality": 0.1,
            "rank": np.arange(1, 31),
        }
    ).to_csv(issues, index=False)
    spec = dataclasses.replace(_spec("clean"), action=action, downweight=0.2)
    metrics = run_cell(
        spec,
        prepared / "clean.parquet",
        prepared / "folds.parquet",
        issues,
        _outputs(prepared / action),
    )
    raw = json.loads((prepared / "raw" / "metrics.json").read_text())
    assert metrics["label_action"] == action
    assert metrics["n_removed_flagged"] == 0
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (
        raw["n_train"],
        raw["n_val"],
        raw["n_test"],
    )
    changed = metrics["n_relabelled"] if action == "relabel" else metrics["n_downweighted"]
    # the flagged rows outside the test fold, and no others
    assert 0 < changed < 30


@pytest.mark.parametrize("n", [129, 128, 130, 1, 64])
def test_batches_match_their_announced_count(n):
    """An epoch's training batches cover every row once, as many as announced, none of one."""
    from spectragrid.train.training import batch_bounds, batches, epoch_order

    data = Arrays(torch.zeros(n, 1, 4), torch.zeros(n, 0), torch.zeros(n, dtype=torch.int64))
    sizes = [len(b[2]) for b in batches(data, 64, epoch_order(n, seed=0, epoch=0))]
    assert len(sizes) == len(batch_bounds(n, 64, shuffle=True)) and sum(sizes) == n
    assert min(sizes) > 1 or n == 1


def test_a_class_smaller_than_the_fold_count_fails_the_cell_before_any_output(prepared):
    from dataclasses import replace

    from spectragrid.data.targets import TargetError

    counts = pd.read_parquet(prepared / "clean.parquet")["full_truth"].value_counts()
    rare = counts.index[counts < 3][0]
    spec = replace(
        _spec(),
        target="rare_vs_ok",
        target_spec={"column": "full_truth", "classes": {"ok": ["OK0"], "rare": [rare]}},
    )
    out = _outputs(prepared / "rare")
    with pytest.raises(TargetError) as info:
        run_cell(spec, prepared / "clean.parquet", prepared / "folds.parquet", None, out)
    assert f"targets.rare_vs_ok: class(es) rare ({counts[rare]}) have fewer samples than " in str(
        info.value
    )
    assert "splits.k = 3" in str(info.value)
    assert list((prepared / "rare").iterdir()) == []


class Killed(Exception):
    """Stands in for SIGKILL: the job stops right after an epoch's state was saved."""


def _resumable_spec() -> CellSpec:
    """Every kind of training state: random augmentation and mixup, a plateau schedule."""
    import dataclasses

    return dataclasses.replace(
        _spec(),
        transforms={"da": True},
        train={
            "epochs": 8,
            "batch_size": 64,
            "patience": 2,
            "mixup_alpha": 0.4,
            "scheduler": "plateau",
            "plateau_patience": 1,
        },
    )


def _kill_after(monkeypatch, epochs: int, save_overhead: float = 0.0) -> None:
    """Raise Killed after epoch `epochs`; by default the state of every epoch is saved."""
    from spectragrid.train import training

    monkeypatch.setattr(training, "SAVE_OVERHEAD", save_overhead)
    # these cells train for well under the default minimum before a first save
    monkeypatch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "0")
    save = training.ResumeCheckpoint.on_train_epoch_end

    def save_then_die(self, trainer, module):
        save(self, trainer, module)
        if trainer.current_epoch + 1 == epochs:
            raise Killed

    monkeypatch.setattr(training.ResumeCheckpoint, "on_train_epoch_end", save_then_die)


@pytest.fixture(scope="module")
def uninterrupted(prepared):
    out = _outputs(prepared / "whole")
    inputs = (prepared / "clean.parquet", prepared / "folds.parquet", None)
    run_cell(_resumable_spec(), *inputs, out, resume_path=prepared / "whole-state" / "last.ckpt")
    return out


# "stop": killed after the epoch where early stopping ended training, before
# the outputs were written: resuming must not train another epoch
@pytest.mark.parametrize("killed_after", [2, "stop"])
def test_an_interrupted_cell_resumes_to_the_same_results(
    prepared, uninterrupted, monkeypatch, killed_after
):
    epochs_run = json.loads(uninterrupted.metrics.read_text())["epochs_run"]
    assert 2 < epochs_run < _resumable_spec().train["epochs"]  # it did stop early
    if killed_after == "stop":
        killed_after = epochs_run
    inputs = (prepared / "clean.parquet", prepared / "folds.parquet", None)
    state = prepared / f"state{killed_after}" / "last.ckpt"
    resumed = _outputs(prepared / f"resumed{killed_after}")
    _kill_after(monkeypatch, killed_after)
    with pytest.raises(Killed):
        run_cell(_resumable_spec(), *inputs, resumed, resume_path=state)
    assert state.exists() and not resumed.metrics.exists()
    monkeypatch.undo()

    run_cell(_resumable_spec(), *inputs, resumed, resume_path=state)
    card = json.loads(resumed.card.read_text())
    assert card["resumed_after_epoch"] == killed_after
    assert json.loads(uninterrupted.card.read_text())["resumed_after_epoch"] is None
    assert resumed.metrics.read_bytes() == uninterrupted.metrics.read_bytes()
    assert resumed.history.read_bytes() == uninterrupted.history.read_bytes()
    assert pd.read_parquet(resumed.predictions).equals(pd.read_parquet(uninterrupted.predictions))
    # the state is removed once the cell is complete
    assert not state.exists() and not state.parent.exists()


def test_a_state_not_saved_every_epoch_resumes_from_its_last_save(
    prepared, uninterrupted, monkeypatch, caplog
):
    """Saves are spaced to bound their cost; a kill loses the epochs since the last."""
    inputs = (prepared / "clean.parquet", prepared / "folds.parquet", None)
    state = prepared / "spaced" / "last.ckpt"
    resumed = _outputs(prepared / "resumed-spaced")
    # a save so dear that after the first epoch's none is due before the last epoch
    _kill_after(monkeypatch, 2, save_overhead=1e-12)
    with caplog.at_level("INFO", logger="spectragrid.train.training"), pytest.raises(Killed):
        run_cell(_resumable_spec(), *inputs, resumed, resume_path=state)
    monkeypatch.undo()
    epochs = _resumable_spec().train["epochs"]
    assert f"epoch 1/{epochs} done, state saved for resumption" in caplog.messages
    assert f"epoch 2/{epochs} done" in caplog.messages
    assert torch.load(state, weights_only=True)["spectragrid"]["epochs_done"] == 1

    run_cell(_resumable_spec(), *inputs, resumed, resume_path=state)
    assert json.loads(resumed.card.read_text())["resumed_after_epoch"] == 1
    assert resumed.metrics.read_bytes() == uninterrupted.metrics.read_bytes()
    assert resumed.history.read_bytes() == uninterrupted.history.read_bytes()


def test_the_saved_state_of_another_config_is_not_resumed(prepared, uninterrupted, monkeypatch):
    import dataclasses

    inputs = (prepared / "clean.parquet", prepared / "folds.parquet", None)
    state = prepared / "stale" / "last.ckpt"
    edited = dataclasses.replace(_resumable_spec(), train={**_resumable_spec().train, "lr": 0.01})
    _kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        run_cell(edited, *inputs, _outputs(prepared / "stale-out"), resume_path=state)
    monkeypatch.undo()
    assert state.exists()

    out = _outputs(prepared / "after-edit")
    run_cell(_resumable_spec(), *inputs, out, resume_path=state)
    assert json.loads(out.card.read_text())["resumed_after_epoch"] is None
    assert out.metrics.read_bytes() == uninterrupted.metrics.read_bytes()
    assert not state.exists()


def test_a_cell_shorter_than_the_minimum_unsaved_time_saves_nothing(prepared, caplog):
    """Its state would cost a save and protect less training than a restart costs."""
    inputs = (prepared / "clean.parquet", prepared / "folds.parquet", None)
    state = prepared / "short" / "last.ckpt"
    writes = []
    from spectragrid.train import training

    original = training.ResumeStateIO.save_checkpoint

    def counting(self, checkpoint, path, storage_options=None):
        writes.append(checkpoint["spectragrid"]["epochs_done"])
        original(self, checkpoint, path, storage_options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training.ResumeStateIO, "save_checkpoint", counting)
        patch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "3600")
        with caplog.at_level("INFO", logger="spectragrid.train.training"):
            out = _outputs(prepared / "short-out")
            run_cell(_resumable_spec(), *inputs, out, resume_path=state)
        assert writes == []
        assert not any("state saved" in m for m in caplog.messages)
        assert any(m.startswith("epoch 1/8 done") for m in caplog.messages)

        # with no minimum, the first epoch's state is saved, and the last one's
        patch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "0")
        out = _outputs(prepared / "unshort-out")
        run_cell(_resumable_spec(), *inputs, out, resume_path=state)
        epochs_run = json.loads(out.metrics.read_text())["epochs_run"]
        assert writes[0] == 1 and writes[-1] == epochs_run
    assert not state.exists()


@pytest.mark.parametrize("value", ["ten", "-1", "nan"])
def test_a_bad_minimum_unsaved_time_is_refused_by_name(monkeypatch, value):
    from spectragrid.train.training import min_unsaved_seconds

    monkeypatch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", value)
    with pytest.raises(ValueError, match="SPECTRAGRID_MIN_UNSAVED_SECONDS"):
        min_unsaved_seconds()
