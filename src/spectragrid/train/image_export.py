"""ONNX export of an image model: uint8 HWC images in, class probabilities out.

The file takes what an image file decodes into, `image` (B, H, W, C) uint8
with the data set's bands (L, or R G B), and does the rest inside: picking
and ordering the channel set's bands, HWC -> CHW, the model's normalisation
and the softmax. It passes the parity check every exported cell passes
(spectragrid.train.export.check_feeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from spectragrid.core.atomic import atomic_path
from spectragrid.train.export import OPSET, add_metadata, check_feeds

IMAGE_INPUT = "image"


class ImageProbabilityModel(nn.Module):
    """(B, H, W, C_data) uint8 -> (B, classes) probabilities of `model`, which takes
    (B, C, H, W) images of the bands at `band_index` of the data's bands."""

    def __init__(self, model: nn.Module, band_index: list[int]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("band_index", torch.tensor(band_index, dtype=torch.int64))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        chw = image.index_select(3, self.band_index).permute(0, 3, 1, 2)
        return torch.softmax(self.model(chw), dim=1)


def export_image_onnx(
    model: nn.Module,
    path: Path,
    height: int,
    width: int,
    data_bands: list[str],
    bands: list[str],
    metadata: dict[str, object],
) -> None:
    """Write `path` atomically: input `image` (B, height, width, len(data_bands)) uint8."""
    model = model.to("cpu").eval()
    wrapper = ImageProbabilityModel(model, [data_bands.index(b) for b in bands]).eval()
    example = torch.zeros(2, height, width, len(data_bands), dtype=torch.uint8)
    with atomic_path(path) as tmp:
        torch.onnx.export(
            wrapper,
            (example,),
            str(tmp),
            input_names=[IMAGE_INPUT],
            output_names=["probabilities"],
            dynamic_axes={IMAGE_INPUT: {0: "batch"}, "probabilities": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
        proto = onnx.load(str(tmp))
        add_metadata(
            proto,
            {**metadata, "input": f"{IMAGE_INPUT} (B, {height}, {width}, {len(data_bands)}) uint8"},
        )
        onnx.save(proto, str(tmp))


def check_image_parity(path: Path, images_hwc: np.ndarray, expected: np.ndarray) -> dict:
    """The parity gate of an image model's file on the test fold's uint8 HWC images."""
    return check_feeds(path, {IMAGE_INPUT: np.ascontiguousarray(images_hwc)}, expected)
