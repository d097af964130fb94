"""Where a cell trains and in what precision: the Fabric it trains with, and the card's facts."""

from __future__ import annotations

import logging
import os
import warnings

import torch
from lightning_fabric import Fabric
from lightning_fabric.loggers import Logger
from lightning_fabric.plugins.io import CheckpointIO

from spectragrid.train.gpu_slots import claim_device

# Batch jobs write logs nobody reads line by line: keep Lightning's banners
# ("Using bfloat16 Automatic Mixed Precision") out of them, and its warnings in.
logging.getLogger("lightning_fabric.utilities.rank_zero").setLevel(logging.WARNING)
# On a machine with the SLURM client, every local job would print Lightning's
# advice to launch through srun; the workflow decides where jobs run.
warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system.*")


def native_bf16() -> bool:
    """Whether the device training will run on computes bfloat16 in hardware."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def effective_precision(requested: str) -> str:
    """The precision a cell trains in.

    `auto` is bf16 autocast where the hardware has bfloat16 arithmetic (recent
    GPUs; CPUs with AVX-512 BF16 or AMX) and float32 elsewhere, where emulated
    bf16 would be slower. fp16 autocast is a GPU feature; on a CPU it falls
    back to float32.
    """
    if requested == "auto":
        return "bf16-mixed" if native_bf16() else "32-true"
    if requested == "16-mixed" and not torch.cuda.is_available():
        return "32-true"
    return requested


def training_devices() -> tuple[str, int | list[int]]:
    """Fabric's accelerator and devices for one cell: with several GPUs visible,
    the card this process claimed (gpu_slots), so that concurrent jobs spread
    over all of them instead of crowding cuda:0; otherwise the one GPU torch
    sees, or the CPU. A job SLURM pinned to its card sees that card alone."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        return "cuda", [claim_device(torch.cuda.device_count())]
    return "auto", 1


def training_fabric(
    precision: str, checkpoint_io: CheckpointIO | None, loggers: list[Logger]
) -> Fabric:
    """One device (see training_devices) in `precision` (`train.precision`, see
    effective_precision), with deterministic kernels."""
    accelerator, devices = training_devices()
    fabric = Fabric(
        accelerator=accelerator,
        devices=devices,
        precision=effective_precision(precision),  # type: ignore[arg-type]
        plugins=checkpoint_io,
        loggers=loggers,
    )
    # What Lightning's Trainer(deterministic=True) sets: the same config and
    # seed give the same numbers, run after run.
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    # Deterministic mode also fills every new tensor with NaN before its kernel
    # overwrites it (a guard against kernels that read uninitialised memory):
    # an extra pass over every activation and gradient of every step. Our
    # kernels write all they read, so results are the same without it
    # (tests/unit/train/test_loop.py trains twice and compares the bytes).
    torch.utils.deterministic.fill_uninitialized_memory = False
    return fabric


def device_report(used_device: str) -> dict:
    """What the job was given and what training ran on, for the model card.

    `device_index` counts among the cards CUDA_VISIBLE_DEVICES lets the job see.
    A scheduler hands a job its GPUs through CUDA_VISIBLE_DEVICES; when that
    names a device torch cannot open (no driver, a CPU-only build, a fake
    device), training falls back to the CPU, and the card says both.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    cuda = torch.cuda.is_available()
    on_gpu = used_device.startswith("cuda")
    # Which of the visible cards: on a workstation with several, jobs spread over them.
    index = (torch.device(used_device).index or 0) if on_gpu else None
    return {
        "device": used_device,
        "device_index": index,
        "cuda_visible_devices": visible,
        "cuda_device_count": torch.cuda.device_count() if cuda else 0,
        "device_name": torch.cuda.get_device_name(index) if on_gpu else "cpu",
        "gpu_fallback": bool(visible) and visible != "-1" and not on_gpu,
    }
