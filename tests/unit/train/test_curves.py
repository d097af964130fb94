"""Per-epoch curves through Fabric's loggers: a CSV file always, TensorBoard events where
tensorboard is installed, the same rows as the history."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from lightning_fabric import Fabric

from spectragrid.train.curves import curve_loggers, curve_values, finish

HISTORY = [
    {"epoch": 0, "train_loss": math.nan, "val_loss": 0.7, "val_macro_f1": 0.4, "lr": 0.001},
    {"epoch": 1, "train_loss": 0.6, "val_loss": 0.65, "val_macro_f1": 0.5, "lr": 0.001},
    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.6, "val_macro_f1": 0.55, "lr": 0.0005},
]


def log_history(folder, rows=HISTORY) -> list:
    loggers = curve_loggers(folder)
    fabric = Fabric(accelerator="cpu", devices=1, loggers=loggers)
    for row in rows:
        fabric.log_dict(curve_values(row), step=row["epoch"])
    finish(loggers)
    return loggers


def test_the_csv_curves_hold_the_history_rows(tmp_path):
    log_history(tmp_path / "curves")
    logged = pd.read_csv(tmp_path / "curves" / "metrics.csv").set_index("step")
    assert logged.index.tolist() == [0, 1, 2]
    assert logged["val_macro_f1"].tolist() == [0.4, 0.5, 0.55]
    assert logged["lr"].tolist() == [0.001, 0.001, 0.0005]
    # epoch 0 has no training loss: left out, not drawn as a value
    assert math.isnan(logged.loc[0, "train_loss"])
    assert logged.loc[1:, "train_loss"].tolist() == [0.6, 0.5]


def test_each_epoch_is_on_disk_when_it_ends(tmp_path):
    loggers = curve_loggers(tmp_path)
    fabric = Fabric(accelerator="cpu", devices=1, loggers=loggers)
    fabric.log_dict(curve_values(HISTORY[0]), step=0)
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [0]


def test_a_run_starts_its_curves_afresh(tmp_path):
    log_history(tmp_path)
    (tmp_path / "stale.txt").write_text("an earlier run's file")
    log_history(tmp_path, HISTORY[:2])
    assert pd.read_csv(tmp_path / "metrics.csv")["step"].tolist() == [0, 1]
    assert not (tmp_path / "stale.txt").exists()


def test_no_folder_no_loggers():
    assert curve_loggers(None) == []


def test_tensorboard_events_go_to_the_same_folder(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    loggers = log_history(tmp_path)
    assert [type(logger).__name__ for logger in loggers] == ["CSVLogger", "TensorBoardLogger"]
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    scalars = events.Scalars("val_macro_f1")
    assert [(s.step, round(s.value, 6)) for s in scalars] == [(0, 0.4), (1, 0.5), (2, 0.55)]
    assert [s.step for s in events.Scalars("train_loss")] == [1, 2]
    assert torch.tensor([s.value for s in events.Scalars("lr")]).allclose(
        torch.tensor([0.001, 0.001, 0.0005])
    )
