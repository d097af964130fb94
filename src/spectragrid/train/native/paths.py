"""Which path each kernel's training calls took: the C kernel or the PyTorch layers.

The two compute the same numbers up to float32 rounding, but they are not the
same code, so a model card says which one trained the model. Only calls that
could take a kernel (a module in training mode, gradients on) are noted, and
only inside `KernelPaths.recording()`: evaluation always runs the layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

KERNEL = "c kernel"
LAYERS = "torch layers"
NOT_APPLICABLE = "not applicable"
KERNELS: tuple[str, ...] = ("first_stage", "pool_relu")

_ACTIVE: ContextVar[KernelPaths | None] = ContextVar("spectragrid_kernel_paths", default=None)


class KernelPaths:
    """The paths taken per kernel; a model without a stage of a kernel's form takes none."""

    def __init__(self) -> None:
        self._taken: dict[str, set[str]] = {name: set() for name in KERNELS}

    @contextlib.contextmanager
    def recording(self) -> Iterator[KernelPaths]:
        """Note the paths of the training calls made inside the block."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def describe(self) -> dict[str, str]:
        """Per kernel: `c kernel`, `torch layers` (both, joined by `and`, if calls
        differed), or `not applicable` when no stage had the kernel's form."""
        return {
            name: " and ".join(sorted(paths)) or NOT_APPLICABLE
            for name, paths in self._taken.items()
        }

    def state_dict(self) -> dict[str, list[str]]:
        return {name: sorted(paths) for name, paths in self._taken.items()}

    def load_state_dict(self, state: Mapping[str, list[str]]) -> None:
        self._taken = {name: set(state[name]) for name in KERNELS}


def note(kernel: str, path: str) -> None:
    """Record that a training call of `kernel`'s stage took `path`, if a recording is on."""
    paths = _ACTIVE.get()
    if paths is not None:
        paths._taken[kernel].add(path)
