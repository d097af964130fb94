"""Resumable training state: a cell killed after an epoch resumes to exactly the numbers of
an uninterrupted run, saves are spaced to bound their cost, and a state of another run is
not resumed."""

import json

import pandas as pd
import pytest
import torch
from cell_cases import inputs, outputs, results_of, spec

from spectragrid.train import resume as resume_module
from spectragrid.train.cell import CellSpec, run_cell
from spectragrid.train.resume import (
    ResumeSaver,
    ResumeStateIO,
    SavePolicy,
    min_unsaved_seconds,
    save_overhead,
)

pytestmark = pytest.mark.slow


class Killed(Exception):
    """Stands in for SIGKILL: the job stops right after an epoch's state was saved."""


def resumable_spec(**train) -> CellSpec:
    """Every kind of training state: random augmentation and mixup, a plateau schedule."""
    settings = {
        "epochs": 8,
        "batch_size": 64,
        "patience": 2,
        "mixup_alpha": 0.4,
        "scheduler": "plateau",
        "plateau_patience": 1,
        **train,
    }
    return spec(transforms={"da": True}, train=settings)


def kill_after(monkeypatch, epochs: int, save_overhead: float = 0.0) -> None:
    """Raise Killed after epoch `epochs`; by default the state of every epoch is saved."""
    monkeypatch.setattr(resume_module, "SAVE_OVERHEAD", save_overhead)
    # these cells train for well under the default minimum before a first save
    monkeypatch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "0")
    after_epoch = ResumeSaver.after_epoch

    def save_then_die(self, epoch, total, last):
        after_epoch(self, epoch, total, last)
        if epoch == epochs:
            raise Killed

    monkeypatch.setattr(ResumeSaver, "after_epoch", save_then_die)


@pytest.fixture(scope="module")
def uninterrupted(prepared):
    out = outputs(prepared / "whole")
    run_cell(
        resumable_spec(), *inputs(prepared), out, resume_path=prepared / "whole-state" / "last.ckpt"
    )
    return out


# "stop": killed after the epoch where early stopping ended training, before
# the outputs were written: resuming must not train another epoch
@pytest.mark.parametrize("killed_after", [2, "stop"])
def test_an_interrupted_cell_resumes_to_the_same_results(
    prepared, uninterrupted, monkeypatch, killed_after
):
    epochs_run = json.loads(uninterrupted.metrics.read_text())["epochs_run"]
    assert 2 < epochs_run < resumable_spec().train["epochs"]  # it did stop early
    if killed_after == "stop":
        killed_after = epochs_run
    state = prepared / f"state{killed_after}" / "last.ckpt"
    resumed = outputs(prepared / f"resumed{killed_after}")
    kill_after(monkeypatch, killed_after)
    with pytest.raises(Killed):
        run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state)
    assert state.exists() and not resumed.metrics.exists()
    monkeypatch.undo()

    run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state)
    card = json.loads(resumed.card.read_text())
    assert card["resumed_after_epoch"] == killed_after
    whole_card = json.loads(uninterrupted.card.read_text())
    assert whole_card["resumed_after_epoch"] is None
    # which path trained the model is part of the state: a run with nothing left to
    # train still reports it
    assert card["native"] == whole_card["native"]
    assert results_of(resumed) == results_of(uninterrupted)
    assert resumed.history.read_bytes() == uninterrupted.history.read_bytes()
    assert pd.read_parquet(resumed.predictions).equals(pd.read_parquet(uninterrupted.predictions))
    # the state is removed once the cell is complete
    assert not state.exists() and not state.parent.exists()


def test_a_state_not_saved_every_epoch_resumes_from_its_last_save(
    prepared, uninterrupted, monkeypatch, caplog
):
    """Saves are spaced to bound their cost; a kill loses the epochs since the last."""
    state = prepared / "spaced" / "last.ckpt"
    resumed = outputs(prepared / "resumed-spaced")
    # a save so dear that after the first epoch's none is due before the last epoch
    kill_after(monkeypatch, 2, save_overhead=1e-12)
    with caplog.at_level("INFO", logger="spectragrid.train"), pytest.raises(Killed):
        run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state)
    monkeypatch.undo()
    epochs = resumable_spec().train["epochs"]
    assert f"epoch 1/{epochs}: state saved for resumption" in caplog.messages
    assert any(m.startswith(f"epoch 2/{epochs} done: train loss") for m in caplog.messages)
    assert torch.load(state, weights_only=True)["spectragrid"]["epochs_done"] == 1

    caplog.clear()
    with caplog.at_level("INFO", logger="spectragrid.train"):
        run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state)
    assert f"resuming after epoch 1 of {epochs} from {state}" in caplog.messages
    assert json.loads(resumed.card.read_text())["resumed_after_epoch"] == 1
    assert results_of(resumed) == results_of(uninterrupted)
    assert resumed.history.read_bytes() == uninterrupted.history.read_bytes()


def test_a_resumed_run_logs_the_curves_of_the_history_it_resumes(prepared, monkeypatch):
    """Epochs a killed run trained after its last save are not in the curves twice."""
    state = prepared / "curved" / "last.ckpt"
    curves = prepared / "curved-curves"
    resumed = outputs(prepared / "resumed-curved")
    kill_after(monkeypatch, 3, save_overhead=1e-12)  # saved after epoch 1 only
    with pytest.raises(Killed):
        run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state, curves_dir=curves)
    monkeypatch.undo()
    assert pd.read_csv(curves / "metrics.csv")["step"].tolist() == [0, 1, 2, 3]

    run_cell(resumable_spec(), *inputs(prepared), resumed, resume_path=state, curves_dir=curves)
    history = pd.read_csv(resumed.history)
    logged = pd.read_csv(curves / "metrics.csv")
    assert logged["step"].tolist() == history["epoch"].tolist()
    assert logged["val_loss"].tolist() == history["val_loss"].tolist()


def test_the_saved_state_of_another_config_is_not_resumed(prepared, uninterrupted, monkeypatch):
    state = prepared / "stale" / "last.ckpt"
    kill_after(monkeypatch, 2)
    with pytest.raises(Killed):
        run_cell(
            resumable_spec(lr=0.01),
            *inputs(prepared),
            outputs(prepared / "stale-out"),
            resume_path=state,
        )
    monkeypatch.undo()
    assert state.exists()

    out = outputs(prepared / "after-edit")
    run_cell(resumable_spec(), *inputs(prepared), out, resume_path=state)
    assert json.loads(out.card.read_text())["resumed_after_epoch"] is None
    assert results_of(out) == results_of(uninterrupted)
    assert not state.exists()


def test_an_unreadable_state_is_discarded_and_training_starts_afresh(
    prepared, uninterrupted, caplog
):
    state = prepared / "garbled" / "last.ckpt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a checkpoint")
    out = outputs(prepared / "after-garbled")
    with caplog.at_level("WARNING", logger="spectragrid.train"):
        run_cell(resumable_spec(), *inputs(prepared), out, resume_path=state)
    assert any(m.startswith(f"ignoring unreadable resume state {state}") for m in caplog.messages)
    assert json.loads(out.card.read_text())["resumed_after_epoch"] is None
    assert results_of(out) == results_of(uninterrupted)


def test_a_cell_shorter_than_the_minimum_unsaved_time_saves_nothing(prepared, caplog):
    """Its state would cost a save and protect less training than a restart costs."""
    state = prepared / "short" / "last.ckpt"
    writes = []
    original = ResumeStateIO.save_checkpoint

    def counting(self, checkpoint, path, storage_options=None):
        writes.append(checkpoint["spectragrid"]["epochs_done"])
        original(self, checkpoint, path, storage_options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ResumeStateIO, "save_checkpoint", counting)
        patch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "3600")
        with caplog.at_level("INFO", logger="spectragrid.train"):
            out = outputs(prepared / "short-out")
            run_cell(resumable_spec(), *inputs(prepared), out, resume_path=state)
        assert writes == []
        assert not any("state saved" in m for m in caplog.messages)
        assert any(m.startswith("epoch 1/8 done") for m in caplog.messages)

        # with no minimum, the first epoch's state is saved, and the last one's
        patch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "0")
        out = outputs(prepared / "unshort-out")
        run_cell(resumable_spec(), *inputs(prepared), out, resume_path=state)
        epochs_run = json.loads(out.metrics.read_text())["epochs_run"]
        assert writes[0] == 1 and writes[-1] == epochs_run
    assert not state.exists()


@pytest.mark.parametrize("value", ["ten", "-1", "nan"])
def test_a_bad_minimum_unsaved_time_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", value)
    with pytest.raises(ValueError, match="SPECTRAGRID_MIN_UNSAVED_SECONDS"):
        min_unsaved_seconds()


@pytest.mark.parametrize("value", ["ten", "-1", "nan"])
def test_a_bad_save_overhead_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("SPECTRAGRID_SAVE_OVERHEAD", value)
    with pytest.raises(ValueError, match="SPECTRAGRID_SAVE_OVERHEAD"):
        save_overhead()


def test_a_save_overhead_of_zero_saves_after_every_epoch_whatever_a_save_cost(monkeypatch):
    monkeypatch.setenv("SPECTRAGRID_MIN_UNSAVED_SECONDS", "0")
    policy = SavePolicy()
    policy.saved(started=0.0)  # a save that took as long as the process has run
    assert not policy.due(last_epoch=False)
    monkeypatch.setenv("SPECTRAGRID_SAVE_OVERHEAD", "0")
    policy = SavePolicy()
    policy.saved(started=0.0)
    assert policy.due(last_epoch=False)
