"""Content, not timestamps: what snakemake plans after a touch, an edit that keeps the
old time, a truncated output, and a second copy of a training job.

Each case goes through the real snakemake: `snakemake -n` for what is planned,
a real run for what is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml
from tiny_study import SNAKEMAKE, SNAKEMAKE_TIMEOUT, Workdir, tiny_config

from spectragrid.core import layout
from spectragrid.data.demo import generate_demo
from spectragrid.data.unpickle import load_pickle_dataframe
from spectragrid.train.output_checksums import verify_cell

pytestmark = pytest.mark.slow

EPOCHS = 150


def _user_study(tmp_path: Path) -> tuple[Workdir, Path]:
    demo = generate_demo(tmp_path / "demo", n_samples=300, seed=0)
    work = Workdir(tmp_path / "work")
    (work.path / "raw").mkdir()
    raw = work.path / "raw" / "campaign.pkl"
    shutil.copy(demo["raw_files"][0], raw)
    config = tiny_config()
    del config["dataset"]["demo"]
    config["dataset"].update(name="mine", raw=["raw/campaign.pkl"], truth=None)
    work.write_config(config)
    return work, raw


def test_a_touch_replans_nothing_and_an_edit_that_keeps_the_time_reruns_ingest(tmp_path):
    work, raw = _user_study(tmp_path)
    target = layout.clean_file("mine")
    work.snakemake(layout.folds_file("mine", 0, 3))
    assert work.planned_jobs(layout.folds_file("mine", 0, 3)) == {}

    # a copy, checkout or rsync without times
    time.sleep(0.01)
    os.utime(raw)  # newer than every output now
    assert work.planned_jobs(layout.folds_file("mine", 0, 3)) == {}

    # one label changed inside the pickle, its modification time put back
    before = raw.stat()
    frame = load_pickle_dataframe(raw)
    column = "greffon_defaut_severite"
    frame.iloc[0, frame.columns.get_loc(column)] = "NC" if frame.iloc[0][column] != "NC" else "VR"
    frame.to_pickle(raw)
    os.utime(raw, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert raw.stat().st_mtime_ns == before.st_mtime_ns
    planned = work.planned_jobs(layout.folds_file("mine", 0, 3))
    assert planned.get("ingest") == 1 and planned.get("split") == 1
    work.snakemake(target)
    report = json.loads((work.path / layout.cleaning_report("mine")).read_text())
    digest = report["files"][0]["sha256"]
    assert digest == hashlib.sha256(raw.read_bytes()).hexdigest()


def _single_model_config(**train) -> dict:
    config = tiny_config()
    config["models"] = {"cnn": config["models"]["cnn"]}
    config["models"]["cnn"]["train"].update(train)
    config["grid"]["models"] = ["cnn"]
    config["label_issues"] = {"enabled": False, "models": ["cnn"]}
    return config


def test_a_truncated_or_deleted_cell_file_is_named_and_the_next_run_rebuilds_it(tmp_path):
    work = Workdir(tmp_path)
    work.write_config(_single_model_config(epochs=1, patience=1))
    work.snakemake()
    # model.ckpt and card.json are not Snakemake outputs (layout.CELL_TRACKED_FILES):
    # the sheet hears of them through a parameter
    for fold, name, why in (
        (1, "model.ckpt", "does not match the checksum recorded when the cell was trained"),
        (2, "predictions.parquet", "does not match the checksum recorded"),
        (0, "card.json", "missing"),
    ):
        cell = work.cell("cnn", fold=fold)
        path = cell / name
        if why == "missing":
            path.unlink()
        else:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

        failed = work.snakemake(check=False)
        assert failed.returncode != 0
        said = [ln for ln in failed.stderr.splitlines() if ln.startswith("spectragrid: ")]
        expected = f"{name}: {why}"
        assert any(expected in ln for ln in said), failed.stderr[-3000:]
        assert not (cell / layout.CELL_FILES["metrics"]).exists()

        assert work.planned_jobs().get("train") == 1
        work.snakemake()
        verify_cell(cell)
        assert len(pd.read_csv(work.path / layout.SUMMARY_CSV)) == 3
        # The next run may draw the group's sheets once more, where their list of
        # inputs got shorter again (resume.md); it trains nothing, and the run after
        # it has nothing to do: the sheet's parameter is empty again.
        planned = work.planned_jobs()
        assert set(planned) <= {"sheet", "summary", "all"}, planned
        if planned:
            work.snakemake()
        assert work.planned_jobs() == {}


def _train_processes(snakemake: subprocess.Popen) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(snakemake.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any("train.py" in part for part in child.cmdline()):
                found.append(child)
    return found


def test_a_training_job_left_running_by_a_killed_snakemake_and_its_second_copy(tmp_path):
    """snakemake is killed while a fold group trains; started again, it starts the same
    job a second time while the first still runs. The second waits for each fold the
    first holds, then keeps the first's outputs: nothing is corrupted, nothing is
    half-written."""
    work = Workdir(tmp_path)
    # long enough that the first job still trains when the second starts (the job
    # trains the 3 folds of its group)
    config = _single_model_config(epochs=EPOCHS, patience=EPOCHS, batch_size=4)
    config["models"]["cnn"]["params"]["widths"] = [16, 16, 16]
    work.write_config(config)
    cells = [work.cell("cnn", fold=fold) for fold in range(3)]
    target = str((cells[0] / layout.CELL_FILES["metrics"]).relative_to(work.path))
    group = layout.FOLD_GROUP_KEY.format(
        dataset="demo", labels="raw", target="OVA_OK", channels="all", model="cnn", seed=0, k=3
    )
    log = work.path / layout.log_file(group, "train")
    env = dict(os.environ, PYTHONHASHSEED="0", SPECTRAGRID_MIN_UNSAVED_SECONDS="0")

    with open(tmp_path / "first-run.txt", "w") as output:
        first = subprocess.Popen(
            [*SNAKEMAKE, "--cores", "1", target],
            cwd=work.path,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + SNAKEMAKE_TIMEOUT
        while f"epoch 3/{EPOCHS} done" not in (log.read_text() if log.exists() else ""):
            assert first.poll() is None, (tmp_path / "first-run.txt").read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (orphan,) = _train_processes(first)
        first.send_signal(signal.SIGKILL)  # snakemake alone: its training job runs on
        first.wait(timeout=60)
    assert orphan.is_running()

    work.snakemake("--unlock")
    second = work.snakemake(target, "--rerun-incomplete")
    assert second.returncode == 0
    for cell in cells:
        metrics = verify_cell(cell)
        assert metrics["epochs_run"] == EPOCHS
        assert not (work.path / layout.resume_file(metrics["cell"])).exists()
    assert "another process is training this cell" in log.read_text()
    assert yaml.safe_load((work.path / "config" / "config.yaml").read_text())  # untouched
