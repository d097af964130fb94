"""Which GPU a training job uses when a workstation has several.

Snakemake's local scheduler counts a resource (`gpu_slots`) but never says
which card a job should use, and torch puts every process on device 0. Each
job therefore picks a card itself: it holds an exclusive lock on one slot
file of the least occupied card, `<lock dir>/<device>.<slot>.lock`, for as
long as the process lives. The Snakefile caps the jobs running at once at
(visible GPUs x `resources.gpu_slots`), and a job always joins the least
occupied card, so no card ever holds more than `resources.gpu_slots` jobs:
whenever a job picks, fewer than cards x slots are held, so the least
occupied card has a free slot. The locks are the kernel's (flock): a killed
job's slot is free again at once, with no stale file to clean up.

Imported by the Snakefile too, so it stays import-light (no torch).
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spectragrid.core import layout

log = logging.getLogger(__name__)

LOCK_DIR = Path(layout.RESULTS) / ".locks" / "gpu"
# One entry per GPU the NVIDIA driver has attached, whatever the process may see.
NVIDIA_DRIVER_GPUS = Path("/proc/driver/nvidia/gpus")
_SLOT_FILE = re.compile(r"(\d+)\.(\d+)\.lock")
# CUDA reads CUDA_VISIBLE_DEVICES up to its first entry that names no device.
_DEVICE_ENTRY = re.compile(r"\d+|GPU-[0-9a-fA-F-]+|MIG-.+")


@dataclass(frozen=True)
class GpuSlot:
    """A slot held by this process: the card it trains on and the lock that says so."""

    device: int
    slot: int
    path: Path
    fd: int


# The slot this process holds, from its first network cell to its exit: a job
# trains several cells one after another on the same card.
_held: GpuSlot | None = None


def visible_gpu_count(
    environ: Mapping[str, str] = os.environ, driver_dir: Path = NVIDIA_DRIVER_GPUS
) -> int:
    """The NVIDIA GPUs a process started with `environ` can use, without importing
    torch (the Snakefile asks, and planning must stay fast): the driver's GPUs,
    narrowed by CUDA_VISIBLE_DEVICES as CUDA reads it."""
    try:
        attached = sum(1 for _ in driver_dir.iterdir())
    except OSError:
        return 0
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return attached
    named = 0
    for entry in visible.split(","):
        if not _DEVICE_ENTRY.fullmatch(entry.strip()):
            break
        named += 1
    return min(named, attached)


def local_slot_limit(cells_per_gpu: int, gpus: int | None = None) -> int | None:
    """The `gpu_slots` a local run has: `cells_per_gpu` on each of `gpus` cards
    (default: the visible ones); None without a GPU, where cells train on the
    CPU and only the cores limit them."""
    gpus = visible_gpu_count() if gpus is None else gpus
    return gpus * cells_per_gpu if gpus > 0 else None


def share_gpus(workflow: Any, cells_per_gpu: int, gpus: int | None = None) -> int | None:
    """Give a local run of `workflow` (the Snakefile's `workflow`) the global
    resource `gpu_slots`: `cells_per_gpu` on each of `gpus` cards (default: the
    visible ones); the limit set, or None where none is.

    A `gpu_slots` the user gave (--resources, a profile) is the whole limit
    and stays. A cluster run (--jobs, `_nodes` in Snakemake) sets none: its
    jobs get their GPU from the cluster, not from this machine's cards.
    """
    resources = workflow.global_resources
    if "gpu_slots" in resources or resources.get("_nodes").value is not None:
        return None
    limit = local_slot_limit(cells_per_gpu, gpus)
    if limit is not None:
        resources["gpu_slots"] = limit
    return limit


def occupancy(n_devices: int, lock_dir: Path = LOCK_DIR) -> list[int]:
    """How many slots of each of `n_devices` cards live processes hold."""
    loads = [0] * n_devices
    for device, _ in _held_slots(n_devices, Path(lock_dir)):
        loads[device] += 1
    return loads


def claim_device(n_devices: int, lock_dir: Path = LOCK_DIR) -> int:
    """The index of the card this process trains on, among `n_devices`: the
    least occupied one (the lowest index among equals), claimed for the rest
    of the process on its first call."""
    global _held
    if _held is not None and _held.device < n_devices:
        return _held.device
    lock_dir = Path(lock_dir)
    try:
        _held = _claim(n_devices, lock_dir)
    except OSError as error:
        # Training matters more than balance: a results folder without locks
        # (read-only, a file system without flock) trains on the first card.
        log.warning("cannot claim a GPU slot in %s (%s): training on cuda:0", lock_dir, error)
        return 0
    log.info(
        "training on cuda:%d, slot %d (%s)",
        _held.device,
        _held.slot,
        ", ".join(f"cuda:{d} {n}" for d, n in enumerate(occupancy(n_devices, lock_dir))),
    )
    return _held.device


def release_device() -> None:
    """Give the card back before the process ends (its exit does the same)."""
    global _held
    if _held is not None:
        os.close(_held.fd)
        _held = None


def _claim(n_devices: int, lock_dir: Path) -> GpuSlot:
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Jobs that start together would all count the same loads and pick the
    # same card: one at a time counts and claims (a few milliseconds each).
    mutex = os.open(lock_dir / "claim.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(mutex, fcntl.LOCK_EX)
        held = _held_slots(n_devices, lock_dir)
        loads = [sum(1 for d, _ in held if d == device) for device in range(n_devices)]
        device = loads.index(min(loads))
        slot = 0
        while True:
            if (device, slot) not in held:
                path = lock_dir / f"{device}.{slot}.lock"
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # taken by a process that skipped the mutex: try the next one
                    os.close(fd)
                else:
                    # Who holds it, for a person who looks: `cat results/.locks/gpu/*.lock`.
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    return GpuSlot(device, slot, path, fd)
            slot += 1
    finally:
        os.close(mutex)


def _held_slots(n_devices: int, lock_dir: Path) -> set[tuple[int, int]]:
    """(device, slot) of every slot file a live process holds: whoever can lock
    a file is told it is free (and lets go at once)."""
    held = set()
    try:
        names = [p.name for p in lock_dir.iterdir()]
    except FileNotFoundError:
        return held
    for name in names:
        match = _SLOT_FILE.fullmatch(name)
        if match is None or int(match[1]) >= n_devices:
            continue
        key = (int(match[1]), int(match[2]))
        # flock belongs to an open file, not a process: this process's own slot
        # reads as held through a second open too.
        try:
            fd = os.open(lock_dir / name, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held.add(key)
        finally:
            os.close(fd)
    return held
