"""ResNet-18 and ResNet-34 (He et al. 2016) in torchvision's layout.

Keys: conv1.weight, bn1.*, layer1.0.conv1.weight, layer1.0.bn1.*, ...,
layer2.0.downsample.0.weight, layer2.0.downsample.1.*, ..., fc.weight, fc.bias.
The global average pool (AdaptiveAvgPool2d(1), as torchvision) takes any image
of at least 32x32 pixels: the five stride-2 stages leave one position there.
"""

from __future__ import annotations

import torch
from torch import nn

from spectragrid.train.architectures.image_base import (
    ImageNetwork,
    Residual,
    init_like_torchvision,
)

DEPTHS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
}
WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the (projected) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = (
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
            if stride != 1 or c_in != c_out
            else None
        )
        self.add = Residual()
        # A second ReLU module: the first one's hook would count the output twice.
        self.relu_out = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu_out(self.add(out, shortcut))


class ResNet(ImageNetwork):
    head_key = "fc"
    input_conv = "conv1"
    min_size = 32

    def __init__(self, depths: tuple[int, ...], in_channels: int, n_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        stages = []
        c_in = 64
        for index, (depth, width) in enumerate(zip(depths, WIDTHS, strict=True)):
            # The first stage keeps the resolution: the stem already downsampled 4x.
            stride = 1 if index == 0 else 2
            blocks = [
                BasicBlock(c_in if b == 0 else width, width, stride if b == 0 else 1)
                for b in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            c_in = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(512, n_classes)
        init_like_torchvision(self)

    def block_names(self) -> list[str]:
        return ["stem", "layer1", "layer2", "layer3", "layer4"]

    def block_prefixes(self, name: str) -> list[str]:
        return ["conv1", "bn1"] if name == "stem" else [name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.flatten(self.avgpool(x)))


def build(name: str, in_channels: int, n_classes: int, params: dict) -> ResNet:
    return ResNet(DEPTHS[name], in_channels, n_classes)
