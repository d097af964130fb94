"""VGG-11 and VGG-16 (Simonyan & Zisserman 2015) for images, with and without
batch norm, in torchvision's layout.

Keys: features.N.weight / .bias for the convolutions (and features.N.* for
their batch norms) at torchvision's indices, classifier.0, classifier.3 and
classifier.6 for the three Linear layers. The average pool to 7x7
(AdaptiveAvgPool2d, as torchvision) keeps the classifier's 25,088 inputs for
any image of at least 32x32 pixels (the five max-pools leave one position
there, which the pool repeats).
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures.adaptive_pool import AdaptiveAvgPool2d
from spectragrid.train.architectures.image_base import ImageNetwork, init_like_torchvision

# torchvision's configurations "A" (11 layers) and "D" (16 layers); M is a 2x2 max-pool.
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ),
}


class VGG(ImageNetwork):
    head_key = "classifier.6"
    input_conv = "features.0"
    min_size = 32

    def __init__(
        self,
        config: tuple[int | str, ...],
        batch_norm: bool,
        in_channels: int,
        n_classes: int,
        dropout: float,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        # Module paths of each stage's layers: the blocks `unfreeze` names.
        self._stages: list[list[str]] = [[]]
        c_in = in_channels
        for value in config:
            if value == "M":
                layers.append(nn.MaxPool2d(2, stride=2))
                self._stages.append([])
                continue
            assert isinstance(value, int)
            self._stages[-1].append(f"features.{len(layers)}")
            layers.append(nn.Conv2d(c_in, value, 3, padding=1))
            if batch_norm:
                self._stages[-1].append(f"features.{len(layers)}")
                layers.append(nn.BatchNorm2d(value))
            layers.append(nn.ReLU(inplace=True))
            c_in = value
        self._stages.pop()  # the empty list opened by the last max-pool
        self.features = nn.Sequential(*layers)
        self.avgpool = AdaptiveAvgPool2d((7, 7))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Linear(4096, n_classes),
        )
        init_like_torchvision(self, linear_std=0.01)

    def block_names(self) -> list[str]:
        return [f"stage{i + 1}" for i in range(len(self._stages))] + ["fc"]

    def block_prefixes(self, name: str) -> list[str]:
        if name == "fc":
            # The two hidden Linear layers; the head (classifier.6) always trains.
            return ["classifier.0", "classifier.3"]
        if name.startswith("stage") and name[5:].isdigit():
            index = int(name[5:]) - 1
            if 0 <= index < len(self._stages):
                return self._stages[index]
        return [name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def build(name: str, in_channels: int, n_classes: int, params: dict) -> VGG:
    """`name` is vgg11, vgg11_bn, vgg16 or vgg16_bn."""
    base, _, bn = name.partition("_")
    return VGG(CONFIGS[base], bn == "bn", in_channels, n_classes, float(params["dropout"]))
