"""Start a model from the weights of a local file (`models.<name>.pretrained`).

Two kinds of file: a torchvision state dict (`resnet18-f37072fd.pth`, a
mapping of parameter names to tensors, loaded into the image network, whose
names are torchvision's) or a spectragrid cell's `model.ckpt` (loaded into
the whole model: networks of spectra or images alike, so a model pretrained
on one target fine-tunes on another). Both are read with
`torch.load(weights_only=True)` (spectragrid.train.checkpoints): no code runs.

The head, the layer sized for the classes, is skipped: the model keeps its
new head, sized for its own target. Every other tensor of the model must come
from the file with its shape, and every tensor of the file must find its
place; anything else is an error naming the tensor and the file. Two
tolerated differences: a missing batch-norm `num_batches_tracked` counter
(older torchvision files lack it; torch fills it in), and an RGB input
convolution loaded into a grayscale model, whose weights are summed over the
three colours (a gray image, R = G = B, then gives the RGB network's response).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from spectragrid.train.architectures._common import ModelError
from spectragrid.train.checkpoints import CheckpointError, load_weights_file


class TransferError(ModelError):
    """Pretrained weights that do not fit the model; the message names the key and file."""


@dataclass
class TransferReport:
    path: str
    kind: str  # "torchvision" or "spectragrid"
    loaded: int = 0  # tensors loaded
    skipped_head: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)  # RGB input convolutions summed to gray

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "loaded": self.loaded,
            "skipped_head": self.skipped_head,
            "adapted": self.adapted,
        }


def load_pretrained(model: nn.Module, path: Path | str, key: str = "pretrained") -> TransferReport:
    """Load `path` into `model` (see the module's docstring); `key` is the config key
    that named the file, quoted in every error."""
    path = Path(path)
    if not path.is_file():
        raise TransferError(f"{key}: no such file: {path}")
    try:
        payload = load_weights_file(path)
    except CheckpointError as error:
        raise TransferError(f"{key}: {error}") from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        source, target, kind = payload["state_dict"], model, "spectragrid"
        head = model.head_key  # type: ignore[attr-defined]
        note = f" (the file holds a {payload['arch']!r} model)" if "arch" in payload else ""
    elif isinstance(payload, dict) and all(isinstance(v, torch.Tensor) for v in payload.values()):
        target = getattr(model, "net", model)
        source, kind, note = payload, "torchvision", ""
        head = target.head_key  # type: ignore[attr-defined]
    else:
        raise TransferError(
            f"{key}: {path}: neither a state dict (parameter names to tensors) nor a "
            "spectragrid checkpoint"
        )
    input_conv = f"{getattr(target, 'input_conv', '')}.weight"
    report = TransferReport(str(path), kind)
    expected = target.state_dict()
    state: dict[str, torch.Tensor] = {}
    for name, tensor in expected.items():
        if _in_module(name, head):
            continue
        if name not in source:
            if name.endswith(".num_batches_tracked"):
                continue
            raise TransferError(
                f"{key}: {path} has no tensor {name!r}, which the model needs{note}"
            )
        value = source[name]
        if not isinstance(value, torch.Tensor):
            raise TransferError(f"{key}: {path}: {name!r} is not a tensor")
        if value.shape != tensor.shape:
            if name == input_conv and _gray_from_rgb(value, tensor):
                value = value.sum(dim=1, keepdim=True)
                report.adapted.append(name)
            else:
                raise TransferError(
                    f"{key}: {path}: {name!r} has shape {tuple(value.shape)} in the file and "
                    f"{tuple(tensor.shape)} in the model{note}"
                )
        state[name] = value
    report.skipped_head = sorted(name for name in source if _in_module(name, head))
    unexpected = [n for n in source if n not in expected and not _in_module(n, head)]
    if unexpected:
        raise TransferError(
            f"{key}: {path}: tensor {unexpected[0]!r} (and {len(unexpected) - 1} more) has no "
            f"place in the model{note}"
        )
    target.load_state_dict(state, strict=False)
    report.loaded = len(state)
    return report


def _in_module(name: str, module: str) -> bool:
    return name == module or name.startswith(module + ".")


def _gray_from_rgb(value: torch.Tensor, tensor: torch.Tensor) -> bool:
    return (
        value.dim() == 4
        and value.shape[1] == 3
        and tensor.shape[1] == 1
        and value.shape[0] == tensor.shape[0]
        and value.shape[2:] == tensor.shape[2:]
    )
