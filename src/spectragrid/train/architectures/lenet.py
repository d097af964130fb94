"""LeNet-style image baseline (LeCun et al. 1998, with ReLU and max-pooling).

conv 5x5 (6) - ReLU - max-pool 2 - conv 5x5 (16) - ReLU - max-pool 2 - average
pool to 5x5 - Linear 400-120 - ReLU - Linear 120-84 - ReLU - Linear 84-classes.
On 32x32 images the average pool is the identity (LeNet-5's own sizes); on
larger ones it keeps the classifier at 400 inputs, as torchvision's adaptive
pools do. The smallest image is 16x16, which leaves the second max-pool one
whole window.
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures.adaptive_pool import AdaptiveAvgPool2d
from spectragrid.train.architectures.image_base import ImageNetwork

STAGES = {
    "conv1": ["features.0"],
    "conv2": ["features.3"],
    "fc": ["classifier.0", "classifier.2"],
}


class LeNet(ImageNetwork):
    head_key = "classifier.4"
    input_conv = "features.0"
    min_size = 16

    def __init__(self, in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.avgpool = AdaptiveAvgPool2d((5, 5))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, n_classes),
        )

    def block_names(self) -> list[str]:
        return list(STAGES)

    def block_prefixes(self, name: str) -> list[str]:
        return STAGES.get(name, [name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def build(name: str, in_channels: int, n_classes: int, params: dict) -> LeNet:
    return LeNet(in_channels, n_classes)
