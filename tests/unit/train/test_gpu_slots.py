"""Training jobs on a workstation with several GPUs spread over all of them.

This machine has no GPU: the jobs here are real processes that claim slots
of a faked number of cards, and the Fabric a cell gets is checked with
torch's device count faked and Lightning's Fabric recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from spectragrid.train import devices, gpu_slots
from spectragrid.train.gpu_slots import claim_device, occupancy, visible_gpu_count

# A training job reduced to its claim: take a card, say which, hold it until
# stdin closes (the job's end) or the process is killed.
HOLDER = """
import json, sys, time
from spectragrid.train.gpu_slots import claim_device
started = time.perf_counter()
device = claim_device(int(sys.argv[2]), sys.argv[1])
print(json.dumps({"device": device, "claim_seconds": time.perf_counter() - started}), flush=True)
sys.stdin.read()
"""


class Holder:
    """A job process holding one slot of `n_devices` fake cards."""

    def __init__(self, lock_dir: Path, n_devices: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(lock_dir), str(n_devices)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._claim: dict | None = None

    @property
    def claim(self) -> dict:
        if self._claim is None:
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
            assert line, "the holder died before claiming"
            self._claim = json.loads(line)
        return self._claim

    @property
    def device(self) -> int:
        return self.claim["device"]

    def finish(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture
def holders():
    started: list[Holder] = []
    yield started
    for holder in started:
        if holder.proc.poll() is None:
            holder.kill()


@pytest.fixture(autouse=True)
def no_slot_held():
    """Every test starts (and leaves) this process without a claimed card."""
    gpu_slots.release_device()
    yield
    gpu_slots.release_device()


def test_eight_jobs_on_two_gpus_take_four_slots_on_each(tmp_path, holders):
    lock_dir = tmp_path / "locks"
    # started together, as Snakemake starts the jobs its gpu_slots allow
    holders.extend(Holder(lock_dir, 2) for _ in range(8))
    assert Counter(h.device for h in holders) == {0: 4, 1: 4}
    # none waited for another: each claim took milliseconds, and all eight hold at once
    assert max(h.claim["claim_seconds"] for h in holders) < 2.0
    assert all(h.proc.poll() is None for h in holders)
    assert occupancy(2, lock_dir) == [4, 4]
    assert sorted(p.name for p in lock_dir.glob("*.*.lock")) == [
        f"{d}.{s}.lock" for d in (0, 1) for s in range(4)
    ]
    # a ninth (more jobs than the limit, say a user's --resources) joins the least occupied card
    ninth = Holder(lock_dir, 2)
    holders.append(ninth)
    assert ninth.device == 0
    assert occupancy(2, lock_dir) == [5, 4]
    for holder in holders:
        holder.finish()
    assert occupancy(2, lock_dir) == [0, 0]


def test_a_finished_or_killed_job_frees_its_slot_for_the_next(tmp_path, holders):
    lock_dir = tmp_path / "locks"
    holders.extend(Holder(lock_dir, 3) for _ in range(6))
    assert Counter(h.device for h in holders) == {0: 2, 1: 2, 2: 2}
    on_card_2 = [h for h in holders if h.device == 2]
    on_card_2[0].kill()  # SIGKILL: nothing of its own runs, the kernel drops its lock
    assert occupancy(3, lock_dir) == [2, 2, 1]
    replacement = Holder(lock_dir, 3)
    holders.append(replacement)
    assert replacement.device == 2
    assert occupancy(3, lock_dir) == [2, 2, 2]
    # the slot files are reused, not multiplied
    assert len(list(lock_dir.glob("2.*.lock"))) == 2
    next(h for h in holders if h.device == 0).finish()
    holders.append(Holder(lock_dir, 3))
    assert holders[-1].device == 0


def test_a_process_keeps_its_card_for_all_its_cells(tmp_path):
    lock_dir = tmp_path / "locks"
    first = claim_device(4, lock_dir)
    # the next cell of the same job (the K folds train one after another)
    assert claim_device(4, lock_dir) == first
    assert occupancy(4, lock_dir) == [1, 0, 0, 0]
    gpu_slots.release_device()
    assert occupancy(4, lock_dir) == [0, 0, 0, 0]


def test_a_lock_folder_that_cannot_be_written_trains_on_the_first_card(tmp_path, caplog):
    blocked = tmp_path / "a file"
    blocked.write_text("")
    assert claim_device(2, blocked / "locks") == 0
    assert "cannot claim a GPU slot" in caplog.text


@pytest.mark.parametrize(
    ("visible", "attached", "expected"),
    [
        (None, 4, 4),
        ("1", 4, 1),  # SLURM or the user pinned one card
        ("2,3", 4, 2),
        ("0,1,-1,2", 4, 2),  # CUDA stops at the first entry that names no device
        ("-1", 4, 0),
        ("", 4, 0),
        ("GPU-8a3f,GPU-91c2", 4, 2),
        ("0,1,2,3", 2, 2),  # names more cards than the driver has
        ("0,1", None, 0),  # no NVIDIA driver: the CPU, whatever the variable says
    ],
)
def test_the_visible_gpus_are_counted_as_cuda_counts_them(tmp_path, visible, attached, expected):
    driver = tmp_path / "gpus"
    if attached is not None:
        for i in range(attached):
            (driver / f"0000:{i:02x}:00.0").mkdir(parents=True)
    environ = {} if visible is None else {"CUDA_VISIBLE_DEVICES": visible}
    assert visible_gpu_count(environ, driver) == expected


class RecordedFabric:
    """Lightning's Fabric reduced to the arguments it was given."""

    made: ClassVar[list[dict]] = []

    def __init__(self, **kwargs) -> None:
        RecordedFabric.made.append(kwargs)


@pytest.fixture
def fake_gpus(monkeypatch, tmp_path):
    """torch sees `n` CUDA devices (fewer where CUDA_VISIBLE_DEVICES names fewer),
    as a workstation's driver would report them; jobs run in tmp_path."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    RecordedFabric.made = []
    monkeypatch.setattr(devices, "Fabric", RecordedFabric)

    def install(n: int) -> None:
        def device_count() -> int:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            return n if visible is None else min(n, len(visible.split(",")))

        monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
        monkeypatch.setattr(torch.cuda, "device_count", device_count)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: f"Fake GPU {i}")

    return install


def test_a_cell_trains_on_the_card_other_jobs_left_free(fake_gpus, holders, tmp_path):
    fake_gpus(2)
    # another job of the run holds cuda:0 (same results folder as this one)
    other = Holder(tmp_path / "results" / ".locks" / "gpu", 2)
    holders.append(other)
    assert other.device == 0
    devices.training_fabric("32-true", None, [])
    assert RecordedFabric.made[-1]["accelerator"] == "cuda"
    assert RecordedFabric.made[-1]["devices"] == [1]
    card = devices.device_report("cuda:1")
    assert card["device"] == "cuda:1"
    assert card["device_index"] == 1
    assert card["device_name"] == "Fake GPU 1"
    assert card["cuda_device_count"] == 2
    assert card["gpu_fallback"] is False


def test_a_job_pinned_to_one_card_trains_there_without_claiming(fake_gpus, monkeypatch):
    fake_gpus(4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")  # as SLURM sets it for a job's one GPU
    devices.training_fabric("32-true", None, [])
    assert RecordedFabric.made[-1]["accelerator"] == "auto"
    assert RecordedFabric.made[-1]["devices"] == 1
    assert not Path("results").exists()
    card = devices.device_report("cuda:0")
    assert (card["device_index"], card["cuda_visible_devices"]) == (0, "2")


@pytest.mark.parametrize("n", [0, 1])
def test_without_several_gpus_nothing_changes(fake_gpus, n):
    fake_gpus(n)
    devices.training_fabric("32-true", None, [])
    assert RecordedFabric.made[-1]["accelerator"] == "auto"
    assert RecordedFabric.made[-1]["devices"] == 1
    assert not Path("results").exists()
