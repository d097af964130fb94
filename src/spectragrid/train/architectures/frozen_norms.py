"""Batch norms of a frozen part of a network keep their running statistics."""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class FrozenNormsMixin(nn.Module):
    """`train()` leaves in eval mode every batch norm whose weights are frozen.

    A frozen backbone (train.freeze: backbone) must compute the function it was
    trained to compute: its batch norms normalise with their stored statistics
    instead of each batch's, and do not update them. A batch norm whose weights
    train again (train.unfreeze) trains as usual from the next `train()` on.
    """

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for module in self.modules():
                if (
                    isinstance(module, _BatchNorm)
                    and module.affine
                    and not any(p.requires_grad for p in module.parameters(recurse=False))
                ):
                    module.eval()
        return self
