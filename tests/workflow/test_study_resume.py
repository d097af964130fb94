"""A training job killed with SIGKILL mid-epoch: the next snakemake resumes it, and only it.

On a copy of the finished tiny study, snakemake trains two new cells with
`--keep-going`: a quick one, and a slow one whose training process is killed
once its log says that the state of epoch 2 or later is saved (saves are
spaced to bound their cost, so not every epoch's is). The next snakemake must plan only
the killed cell, leave the quick one untouched, and resume the killed one
after its last saved epoch; its outputs must equal those of the same cell
trained again without interruption.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from tiny_study import SNAKEMAKE, SNAKEMAKE_TIMEOUT, Workdir, tiny_config

pytestmark = pytest.mark.slow

EPOCHS = 40
CELL = "demo/cells/raw/OVA_OK/all/{model}/s0/f0of3"


def _config() -> dict:
    config = tiny_config()
    quick = yaml.safe_load(yaml.safe_dump(config["models"]["small"]))
    quick["params"]["widths"] = [5, 5, 5]
    slow = yaml.safe_load(yaml.safe_dump(config["models"]["cnn"]))
    slow["params"]["widths"] = [16, 16, 16]
    slow["train"].update(epochs=EPOCHS, patience=EPOCHS, batch_size=16)
    config["models"].update(quick=quick, slow=slow)
    return config


def _saved_epochs(log: Path) -> list[int]:
    text = log.read_text() if log.exists() else ""
    return [int(n) for n in re.findall(rf"epoch (\d+)/{EPOCHS}: state saved", text)]


def _kill_training_after_epoch(snakemake: subprocess.Popen, log: Path, epoch: int) -> None:
    """SIGKILL the process that runs the cell's training script once `log` reports the
    state of `epoch` or a later one saved."""
    deadline = time.monotonic() + SNAKEMAKE_TIMEOUT
    while not any(saved >= epoch for saved in _saved_epochs(log)):
        assert snakemake.poll() is None, "snakemake ended before the slow cell reached the epoch"
        assert time.monotonic() < deadline, "the slow cell never reached the epoch"
        time.sleep(0.01)
    trainers = []
    for child in psutil.Process(snakemake.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that just ended
            if any(Path(f.path) == log.resolve() for f in child.open_files()) and any(
                "train.py" in part for part in child.cmdline()
            ):
                trainers.append(child)
    assert len(trainers) == 1, trainers
    trainers[0].send_signal(signal.SIGKILL)


def test_a_killed_training_job_resumes_from_its_last_epoch(finished_tiny_study, tmp_path):
    work = Workdir(tmp_path)
    for folder in ("results", "resources", ".snakemake/metadata"):
        shutil.copytree(finished_tiny_study.path / folder, tmp_path / folder)
    work.write_config(_config())
    quick, slow = (tmp_path / "results" / CELL.format(model=m) for m in ("quick", "slow"))
    targets = [str((cell / "metrics.json").relative_to(tmp_path)) for cell in (quick, slow)]
    log = tmp_path / "results" / "logs" / CELL.format(model="slow") / "train.log"
    state = tmp_path / "results" / ".resume" / CELL.format(model="slow") / "last.ckpt"

    with open(tmp_path / "killed-run.txt", "w") as output:
        run = subprocess.Popen(
            [*SNAKEMAKE, "--cores", "1", "--keep-going", *targets],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            # the slow cell trains for seconds: below the default minimum before a save
            env=dict(os.environ, PYTHONHASHSEED="0", SPECTRAGRID_MIN_UNSAVED_SECONDS="0"),
        )
        _kill_training_after_epoch(run, log, epoch=2)
        assert run.wait(timeout=SNAKEMAKE_TIMEOUT) != 0
    assert (quick / "metrics.json").exists()
    assert not (slow / "metrics.json").exists()
    saved = torch.load(state, weights_only=True)["spectragrid"]["epochs_done"]
    assert 2 <= saved < EPOCHS

    quick_mtimes = {p.name: p.stat().st_mtime_ns for p in quick.iterdir()}
    assert work.planned_jobs(*targets) == {"train": 1}
    work.snakemake(*targets)
    assert {p.name: p.stat().st_mtime_ns for p in quick.iterdir()} == quick_mtimes
    card = json.loads((slow / "card.json").read_text())
    assert card["resumed_after_epoch"] == saved
    text = log.read_text()
    assert f"resuming after epoch {saved} of {EPOCHS}" in text
    # nothing before the saved epoch was trained again
    done = [int(n) for n in re.findall(rf"epoch (\d+)/{EPOCHS} done", text)]
    assert done == list(range(saved + 1, EPOCHS + 1))
    assert not state.exists()
    resumed = {name: (slow / name).read_bytes() for name in ("metrics.json", "history.csv")}

    # the same cell trained again without interruption
    work.snakemake(targets[1], "--forcerun", targets[1])
    assert json.loads((slow / "card.json").read_text())["resumed_after_epoch"] is None
    assert (slow / "history.csv").read_bytes() == resumed["history.csv"]
    again, before = (
        json.loads(m) for m in ((slow / "metrics.json").read_text(), resumed["metrics.json"])
    )
    # the checksums differ where the card records timings and the resumed epoch
    assert again.pop("outputs")["model.ckpt"] == before.pop("outputs")["model.ckpt"]
    assert again == before
    assert before["epochs_run"] == EPOCHS
