"""What every image network declares beyond its layers: its head, its input
convolution, its blocks and the smallest image it takes.

Image networks keep torchvision's parameter names (conv1.weight,
layer1.0.bn1.running_mean, features.0.weight, classifier.6.bias, ...), so a
torchvision ImageNet state-dict file loads into them unchanged. The layers
that carry no parameters (ReLU, pooling, the residual additions) are modules
too, so the model card's forward hooks see every operation.
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures._common import ModelError


class ImageNetwork(nn.Module):
    """Base of the image families: float (B, C, H, W) in, one logit per class out.

    Subclasses set `head_key` (the module path of the last Linear, the layer a
    transfer replaces), `input_conv` (the module path of the first
    convolution) and `min_size`, and list their blocks in `block_names`, from
    the input to the output: `unfreeze: N` opens the last N of them.
    """

    head_key: str = ""
    input_conv: str = ""
    min_size: int = 1

    def block_names(self) -> list[str]:
        raise NotImplementedError

    def block_prefixes(self, name: str) -> list[str]:
        """Module paths a block name stands for (by default, itself)."""
        return [name]

    def head(self) -> nn.Linear:
        head = self.get_submodule(self.head_key)
        assert isinstance(head, nn.Linear)
        return head


class Residual(nn.Module):
    """x + shortcut, a module of its own so that the FLOP count sees the addition."""

    def forward(self, x: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return x + shortcut


def require_image_size(size: tuple[int, int], minimum: int, arch: str) -> None:
    height, width = size
    if min(height, width) < minimum:
        raise ModelError(
            f"images of {height}x{width} pixels are too small: {arch} needs at least "
            f"{minimum}x{minimum}"
        )


def init_like_torchvision(module: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's initialisation of its VGG and ResNet families: He-normal
    convolutions (fan out), batch norm at the identity, Linear N(0, 0.01) when
    `linear_std` is given (VGG) or PyTorch's default otherwise (ResNet, AlexNet)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)
