"""The training loop: an evaluation before the first epoch, early stopping on the monitored
metric, the best weights kept, the same numbers for the same seed."""

from __future__ import annotations

import math

import pytest
import torch

from spectragrid.core.config import complete_model
from spectragrid.train.batches import Arrays
from spectragrid.train.loop import FitResult, fit
from spectragrid.train.models import build_model
from spectragrid.train.record import HISTORY_COLUMNS
from spectragrid.train.settings import TrainSettings
from spectragrid.train.validation import validation_row

pytestmark = pytest.mark.slow
PARAMS = {"widths": [16, 16], "kernel": 3, "pool": 2}


def arrays(n: int, seed: int, signal: float) -> Arrays:
    """Spectra (n, 3, 64) whose class (of 2) raises the first channel by `signal`."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    spectra = torch.rand(n, 3, 64, generator=g)
    spectra[:, 0] += signal * labels[:, None]
    return Arrays(spectra, torch.rand(n, 2, generator=g), labels)


def train_model(seed: int = 0, signal: float = 0.3, **train) -> tuple[FitResult, Arrays]:
    settings = TrainSettings.from_config(
        complete_model({"arch": "cnn", "train": {"batch_size": 32, **train}})["train"]
    )
    torch.manual_seed(seed)
    model = build_model(
        "cnn", complete_model({"arch": "cnn", "params": PARAMS})["params"], 3, 64, 2, 2
    )
    train_rows, val_rows = arrays(192, seed=1, signal=signal), arrays(96, seed=2, signal=signal)
    model.fit_scaling(train_rows.spectra.numpy(), train_rows.tabular.numpy())
    return fit(model, train_rows, val_rows, settings, n_classes=2, seed=seed), val_rows


def test_the_history_has_an_evaluation_before_training_and_one_row_per_epoch():
    result, _ = train_model(epochs=3, patience=3, lr=0.003)
    assert [list(row) for row in result.history] == [list(HISTORY_COLUMNS)] * 4
    assert [row["epoch"] for row in result.history] == [0, 1, 2, 3]
    assert math.isnan(result.history[0]["train_loss"])
    assert all(row["train_loss"] > 0 for row in result.history[1:])
    assert [row["lr"] for row in result.history] == [0.003] * 4
    assert len(result.epoch_seconds) == len(result.step_seconds) == 3
    assert result.device == "cpu" and result.resumed_from is None


def test_early_stopping_ends_after_patience_epochs_and_keeps_the_best_weights():
    """Labels without signal: the validation score wanders, and stops improving."""
    result, val = train_model(signal=0.0, epochs=30, patience=2, precision="32-true")
    scores = [row["val_macro_f1"] for row in result.history]
    epochs_run = len(scores) - 1
    assert epochs_run < 30  # it did stop early
    # the best epoch is the first with the highest score after training began
    assert result.best_epoch == 1 + scores[1:].index(max(scores[1:]))
    assert epochs_run == result.best_epoch + 2
    # and the returned model carries that epoch's weights
    again = validation_row(
        result.model, val, torch.autocast("cpu", enabled=False), torch.device("cpu"), 2
    )
    assert again["val_macro_f1"] == scores[result.best_epoch]
    assert again["val_loss"] == result.history[result.best_epoch]["val_loss"]


def test_the_same_seed_gives_the_same_numbers_and_another_seed_others():
    first, _ = train_model(seed=0, epochs=2, patience=2, mixup_alpha=0.4)
    second, _ = train_model(seed=0, epochs=2, patience=2, mixup_alpha=0.4)
    other, _ = train_model(seed=1, epochs=2, patience=2, mixup_alpha=0.4)
    assert first.history == second.history
    for name, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[name]), name
    assert first.history != other.history
