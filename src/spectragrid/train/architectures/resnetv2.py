"""BiT-style 1-D ResNetV2: pre-activation bottlenecks, GroupNorm, weight standardisation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from spectragrid.train.architectures._common import ModelError, group_count, positive_int


class StdConv1d(nn.Conv1d):
    """Conv1d whose weight is standardised per output channel at every forward.

    Standardising in forward (not once at init) keeps the property through
    training; with GroupNorm it removes the dependence on batch statistics that
    makes batch norm unreliable on small batches.
    """

    def __init__(self, *args, eps: float = 1e-8, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Mean and variance written out (not torch.var_mean) so the ONNX graph
        # uses plain ReduceMean ops on every opset.
        mean = self.weight.mean(dim=(1, 2), keepdim=True)
        centred = self.weight - mean
        var = (centred * centred).mean(dim=(1, 2), keepdim=True)
        return self._conv_forward(x, centred / torch.sqrt(var + self.eps), self.bias)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels), channels)


class PreActBottleneck(nn.Module):
    """GN-ReLU-conv1x1, GN-ReLU-conv3 (strided), GN-ReLU-conv1x1, plus the shortcut."""

    def __init__(self, c_in: int, c_out: int, c_mid: int, stride: int) -> None:
        super().__init__()
        self.gn1 = group_norm(c_in)
        self.conv1 = StdConv1d(c_in, c_mid, 1, bias=False)
        self.gn2 = group_norm(c_mid)
        self.conv2 = StdConv1d(c_mid, c_mid, 3, stride=stride, padding=1, bias=False)
        self.gn3 = group_norm(c_mid)
        self.conv3 = StdConv1d(c_mid, c_out, 1, bias=False)
        self.downsample = (
            StdConv1d(c_in, c_out, 1, stride=stride, bias=False)
            if stride != 1 or c_in != c_out
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.gn1(x))
        # BiT projects the pre-activated input, so the shortcut is normalised too.
        residual = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.gn2(out)))
        out = self.conv3(F.relu(self.gn3(out)))
        return out + residual


class ResNetV2Trunk(nn.Module):
    def __init__(self, n_channels: int, depths: list[int], width: int, base_width: int) -> None:
        super().__init__()
        root = base_width * width
        self.root = nn.Sequential(
            StdConv1d(n_channels, root, 7, stride=2, padding=3, bias=False),
            nn.MaxPool1d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        c_in = root
        for index, depth in enumerate(depths):
            c_mid = root * 2**index
            c_out = 4 * c_mid
            # The first stage keeps the resolution: the root already downsampled 4x.
            stride = 1 if index == 0 else 2
            blocks = [
                PreActBottleneck(c_in if b == 0 else c_out, c_out, c_mid, stride if b == 0 else 1)
                for b in range(depth)
            ]
            stages.append(nn.Sequential(*blocks))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.norm = group_norm(c_in)
        self.features = c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.root(x))
        # A plain mean over positions is global average pooling that exports
        # to ONNX for any length.
        return F.relu(self.norm(x)).mean(dim=2)


def parse_depth(depth: str) -> list[int]:
    parts = depth.split("_")
    if len(parts) != 4 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ModelError(
            f"parameter 'depth' must be four positive block counts like '3_4_6_3', got {depth!r}"
        )
    return [int(p) for p in parts]


def build_trunk(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
    depths = parse_depth(params["depth"])
    width = positive_int(params, "width")
    # A 1x1 standardised conv over one input channel would have zero variance.
    base_width = positive_int(params, "base_width", minimum=2)
    trunk = ResNetV2Trunk(n_channels, depths, width, base_width)
    return trunk, trunk.features
