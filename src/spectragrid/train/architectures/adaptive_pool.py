"""An adaptive average pool that exports to ONNX at every image size.

ONNX has no adaptive pool: the exporter writes a fixed AveragePool, which it can
only do when the output size divides the input size (a 64x64 image leaves
LeNet's features at 13x13, pooled to 5x5; VGG's 2x2 at 64x64 is pooled up to
7x7). Each output cell of torch's adaptive pool is the mean of the input rows
floor(i*n/m) .. ceil((i+1)*n/m) - 1, so the pool is a product with one such
averaging matrix per axis, which ONNX writes as two MatMuls. Training keeps
torch's own kernel; only the export takes the matrix form, and the two agree to
float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional


def averaging_matrix(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """The n_out x n_in matrix whose row i averages torch's adaptive bin i."""
    matrix = torch.zeros(n_out, n_in, dtype=like.dtype, device=like.device)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = math.ceil((i + 1) * n_in / n_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """torch's AdaptiveAvgPool2d (same name in state dicts and model cards)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.output_size
        out_h, out_w = (size, size) if isinstance(size, int) else size
        height, width = int(x.shape[-2]), int(x.shape[-1])
        out_h = height if out_h is None else out_h
        out_w = width if out_w is None else out_w
        divides = height % out_h == 0 and width % out_w == 0
        if divides or not torch.onnx.is_in_onnx_export():
            return functional.adaptive_avg_pool2d(x, (out_h, out_w))
        rows = averaging_matrix(height, out_h, x)
        cols = averaging_matrix(width, out_w, x)
        return rows @ x @ cols.transpose(0, 1)
