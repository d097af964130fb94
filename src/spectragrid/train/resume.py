"""A long cell's resumable state: where it is kept, when it is saved, how it is read back.

At the end of epochs (at a bounded cost, see SavePolicy) the model,
optimizer, scheduler and the fit's record (history, best weights, timings)
are saved to one file through Fabric, written atomically, and a killed job
started again continues after its last saved epoch. A saved state carries
the key of the run it belongs to; a state of another config or input is
discarded rather than resumed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from lightning_fabric import Fabric
from lightning_fabric.plugins.io import CheckpointIO

from spectragrid.core.atomic import write_atomic
from spectragrid.train.checkpoints import load_checkpoint

log = logging.getLogger(__name__)

# The most of a cell's training time that saving its resume state may take.
SAVE_OVERHEAD = 0.01
# The layout of the saved state; a state of another layout is not resumed.
STATE_LAYOUT = 2


@dataclass(frozen=True)
class Resume:
    """Where a cell keeps its resumable state, and the key of the run it belongs to."""

    path: Path
    key: str  # a saved state with another key belongs to another config or input


class ResumeStateIO(CheckpointIO):
    """Resume state written under a temporary name and renamed, so that a job killed
    mid-write keeps its previous state; read with weights_only."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        # Serialised in memory and written at once: torch.save's many small
        # writes to a file take as long again as the serialising.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_atomic(path, buffer.getvalue())

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_checkpoint(path, map_location or "cpu")

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


def _nonnegative_env(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not number >= 0:
        raise ValueError(f"{name}: expected >= 0, got {value!r}")
    return number


def min_unsaved_seconds() -> float:
    """Training time a killed job may lose before its state is worth saving.

    A restarted job spends several seconds starting up anyway, and a save on a
    cluster's shared file system can cost far more than on a local disk, so
    a cell that trains for less than this never saves (the demo's cells train
    for a few seconds). SPECTRAGRID_MIN_UNSAVED_SECONDS overrides the default
    of 10; 0 lets the SAVE_OVERHEAD rule alone decide.
    """
    return _nonnegative_env("SPECTRAGRID_MIN_UNSAVED_SECONDS", 10.0)


def save_overhead() -> float:
    """The share of training time saves may take (SAVE_OVERHEAD);
    SPECTRAGRID_SAVE_OVERHEAD overrides it, 0 saving after every epoch once the
    minimum has passed (where a save's cost must not decide which epochs are saved)."""
    return _nonnegative_env("SPECTRAGRID_SAVE_OVERHEAD", SAVE_OVERHEAD)


class SavePolicy:
    """When to save: at the end of epochs, at a bounded cost.

    Nothing is saved until min_unsaved_seconds() of training would be lost.
    From then on, the state is saved after the first epoch that ends (which
    measures what a save costs), after the last, and after any epoch that
    ends once the training since the previous save has lasted 1 /
    SAVE_OVERHEAD times that save: saving then takes at most SAVE_OVERHEAD
    of the training time (a short epoch of a small model would otherwise
    spend 4 % of its time saving), and a killed job loses at most that much
    training, or the minimum, or one epoch. SAVE_OVERHEAD 0 saves after
    every epoch once the minimum has passed.
    """

    def __init__(self) -> None:
        self.min_unsaved = min_unsaved_seconds()
        self.overhead = save_overhead()
        self._saved_at = time.perf_counter()  # when the last save ended, or training began
        self._save_seconds: float | None = None  # what the last save took

    def start(self) -> None:
        self._saved_at = time.perf_counter()

    def due(self, last_epoch: bool) -> bool:
        unsaved = time.perf_counter() - self._saved_at
        if unsaved < self.min_unsaved:
            return False
        if self.overhead <= 0 or self._save_seconds is None or last_epoch:
            return True
        return unsaved * self.overhead >= self._save_seconds

    def saved(self, started: float) -> None:
        """Note a save that began at `started` (time.perf_counter()) and just ended."""
        self._saved_at = time.perf_counter()
        self._save_seconds = self._saved_at - started


class ResumeSaver:
    """Saves `state` (Fabric's dict of stateful objects) at the end of epochs, as
    SavePolicy allows, and logs each save."""

    def __init__(self, fabric: Fabric, resume: Resume, state: dict[str, Any]) -> None:
        self.fabric = fabric
        self.resume = resume
        self.state = state
        self.policy = SavePolicy()

    def start(self) -> None:
        self.policy.start()

    def after_epoch(self, epoch: int, epochs: int, last: bool) -> None:
        """Epoch `epoch` (1-based) of `epochs` ended; `last`: training ends with it
        (resuming then must not run another epoch)."""
        if not self.policy.due(last):
            return
        started = time.perf_counter()
        resume = {"key": self.resume.key, "layout": STATE_LAYOUT, "finished": last}
        self.fabric.save(self.resume.path, {**self.state, "resume": resume})
        self.policy.saved(started)
        log.info("epoch %d/%d: state saved for resumption", epoch, epochs)


def load_resume_state(
    fabric: Fabric, resume: Resume, state: dict[str, Any]
) -> dict[str, Any] | None:
    """Restore the stateful objects of `state` from the saved state of this very run,
    and return its resume facts ({"finished": ...}); None when there is none (a
    state of another run is deleted)."""
    if not resume.path.exists():
        return None
    try:
        saved = fabric.load(resume.path, weights_only=True)
    except Exception as err:  # a file this code did not write: start afresh
        log.warning("ignoring unreadable resume state %s: %s", resume.path, err)
        saved = {}
    facts = saved.get("resume")
    if (
        not isinstance(facts, dict)
        or facts.get("key") != resume.key
        or facts.get("layout") != STATE_LAYOUT
        or set(state) - set(saved)
    ):
        log.info("discarding resume state %s of another configuration or input", resume.path)
        resume.path.unlink(missing_ok=True)
        return None
    for name, obj in state.items():
        obj.load_state_dict(saved[name])
    return facts


def discard_resume_state(resume: Resume) -> None:
    """Remove a completed cell's state and its own folder once empty.

    Parent folders stay: other cells running at the same time create theirs
    there, and removing a shared parent could race with them.
    """
    resume.path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        resume.path.parent.rmdir()
