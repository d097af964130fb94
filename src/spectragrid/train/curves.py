"""Per-epoch learning curves through Fabric's loggers, for browsing while cells train.

A cell's curves go to one folder (core.layout.curves_dir: results/logs/<cell
key>/curves): `metrics.csv` from Fabric's CSVLogger always, and TensorBoard
event files where the `tensorboard` package is installed (the `tensorboard`
extra), so that `tensorboard --logdir results/` shows every cell. history.csv
stays the cell's record; the curves hold the same rows. A run starts the
folder afresh and logs the rows it already has (a resumed run's), so the
curves never hold epochs that a killed run trained after its last save.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from pathlib import Path

from lightning_fabric.loggers import CSVLogger, Logger, TensorBoardLogger


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def curve_loggers(folder: Path | None) -> list[Logger]:
    """Fresh loggers writing straight into `folder` (emptied first); none without one."""
    if folder is None:
        return []
    shutil.rmtree(folder, ignore_errors=True)
    # Flushed every epoch: a curve shows an epoch as soon as it ends, for the
    # cost of appending one line.
    loggers: list[Logger] = [CSVLogger(folder, name="", version="", flush_logs_every_n_steps=1)]
    if tensorboard_available():
        # flush_secs: the events reach the disk within seconds, for TensorBoard to show
        loggers.append(
            TensorBoardLogger(folder, name="", version="", default_hp_metric=False, flush_secs=5)
        )
    return loggers


def curve_values(row: dict[str, float]) -> dict[str, float]:
    """A history row as logged values: the epoch is the step, and epoch 0's missing
    training loss (NaN) is left out rather than drawn."""
    return {
        key: value
        for key, value in row.items()
        if key != "epoch" and not (isinstance(value, float) and math.isnan(value))
    }


def finish(loggers: list[Logger]) -> None:
    for logger in loggers:
        logger.finalize("success")
