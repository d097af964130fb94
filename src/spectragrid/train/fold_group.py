"""The K folds of one model x target x channel set x seed, trained in one process.

A job of one cell spends seconds starting Python and importing torch for a
cell that may train in less than one; a job of K cells pays that once.
Each fold still has its own folder, outputs, lock and resumable state.

Snakemake removes every output of a job that fails, the folds it had
finished included. So that a killed job resumes each fold where it stopped
rather than from the first fold, each fold's finished outputs are kept
beside its resume state (hard links: no copy of the bytes) until the whole
job has ended; a rerun with the same definition and inputs puts them back
instead of training the fold again.

The kept outputs are written, put back and removed under the fold's lock: a
job left running by a killed Snakemake (its training goes on) may finish and
clear them while a rerun of the same group reads them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from spectragrid.core import layout
from spectragrid.train.cell import CellOutputs, CellSpec, resume_key, run_cell
from spectragrid.train.cell_lock import cell_lock
from spectragrid.train.image_models import is_image_arch
from spectragrid.train.label_action import IssuesSource
from spectragrid.train.output_checksums import CorruptOutputError, verify_cell

log = logging.getLogger(__name__)

FINISHED_DIR = "finished"
KEY_FILE = "key.json"
# The folder of every cell's resume state (layout.RESUME_FILE).
RESUME_ROOT = Path(layout.RESUME_FILE).parts[1]


@dataclass(frozen=True)
class FoldJob:
    """One fold of a group: its definition, outputs and working files."""

    spec: CellSpec
    out: CellOutputs
    resume_path: Path
    curves_dir: Path
    lock_path: Path

    @property
    def finished_dir(self) -> Path:
        return self.resume_path.parent / FINISHED_DIR


def fold_jobs(
    specs: Sequence[CellSpec], outputs: Sequence[CellOutputs], results_parent: Path = Path()
) -> list[FoldJob]:
    """The folds of a group with their working files at the layout's places (relative to
    `results_parent`, the folder that holds `results/`)."""
    jobs = []
    for spec, out in zip(specs, outputs, strict=True):
        coordinates = spec.coordinates
        jobs.append(
            FoldJob(
                spec=spec,
                out=out,
                resume_path=results_parent / layout.resume_file(coordinates),
                curves_dir=results_parent / layout.curves_dir(coordinates),
                lock_path=results_parent / layout.lock_file(coordinates),
            )
        )
    return jobs


def _outputs(out: CellOutputs) -> list[Path]:
    return [Path(getattr(out, field.name)) for field in fields(out)]


def _link_or_copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, destination)


def _keep_finished(job: FoldJob, key: str) -> None:
    """Hard links to the fold's outputs, with the key of the definition and inputs."""
    kept = job.finished_dir
    shutil.rmtree(kept, ignore_errors=True)
    for path in _outputs(job.out):
        _link_or_copy(path, kept / path.name)
    (kept / KEY_FILE).write_text(json.dumps({"key": key}))


def _restore_finished(job: FoldJob, key: str) -> dict | None:
    """The fold's metrics after putting back the outputs a failed run of the same fold
    (same definition, same inputs) had finished; None when there are none to trust."""
    kept = job.finished_dir
    try:
        if json.loads((kept / KEY_FILE).read_text()).get("key") != key:
            return None
        metrics = verify_cell(kept)
    except (OSError, ValueError, CorruptOutputError):
        shutil.rmtree(kept, ignore_errors=True)
        return None
    if metrics.get("config_hash") != job.spec.config_hash:
        return None
    for path in _outputs(job.out):
        _link_or_copy(kept / path.name, path)
    return metrics


def _discard(job: FoldJob) -> None:
    """Remove the fold's kept state, and the folders it leaves empty up to `.resume`."""
    shutil.rmtree(job.finished_dir, ignore_errors=True)
    job.resume_path.unlink(missing_ok=True)
    for folder in job.resume_path.parents:
        if folder.name == RESUME_ROOT:
            break
        try:
            folder.rmdir()
        except OSError:  # not empty: another cell's state lives below it
            break


def _image_trainer(spec: CellSpec) -> Callable[..., dict] | None:
    """train.image_cell's trainer for an image cell; None (the default path) otherwise."""
    if not is_image_arch(spec.arch):
        return None
    from spectragrid.train.image_cell import run_image_cell

    return run_image_cell


def run_fold_group(
    jobs: Sequence[FoldJob],
    clean_path: Path,
    folds_path: Path,
    issues: IssuesSource | None,
    threads: int = 1,
) -> list[dict]:
    """Train, test and export every fold of `jobs`, one after another; the metrics of each.

    The clean file is read once for all of them (train.cell keeps the last
    one read). A fold whose finished outputs a failed run left behind is put
    back instead of trained; every fold's kept state is removed once the last
    fold is done.
    """
    inputs = [Path(clean_path), Path(folds_path)] + (issues.files if issues else [])
    results = []
    for job in jobs:
        # The K folds share one log: each fold's lines follow its own heading.
        heading = f"fold {job.spec.fold} of {job.spec.k} ({job.spec.display_name()})"
        key = resume_key(job.spec, inputs)
        with cell_lock(job.lock_path):
            metrics = _restore_finished(job, key)
        if metrics is not None:
            log.info("%s: finished by an earlier run, outputs put back", heading)
        else:
            log.info("%s: training", heading)
            metrics = run_cell(
                job.spec,
                clean_path=Path(clean_path),
                folds_path=Path(folds_path),
                issues=issues,
                out=job.out,
                threads=threads,
                resume_path=job.resume_path,
                curves_dir=job.curves_dir,
                lock_path=job.lock_path,
                keep_resume_state=True,
                train_cell=_image_trainer(job.spec),
            )
            if len(jobs) > 1:
                with cell_lock(job.lock_path):
                    _keep_finished(job, key)
        results.append(metrics)
    for job in jobs:
        with cell_lock(job.lock_path):
            _discard(job)
    return results
