"""Read a cell's `model.ckpt` without letting the file run code.

A checkpoint is a pickle. `torch.load(..., weights_only=True)` unpickles it
with torch's restricted unpickler, which rebuilds tensors and plain
containers (dict, list, str, numbers) and refuses any other global, so a
checkpoint swapped for a malicious one fails to load instead of running its
payload. A cell's checkpoint holds only such values: `state_dict`, `classes`,
`channels`, `arch`, `model_params`, `n_tabular`, `best_epoch`.

Every checkpoint or weights file spectragrid reads goes through this module
(`load_checkpoint`, `load_weights_file`); a test
checks that no other `torch.load` (or Lightning checkpoint loading) without
`weights_only=True` appears in the package or the workflow.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "load_checkpoint", "load_weights_file"]

# torch names the refused global in one of these two wordings, depending on the version
_GLOBAL = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)")
# os.system pickles as posix.system; say what users wrote
_DISPLAY_MODULES = {"posix": "os", "nt": "os"}


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded safely; the message names the file."""


def load_weights_file(path: Path | str, map_location: str | torch.device = "cpu") -> Any:
    """Whatever tensors and plain containers `path` holds (a cell's checkpoint, a
    torchvision state dict), loaded with `weights_only=True`, or a CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        asked = _GLOBAL.search(str(err))
        if asked:
            module, _, name = asked.group(1).rpartition(".")
            what = f"asks for {_DISPLAY_MODULES.get(module, module)}.{name}, which"
        else:
            what = "holds something that"
        raise CheckpointError(
            f"{path}: refused to load: the checkpoint {what} is not tensor data "
            "(checkpoints are loaded with weights_only=True; a checkpoint that needs "
            "more than tensors and plain containers can run code)"
        ) from None
    except (EOFError, RuntimeError, zipfile.BadZipFile) as err:
        first = str(err).split(". ")[0]
        raise CheckpointError(
            f"{path}: cannot read: truncated or not a torch checkpoint "
            f"({type(err).__name__}: {first})"
        ) from None
    return payload


def load_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint's dict, loaded with `weights_only=True`, or a CheckpointError."""
    path = Path(path)
    payload = load_weights_file(path, map_location)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(
            f"{path}: not a spectragrid checkpoint (expected a dict with a 'state_dict', "
            f"found {type(payload).__name__})"
        )
    return payload
