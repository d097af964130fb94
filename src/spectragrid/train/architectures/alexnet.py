"""AlexNet (Krizhevsky et al. 2012, the one-GPU variant torchvision ships) in
torchvision's layout.

Keys: features.0, .3, .6, .8, .10 (convolutions), classifier.1, .4, .6
(Linear layers). The average pool to 6x6 (AdaptiveAvgPool2d, as torchvision)
keeps the classifier's 9,216 inputs for any image of at least 63x63 pixels,
the smallest that leaves each of the three 3x3 max-pools a whole window.
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures.adaptive_pool import AdaptiveAvgPool2d
from spectragrid.train.architectures.image_base import ImageNetwork

# Module paths of each convolution stage: the blocks `unfreeze` names.
STAGES = {
    "conv1": ["features.0"],
    "conv2": ["features.3"],
    "conv3": ["features.6"],
    "conv4": ["features.8"],
    "conv5": ["features.10"],
    "fc": ["classifier.1", "classifier.4"],
}


class AlexNet(ImageNetwork):
    head_key = "classifier.6"
    input_conv = "features.0"
    min_size = 63

    def __init__(self, in_channels: int, n_classes: int, dropout: float) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, n_classes),
        )

    def block_names(self) -> list[str]:
        return list(STAGES)

    def block_prefixes(self, name: str) -> list[str]:
        return STAGES.get(name, [name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.avgpool(self.features(x))))


def build(name: str, in_channels: int, n_classes: int, params: dict) -> AlexNet:
    return AlexNet(in_channels, n_classes, float(params["dropout"]))
