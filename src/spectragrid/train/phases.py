"""Two training phases for fine-tuning: a frozen backbone, then its last blocks open.

`train.freeze: backbone` trains the head alone (the layer sized for the
classes); `train.unfreeze` names blocks (`[layer4]`) or counts the last ones
(`1`) that train from epoch `train.unfreeze_after` on, at their own learning
rate `train.unfreeze_lr` (default `train.lr`).

The loop sees two optimizer parameter groups from the start: the head at
`train.lr`, the blocks to open at `train.unfreeze_lr`. Until they open their
weights do not require gradients, so the optimizer leaves them as they are
(Adam skips a parameter without a gradient, weight decay included), and
their batch norms keep their statistics (architectures.frozen_norms).
Opening them only turns their gradients on: the optimizer, the schedule and
the resumable state stay as they were, and the phase of an epoch depends on
its number alone, so a resumed run is in the phase an uninterrupted one is.
The rest of the backbone stays frozen throughout.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from spectragrid.train.settings import TrainSettings

FREEZE_CHOICES: tuple[str, ...] = ("none", "backbone")


class PhaseError(ValueError):
    """A freeze / unfreeze setting that does not fit the model; names the key."""


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def unfreeze_prefixes(model: nn.Module, unfreeze: tuple[str, ...] | int) -> list[str]:
    """Module paths of the blocks `unfreeze` names or counts (the last N)."""
    blocks = list(model.block_names())  # type: ignore[operator]
    if isinstance(unfreeze, int):
        if unfreeze > len(blocks):
            raise PhaseError(
                f"train.unfreeze: {unfreeze} blocks asked, the model has {len(blocks)}: "
                f"{', '.join(blocks)}"
            )
        names = blocks[len(blocks) - unfreeze :] if unfreeze else []
    else:
        names = list(unfreeze)
    modules = dict(model.named_modules())
    prefixes: list[str] = []
    for name in names:
        paths = model.block_prefixes(name)  # type: ignore[operator]
        if not all(path in modules for path in paths):
            raise PhaseError(
                f"train.unfreeze: {name!r} is not a block of this model; its blocks, from "
                f"input to output: {', '.join(blocks)} (or a module path of the network)"
            )
        prefixes += paths
    return prefixes


class TrainingPhases:
    """The parameter groups of a fit and the phase each epoch trains in."""

    def __init__(self, model: nn.Module, settings: TrainSettings) -> None:
        self.model = model
        self.after = settings.unfreeze_after
        if settings.freeze not in FREEZE_CHOICES:
            raise PhaseError(
                f"train.freeze: unknown value {settings.freeze!r}; allowed: "
                f"{', '.join(FREEZE_CHOICES)}"
            )
        self.frozen = settings.freeze == "backbone"
        unfreeze = settings.unfreeze
        if not self.frozen:
            if unfreeze:
                raise PhaseError(
                    "train.unfreeze: opens blocks of a frozen backbone; set train.freeze: "
                    "backbone, or leave train.unfreeze out"
                )
            self.head: list[nn.Parameter] = []
            self.opened: list[nn.Parameter] = []
            self.lr_opened = settings.lr
            return
        head_key = model.head_key  # type: ignore[attr-defined]
        prefixes = unfreeze_prefixes(model, unfreeze)
        named = list(model.named_parameters())
        self.head = [p for n, p in named if _under(n, [head_key])]
        self.opened = [p for n, p in named if _under(n, prefixes) and not _under(n, [head_key])]
        self.lr_opened = settings.unfreeze_lr if settings.unfreeze_lr is not None else settings.lr
        for name, parameter in named:
            if not _under(name, [head_key]):
                parameter.requires_grad_(False)
        model.train(model.training)  # the frozen batch norms to eval mode

    def param_groups(self) -> list[Any]:
        """What the optimizer is built over: every parameter, or the two groups."""
        if not self.frozen:
            return list(self.model.parameters())
        groups: list[dict[str, Any]] = [{"params": self.head}]
        if self.opened:
            groups.append({"params": self.opened, "lr": self.lr_opened})
        return groups

    def phase(self, epoch: int) -> int:
        """1 while the backbone is frozen, 2 once the blocks are open (epoch 0-based)."""
        return 2 if self.frozen and self.opened and epoch >= self.after else 1

    @property
    def last_phase_start(self) -> int:
        """Epochs done when the last phase starts (0 without a second phase)."""
        return self.after if self.frozen and self.opened else 0

    def enter(self, epoch: int) -> None:
        """Set the model up for `epoch` (0-based), before its first step."""
        if self.phase(epoch) == 2 and not self.opened[0].requires_grad:
            for parameter in self.opened:
                parameter.requires_grad_(True)
            self.model.train(self.model.training)  # their batch norms train again
