"""A planar max-pool followed by ReLU, as one C kernel in training.

torch runs them as separate operators: the pool stores a 64-bit index per
output, and its backward fills a zero gradient and scatters into it before
the ReLU's backward has masked its own. For the demo CNN's later stages (and
VGG's pools) that is a few small passes over memory per layer per step; the
kernel in native/pool_relu.c does each direction in one pass with a one-byte
index. The results are torch's exactly (pooling and ReLU do no arithmetic),
in float32 and bfloat16.

Used in training with gradients on, for CPU channels-last planar input, a
max-pool whose stride is its kernel, and never while torch traces the model
for ONNX; anywhere else the two layers run as they are.
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn

from spectragrid.train.native.build import enabled, load

_ARGS_FORWARD = [ctypes.c_void_p] * 3 + [ctypes.c_int] + [ctypes.c_int64] * 5 + [ctypes.c_int]
_ARGS_BACKWARD = [ctypes.c_void_p] * 4 + [ctypes.c_int] + [ctypes.c_int64] * 5 + [ctypes.c_int]


def _kernel() -> ctypes.CDLL | None:
    lib = load("pool_relu")
    if lib is not None and lib.pool_relu_forward.argtypes is None:
        lib.pool_relu_forward.argtypes = _ARGS_FORWARD
        lib.pool_relu_forward.restype = None
        lib.pool_relu_backward.argtypes = _ARGS_BACKWARD
        lib.pool_relu_backward.restype = None
    return lib


class _PoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, pool: int) -> torch.Tensor:
        batch, channels, _, length = x.shape
        pooled = length // pool
        out = torch.empty(
            (batch, channels, 1, pooled), dtype=x.dtype, memory_format=torch.channels_last
        )
        argmax = torch.empty((batch, pooled, channels), dtype=torch.uint8)
        _kernel().pool_relu_forward(
            x.data_ptr(), out.data_ptr(), argmax.data_ptr(), int(x.dtype == torch.bfloat16),
            batch, length, channels, pool, pooled, torch.get_num_threads(),
        )  # fmt: skip
        ctx.save_for_backward(out, argmax)
        ctx.length, ctx.pool = length, pool
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        out, argmax = ctx.saved_tensors
        batch, channels, _, pooled = out.shape
        grad = grad.to(out.dtype).contiguous(memory_format=torch.channels_last)
        grad_in = torch.empty(
            (batch, channels, 1, ctx.length), dtype=out.dtype, memory_format=torch.channels_last
        )
        _kernel().pool_relu_backward(
            grad.data_ptr(), out.data_ptr(), argmax.data_ptr(), grad_in.data_ptr(),
            int(out.dtype == torch.bfloat16), batch, ctx.length, channels, ctx.pool, pooled,
            torch.get_num_threads(),
        )  # fmt: skip
        return grad_in, None


def window_pool(pool: nn.Module) -> bool:
    """Whether `pool` is a max-pool over whole, non-overlapping windows of at most
    255 points (a one-byte index), the only kind the kernels compute."""
    if not isinstance(pool, nn.MaxPool1d) or not isinstance(pool.kernel_size, int):
        return False
    stride = pool.stride if pool.stride is not None else pool.kernel_size
    return (
        stride == pool.kernel_size
        and 1 <= pool.kernel_size <= 255
        and pool.padding == 0
        and pool.dilation == 1
        and not pool.ceil_mode
    )


def fusable(layers: list[nn.Module], i: int) -> bool:
    """Whether layers[i] is a max-pool the kernel computes, followed by ReLU."""
    return i + 1 < len(layers) and window_pool(layers[i]) and isinstance(layers[i + 1], nn.ReLU)


def applies(pool: nn.Module, x: torch.Tensor) -> bool:
    """Whether this call may take the kernel: training with gradients, no ONNX
    tracing, a CPU float32 or bfloat16 planar channels-last input at least one
    window long."""
    if not (pool.training and torch.is_grad_enabled() and enabled()):
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.bfloat16):
        return False
    if x.dim() != 4 or x.shape[2] != 1 or x.shape[3] < pool.kernel_size:
        return False
    if not x.is_contiguous(memory_format=torch.channels_last):
        return False
    return _kernel() is not None


def pool_relu(pool: nn.MaxPool1d, x: torch.Tensor) -> torch.Tensor:
    """relu(pool(x)) for planar (B, C, 1, L) channels-last input."""
    return _PoolReLU.apply(x, pool.kernel_size)
