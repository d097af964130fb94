"""An image network with its input normalisation inside: pixels in, logits out.

The normalisation is part of the module (buffers, saved in the checkpoint and
the ONNX graph), so serving cannot normalise differently from training. The
network is the `net` submodule, whose keys are torchvision's: a torchvision
state-dict file loads into `net`, a spectragrid checkpoint into the whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from spectragrid.train.architectures._common import ModelError
from spectragrid.train.architectures.frozen_norms import FrozenNormsMixin
from spectragrid.train.architectures.image_base import ImageNetwork

NORMALISATIONS: tuple[str, ...] = ("fit", "imagenet", "none")
# torchvision's ImageNet statistics of RGB images scaled to [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNormalize(nn.Module):
    """(x - mean) / std per channel, on pixel values 0-255 (uint8 or float).

    `fit`: the training images' per-channel mean and standard deviation;
    `imagenet`: torchvision's ImageNet statistics, for ImageNet weights (a
    grayscale image takes their mean over the three channels); `none`: pixels
    scaled to [0, 1].
    """

    def __init__(self, channels: int, mode: str) -> None:
        super().__init__()
        if mode not in NORMALISATIONS:
            raise ModelError(
                f"parameter 'normalize' must be one of {', '.join(NORMALISATIONS)}, got {mode!r}"
            )
        self.mode = mode
        mean, std = torch.zeros(channels), torch.full((channels,), 255.0)
        if mode == "imagenet":
            if channels not in (1, 3):
                raise ModelError(f"normalize 'imagenet' needs 1 or 3 channels, got {channels}")
            m, s = torch.tensor(IMAGENET_MEAN) * 255, torch.tensor(IMAGENET_STD) * 255
            mean, std = (m, s) if channels == 3 else (m.mean(0, True), s.mean(0, True))
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def extra_repr(self) -> str:
        return f"{len(self.mean)} channels, {self.mode}"

    def fit(self, images: np.ndarray | torch.Tensor) -> None:
        """Per-channel statistics of the training images (N, C, H, W); only under `fit`."""
        if self.mode != "fit":
            return
        x = torch.as_tensor(images).to(torch.float64).transpose(0, 1).flatten(1)
        self.mean.copy_(x.mean(dim=1))
        # A constant channel would divide by zero: it maps to 0 instead.
        self.std.copy_(x.std(dim=1, correction=0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1, 1, 1)
        return (x.float() - self.mean.view(shape)) / self.std.view(shape)


class ImageClassifier(FrozenNormsMixin, nn.Module):
    """Normalisation, then an image network. Called as (images, tabular) like the
    spectral models, so the training loop, prediction and export take either;
    image models have no tabular inputs (a (B, 0) tensor)."""

    def __init__(self, net: ImageNetwork, normalize: ImageNormalize) -> None:
        super().__init__()
        self.preprocess = normalize
        self.net = net
        self.n_tabular = 0
        # The weights file the model started from (spectragrid.train.transfer), if any.
        self.transfer = None

    @property
    def head_key(self) -> str:
        return f"net.{self.net.head_key}"

    @property
    def input_conv(self) -> str:
        return f"net.{self.net.input_conv}"

    def block_names(self) -> list[str]:
        return self.net.block_names()

    def block_prefixes(self, name: str) -> list[str]:
        return [f"net.{prefix}" for prefix in self.net.block_prefixes(name)]

    def fit_scaling(self, images: np.ndarray, tabular: np.ndarray | None = None) -> None:
        self.preprocess.fit(images)

    def forward(self, images: torch.Tensor, tabular: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(self.preprocess(images))
