"""The model card's layer table and its FLOPs split into additions, multiplications
and max operations, from one forward pass of one sample through hooks.

Each operation of the forward pass (every module without submodules, in the
order they run) is a row: n, the module's path, Fn (its function with its
hyper-parameters), Xn (the size of its output, X0 being the input), Wn (the
shapes of its weights) and its parameter count. Counted per sample, by
operation:

    convolution   per output: k multiplications, k - 1 additions (+1 with a
                  bias), k = input channels per group x kernel size
    Linear        per output: in multiplications, in - 1 additions (+1 with a bias)
    batch norm    per element: 1 multiplication, 1 addition (inference: a scale
                  and a shift)
    ReLU          per element: 1 max
    max-pool      per output: window - 1 max
    average pool  per output: window - 1 additions, 1 multiplication (none for
                  a window of one, which copies)
    residual      per element: 1 addition
    normalise     per element: 1 addition, 1 multiplication (a division counts
                  as a multiplication)

Flatten, dropout (off at inference) and reshapes cost nothing. Other
operations (layer and group norm, GELU, attention, the spectral
preprocessing) are listed with `counted: false` and left out of the totals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from spectragrid.train.architectures.image_base import Residual
from spectragrid.train.architectures.image_classifier import ImageNormalize

FREE = (nn.Flatten, nn.Dropout, nn.Identity)


def _window_sizes(n_in: int, n_out: int) -> list[int]:
    """PyTorch's adaptive pooling windows along one axis (floor start, ceil end)."""
    return [-(-((i + 1) * n_in) // n_out) - (i * n_in) // n_out for i in range(n_out)]


def _average_pool(inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int]:
    """(additions, multiplications) of average pools over the trailing axes."""
    spatial_in, spatial_out = inp.shape[2:], out.shape[2:]
    per_axis = [_window_sizes(i, o) for i, o in zip(spatial_in, spatial_out, strict=True)]
    adds = mults = 0
    channels = out.shape[1]
    windows = [1]
    for sizes in per_axis:
        windows = [w * s for w in windows for s in sizes]
    for w in windows:
        if w > 1:
            adds += w - 1
            mults += 1
    return channels * adds, channels * mults


def _pool_window(module: nn.Module, dims: int) -> int:
    kernel = module.kernel_size  # type: ignore[attr-defined]
    sizes = (kernel,) * dims if isinstance(kernel, int) else tuple(kernel)
    return math.prod(sizes)


def _count(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> tuple[int, int, int] | None:
    """(additions, multiplications, max operations) for one sample, or None if not counted."""
    per_sample = out[0].numel()
    if isinstance(module, nn.modules.conv._ConvNd):
        k = module.in_channels // module.groups * math.prod(module.kernel_size)
        return per_sample * (k - 1 + (module.bias is not None)), per_sample * k, 0
    if isinstance(module, nn.Linear):
        k = module.in_features
        return per_sample * (k - 1 + (module.bias is not None)), per_sample * k, 0
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return per_sample, per_sample, 0
    if isinstance(module, nn.ReLU):
        return 0, 0, per_sample
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d):
        dims = 1 if isinstance(module, nn.MaxPool1d) else 2
        return 0, 0, per_sample * (_pool_window(module, dims) - 1)
    if isinstance(module, nn.AdaptiveAvgPool1d | nn.AdaptiveAvgPool2d):
        adds, mults = _average_pool(inp[:1], out[:1])
        return adds, mults, 0
    if isinstance(module, nn.AvgPool2d):
        window = _pool_window(module, 2)
        return (per_sample * (window - 1), per_sample, 0) if window > 1 else (0, 0, 0)
    if isinstance(module, Residual | ImageNormalize):
        return per_sample, per_sample if isinstance(module, ImageNormalize) else 0, 0
    if isinstance(module, FREE):
        return 0, 0, 0
    return None


def layer_table(model: nn.Module, inputs: Sequence[torch.Tensor]) -> dict:
    """The card's `layers` (rows) and `flops` (totals) for `model` called on `inputs`
    (a batch; the figures are per sample)."""
    rows: list[dict] = []
    names = {module: name for name, module in model.named_modules()}

    def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        if not isinstance(out, torch.Tensor):
            return
        inp = args[0] if args and isinstance(args[0], torch.Tensor) else out
        counted = _count(module, inp, out)
        adds, mults, maxes = counted or (0, 0, 0)
        weights = {n: list(p.shape) for n, p in module.named_parameters(recurse=False)}
        rows.append(
            {
                "n": len(rows) + 1,
                "name": names[module],
                "function": f"{type(module).__name__}({module.extra_repr()})",
                "output": list(out.shape[1:]),
                "weights": weights,
                "parameters": sum(p.numel() for p in module.parameters(recurse=False)),
                "additions": adds,
                "multiplications": mults,
                "max_operations": maxes,
                "counted": counted is not None,
            }
        )

    hooks = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if not any(True for _ in m.children()) and m is not model
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    totals = {
        key: sum(row[key] for row in rows)
        for key in ("additions", "multiplications", "max_operations")
    }
    return {
        "input": list(inputs[0].shape[1:]),
        "layers": rows,
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops": {**totals, "total": sum(totals.values())},
        "not_counted": sorted(
            {row["function"].split("(")[0] for row in rows if not row["counted"]}
        ),
    }
