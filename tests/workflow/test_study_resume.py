"""A training job killed with SIGKILL mid-epoch: the next snakemake resumes it, and only it.

On a copy of the finished tiny study, snakemake trains two new fold groups
(the K = 3 folds of one model each, one job per group) with `--keep-going`: a
quick one, and a slow one whose training process is killed once its log says
that the second fold's state of epoch 2 or later is saved (saves are spaced to
bound their cost, so not every epoch's is). Snakemake removes every output of
the failed job, the finished first fold's too. The next snakemake must plan
only the killed job, leave the quick group untouched, put the first fold's
outputs back without training it again, and resume the second fold after its
last saved epoch; the resumed fold's outputs must equal those of the same
fold trained again without interruption.
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
GROUP = "demo/cells/raw/OVA_OK/all/{model}/s0"
KILLED_FOLD = 1


def _config() -> dict:
    config = tiny_config()
    quick = yaml.safe_load(yaml.safe_dump(config["models"]["small"]))
    quick["params"]["widths"] = [5, 5, 5]
    slow = yaml.safe_load(yaml.safe_dump(config["models"]["cnn"]))
    slow["params"]["widths"] = [16, 16, 16]
    slow["train"].update(epochs=EPOCHS, patience=EPOCHS, batch_size=16)
    config["models"].update(quick=quick, slow=slow)
    return config


def _fold_lines(log: Path, fold: int) -> str:
    """The lines of the group's log from fold `fold`'s heading to the next fold's."""
    text = log.read_text() if log.exists() else ""
    parts = re.split(r"(?m)^.*fold (\d+) of 3 \(.*$", text)
    # re.split keeps the captured fold numbers: [before, 0, lines of 0, 1, lines of 1, ...]
    return "".join(
        lines for number, lines in zip(parts[1::2], parts[2::2], strict=True) if int(number) == fold
    )


def _saved_epochs(log: Path) -> list[int]:
    lines = _fold_lines(log, KILLED_FOLD)
    return [int(n) for n in re.findall(rf"epoch (\d+)/{EPOCHS}: state saved", lines)]


def _kill_training_after_epoch(snakemake: subprocess.Popen, log: Path, epoch: int) -> None:
    """SIGKILL the process that runs the group's training script once `log` reports the
    killed fold's state of `epoch` or a later one saved."""
    deadline = time.monotonic() + SNAKEMAKE_TIMEOUT
    while not any(saved >= epoch for saved in _saved_epochs(log)):
        assert snakemake.poll() is None, "snakemake ended before the slow fold reached the epoch"
        assert time.monotonic() < deadline, "the slow fold never reached the epoch"
        time.sleep(0.01)
    # With --cores 1 the one training script running is the slow group's. (In a warm run
    # it is the job Snakemake started, whose child trains: killing it kills both.)
    trainers = []
    for child in psutil.Process(snakemake.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # a process that just ended
            if any("train.py" in part for part in child.cmdline()):
                trainers.append(child)
    assert len(trainers) == 1, trainers
    trainers[0].send_signal(signal.SIGKILL)


def test_a_killed_training_job_resumes_from_its_last_epoch(finished_tiny_study, tmp_path):
    work = Workdir(tmp_path)
    for folder in ("results", "resources", ".snakemake/metadata"):
        shutil.copytree(finished_tiny_study.path / folder, tmp_path / folder)
    work.write_config(_config())
    results = tmp_path / "results"
    quick, slow = (results / GROUP.format(model=m) for m in ("quick", "slow"))
    folds = [f"f{fold}of3" for fold in range(3)]
    done_fold, killed_fold = slow / folds[0], slow / folds[KILLED_FOLD]
    # one file of each group names the job that trains all its folds
    targets = [
        str((group / folds[0] / "metrics.json").relative_to(tmp_path)) for group in (quick, slow)
    ]
    log = results / "logs" / GROUP.format(model="slow") / "k3" / "train.log"
    resume = results / ".resume" / GROUP.format(model="slow")
    state = resume / folds[KILLED_FOLD] / "last.ckpt"

    with open(tmp_path / "killed-run.txt", "w") as output:
        run = subprocess.Popen(
            [*SNAKEMAKE, "--cores", "1", "--keep-going", *targets],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
            # the slow folds train for seconds: below the default minimum before a save;
            # and a save after every epoch, so that what one save happened to cost on a busy
            # machine cannot push the next one past the last epoch
            env=dict(
                os.environ,
                PYTHONHASHSEED="0",
                SPECTRAGRID_MIN_UNSAVED_SECONDS="0",
                SPECTRAGRID_SAVE_OVERHEAD="0",
            ),
        )
        _kill_training_after_epoch(run, log, epoch=2)
        assert run.wait(timeout=SNAKEMAKE_TIMEOUT) != 0
    assert all((quick / fold / "metrics.json").exists() for fold in folds)
    # Snakemake removed the failed job's outputs; the finished fold's are kept aside
    assert not any((slow / fold / "metrics.json").exists() for fold in folds)
    kept = resume / folds[0] / "finished"
    finished = {name: (kept / name).read_bytes() for name in ("metrics.json", "model.ckpt")}
    saved = torch.load(state, weights_only=True)["spectragrid"]["epochs_done"]
    assert 2 <= saved < EPOCHS

    quick_mtimes = {p: p.stat().st_mtime_ns for p in quick.rglob("*") if p.is_file()}
    assert work.planned_jobs(*targets) == {"train": 1}
    work.snakemake(*targets)
    assert {p: p.stat().st_mtime_ns for p in quick.rglob("*") if p.is_file()} == quick_mtimes
    # the first fold was put back, not trained again
    assert {name: (done_fold / name).read_bytes() for name in finished} == finished
    text = log.read_text()
    assert re.search(
        r"(?m)^.*fold 0 of 3 \(.*\): finished by an earlier run, outputs put back$", text
    )
    assert not re.search(r"(?m)^.*fold 0 of 3 \(.*\): training$", text)
    card = json.loads((killed_fold / "card.json").read_text())
    assert card["resumed_after_epoch"] == saved
    lines = _fold_lines(log, KILLED_FOLD).split(f"resuming after epoch {saved} of {EPOCHS}")
    assert len(lines) == 2, "the killed fold did not resume after its saved epoch"
    # nothing before the saved epoch was trained again
    done = [int(n) for n in re.findall(rf"epoch (\d+)/{EPOCHS} done", lines[1])]
    assert done == list(range(saved + 1, EPOCHS + 1))
    assert (slow / folds[2] / "metrics.json").exists()
    assert not resume.exists()
    resumed = {name: (killed_fold / name).read_bytes() for name in ("metrics.json", "history.csv")}

    # the same group trained again without interruption
    work.snakemake(targets[1], "--forcerun", targets[1])
    assert json.loads((killed_fold / "card.json").read_text())["resumed_after_epoch"] is None
    assert (killed_fold / "history.csv").read_bytes() == resumed["history.csv"]
    again, before = (
        json.loads(m) for m in ((killed_fold / "metrics.json").read_text(), resumed["metrics.json"])
    )
    # the checksums differ where the card records timings and the resumed epoch
    assert again.pop("outputs")["model.ckpt"] == before.pop("outputs")["model.ckpt"]
    assert again == before
    assert before["epochs_run"] == EPOCHS
