"""Training-time transforms of whole image batches: seeded flips and padded random crops.

`models.<name>.transforms` of an image family: `hflip` / `vflip` (each image
mirrored with probability 1/2) and `crop_padding: p` (the image padded with
p zero pixels on every side, then a random window of its own size cut out:
shifts of up to p pixels, the CIFAR practice with p = 4). Applied on the
uint8 batch before the model's normalisation, like the spectral `Augment`,
and called the same way (`augment(images, tabular, generator)`), so the
training steps take either. Every draw comes from the given CPU generator:
the same seed gives the same batches on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

IMAGE_TRANSFORMS: tuple[str, ...] = ("hflip", "vflip", "crop_padding")


class ImageAugment:
    """Batch transforms of (B, C, H, W) images from `transforms` (see the module doc)."""

    def __init__(self, transforms: Mapping[str, Any] | None) -> None:
        transforms = dict(transforms or {})
        unknown = [key for key in transforms if key not in IMAGE_TRANSFORMS]
        if unknown:
            raise ValueError(
                f"transforms: {unknown[0]!r} is no image transform; "
                f"allowed: {', '.join(IMAGE_TRANSFORMS)}"
            )
        self.hflip = bool(transforms.get("hflip", False))
        self.vflip = bool(transforms.get("vflip", False))
        padding = transforms.get("crop_padding", 0)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"transforms.crop_padding: expected an integer >= 0, got {padding!r}")
        self.padding = padding

    @property
    def names(self) -> tuple[str, ...]:
        """Enabled transforms, as shown in `t=(...)` of model names."""
        names = [n for n, on in (("hflip", self.hflip), ("vflip", self.vflip)) if on]
        return (*names, f"crop{self.padding}") if self.padding else tuple(names)

    def __bool__(self) -> bool:
        return bool(self.names)

    def __call__(
        self, images: torch.Tensor, tabular: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = images.shape[0]
        if self.hflip:
            flip = torch.rand(n, generator=generator) < 0.5
            images = torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-1), images)
        if self.vflip:
            flip = torch.rand(n, generator=generator) < 0.5
            images = torch.where(flip.to(images.device).view(-1, 1, 1, 1), images.flip(-2), images)
        if self.padding:
            images = self._crop(images, generator)
        return images, tabular

    def _crop(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each image shifted by its own (dy, dx) in [-p, p], vacated pixels zero."""
        n, _, height, width = images.shape
        p = self.padding
        padded = torch.nn.functional.pad(images, (p, p, p, p))
        offsets = torch.randint(0, 2 * p + 1, (n, 2), generator=generator).to(images.device)
        rows = offsets[:, :1] + torch.arange(height, device=images.device)  # (B, H)
        cols = offsets[:, 1:] + torch.arange(width, device=images.device)  # (B, W)
        batch = torch.arange(n, device=images.device).view(-1, 1, 1)
        # Advanced indexing over (batch, row, col) puts the channels last: (B, H, W, C).
        cropped = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
        return cropped.permute(0, 3, 1, 2).contiguous()
