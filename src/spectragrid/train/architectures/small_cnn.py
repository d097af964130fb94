"""A small CNN for CIFAR-sized images under a parameter budget.

Stages of `convs_per_stage` 3x3 convolutions (batch norm, ReLU) closed by a
2x2 max-pool, a global average pool and a dropout + Linear head. The default
widths 32-64-96 with two convolutions per stage hold 205,354 parameters for
3-channel images and 10 classes: under the 256K budget of the users' course,
with room for a wider head. The global pool takes any image of at least
2^stages pixels a side (8x8 at the defaults).
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures._common import int_list, positive_int
from spectragrid.train.architectures.image_base import ImageNetwork, init_like_torchvision


class SmallCNN(ImageNetwork):
    head_key = "classifier.1"
    input_conv = "features.0"

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: list[int],
        convs_per_stage: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.min_size = 2 ** len(widths)
        layers: list[nn.Module] = []
        self._stages: list[list[str]] = []
        c_in = in_channels
        for width in widths:
            stage = []
            for _ in range(convs_per_stage):
                stage += [f"features.{len(layers)}", f"features.{len(layers) + 1}"]
                # A bias before batch norm is cancelled by its mean subtraction.
                layers += [
                    nn.Conv2d(c_in, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                c_in = width
            layers.append(nn.MaxPool2d(2))
            self._stages.append(stage)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(c_in, n_classes))
        init_like_torchvision(self)

    def block_names(self) -> list[str]:
        return [f"stage{i + 1}" for i in range(len(self._stages))]

    def block_prefixes(self, name: str) -> list[str]:
        if name.startswith("stage") and name[5:].isdigit():
            index = int(name[5:]) - 1
            if 0 <= index < len(self._stages):
                return self._stages[index]
        return [name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def build(name: str, in_channels: int, n_classes: int, params: dict) -> SmallCNN:
    return SmallCNN(
        in_channels,
        n_classes,
        int_list(params, "widths"),
        positive_int(params, "convs_per_stage"),
        float(params["dropout"]),
    )
