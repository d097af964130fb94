"""The first conv -> max-pool -> ReLU stage of a planar trunk: one C kernel in training,
and the same numerics wherever the kernel does not run.

The first convolution of a spectral CNN sees a handful of channels over the
full length: few FLOPs, but at the demo's size (3 channels, 446 points, batch
64, bf16) oneDNN's convolution runs it at a fraction of its speed on the later
layers, and the max-pool's backward fills and scatters a full-length gradient
that only serves the convolution's weight gradient (the input, the scaled
spectra, needs none). The kernel in native/first_stage.c does the three layers
in one pass and keeps one byte per pooled output for the backward pass.
Measured on 2 threads, forward + backward of the stage: 0.36-0.43 ms against
0.74-0.80 ms for the three PyTorch operators.

A stage has the kernel's form when it is a zero-padded "same" convolution
with stride and dilation 1 and output channels in multiples of 16, a max-pool
whose stride is its kernel, then ReLU. The kernel runs it in training with
gradients on, on CPU float32 input that needs no gradient, and never while
torch traces the model for ONNX. Its arithmetic is float32, and under bf16
autocast it rounds its output to bf16. Everywhere else (evaluation, export,
GPUs, no compiler, SPECTRAGRID_NATIVE=0) a stage of that form runs as the
layers with autocast off, in float32, its output cast to the autocast dtype
(`float32_stage`): the kernel and the layers then differ by float32 rounding
alone, so a config trains with the same computation with or without a C
compiler. (Over many steps such rounding differences still grow, through the
bf16 layers after the stage, as those of another thread count do.)
"""

from __future__ import annotations

import ctypes

import torch
from torch import nn

import spectragrid.train.native.pool_relu as pool_relu
from spectragrid.train.native.build import enabled, load

BLOCK = 16  # the kernel's vector block of output channels (V in first_stage.c)
_ARGS_FORWARD = [ctypes.c_void_p] * 5 + [ctypes.c_int] + [ctypes.c_int64] * 7 + [ctypes.c_int]
_ARGS_BACKWARD = (
    [ctypes.c_void_p] * 4
    + [ctypes.c_int]
    + [ctypes.c_void_p] * 2
    + [ctypes.c_int64] * 7
    + [ctypes.c_int]
)


def _kernel() -> ctypes.CDLL | None:
    lib = load("first_stage")
    if lib is not None and lib.first_stage_forward.argtypes is None:
        lib.first_stage_forward.argtypes = _ARGS_FORWARD
        lib.first_stage_forward.restype = ctypes.c_int
        lib.first_stage_backward.argtypes = _ARGS_BACKWARD
        lib.first_stage_backward.restype = ctypes.c_int
    return lib


def _pointer(tensor: torch.Tensor | None) -> int | None:
    return tensor.data_ptr() if tensor is not None else None


class _FirstStage(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        pool: int,
        bf16: bool,
    ) -> torch.Tensor:
        lib = _kernel()
        batch, c_in, length = x.shape
        c_out, _, k = weight.shape
        pooled = length // pool
        x = x.contiguous()
        weight_t = weight.detach().permute(1, 2, 0).contiguous()
        bias = bias.detach().contiguous() if bias is not None else None
        out = torch.empty(
            (batch, c_out, 1, pooled),
            dtype=torch.bfloat16 if bf16 else torch.float32,
            memory_format=torch.channels_last,
        )
        argmax = torch.empty((batch, pooled, c_out), dtype=torch.uint8)
        threads = torch.get_num_threads()
        failed = lib.first_stage_forward(
            x.data_ptr(), weight_t.data_ptr(), _pointer(bias), out.data_ptr(),
            argmax.data_ptr(), int(bf16), batch, c_in, length, c_out, k, pool, pooled, threads,
        )  # fmt: skip
        if failed:
            raise MemoryError("first_stage_forward: out of memory")
        ctx.save_for_backward(x, out, argmax)
        ctx.has_bias = bias is not None
        ctx.shape = (c_out, k, pool)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        lib = _kernel()
        x, out, argmax = ctx.saved_tensors
        c_out, k, pool = ctx.shape
        batch, c_in, length = x.shape
        grad = grad.to(out.dtype).contiguous(memory_format=torch.channels_last)
        grad_weight_t = torch.empty((c_in, k, c_out))
        grad_bias = torch.empty(c_out) if ctx.has_bias else None
        failed = lib.first_stage_backward(
            x.data_ptr(), out.data_ptr(), argmax.data_ptr(), grad.data_ptr(),
            int(out.dtype == torch.bfloat16), grad_weight_t.data_ptr(), _pointer(grad_bias),
            batch, c_in, length, c_out, k, pool, out.shape[3], torch.get_num_threads(),
        )  # fmt: skip
        if failed:
            raise MemoryError("first_stage_backward: out of memory")
        return None, grad_weight_t.permute(2, 0, 1), grad_bias, None, None


def fusable(layers: list[nn.Module]) -> bool:
    """Whether the first three layers are a conv, max-pool, ReLU stage of the kernel's form."""
    if len(layers) < 3 or not pool_relu.fusable(layers, 1):
        return False
    conv = layers[0]
    if not isinstance(conv, nn.Conv1d):
        return False
    k = conv.kernel_size[0]
    return (
        conv.stride == (1,)
        and conv.dilation == (1,)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and k % 2 == 1
        and conv.padding == (k // 2,)
        and conv.out_channels % BLOCK == 0
    )


def applies(conv: nn.Module, x: torch.Tensor) -> bool:
    """Whether this call may take the kernel: training with gradients, float32 CPU
    input that needs no gradient, float32 CPU weights, no ONNX tracing, and
    autocast either off or bf16."""
    if not (conv.training and torch.is_grad_enabled() and enabled()):
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.requires_grad or x.dim() != 3:
        return False
    weight = conv.weight
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return False
    if torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") != torch.bfloat16:
        return False
    return _kernel() is not None


def first_stage(conv: nn.Conv1d, pool: nn.MaxPool1d, x: torch.Tensor) -> torch.Tensor:
    """relu(pool(conv(x))) for (B, C, L) input, as (B, C_out, 1, L // pool) channels-last."""
    if x.shape[2] < pool.kernel_size:
        raise ValueError(
            f"input length {x.shape[2]} is shorter than the max-pool of {pool.kernel_size}"
        )
    bf16 = torch.is_autocast_enabled("cpu")
    return _FirstStage.apply(x, conv.weight, conv.bias, pool.kernel_size, bf16)


def float32_stage(layers: list[nn.Module], planar: torch.Tensor) -> torch.Tensor:
    """The stage's layers on planar input, computed as the kernel computes them.

    Under autocast the convolution would otherwise run in the autocast dtype:
    a model trained with the kernel and one trained without it (no compiler,
    SPECTRAGRID_NATIVE=0, a GPU) would differ by more than rounding, and a
    model would be validated with other numerics than it was trained with.
    """
    device = planar.device.type
    if not torch.is_autocast_enabled(device):
        for layer in layers:
            planar = layer(planar)
        return planar
    dtype = torch.get_autocast_dtype(device)
    with torch.autocast(device, enabled=False):
        for layer in layers:
            planar = layer(planar)
    return planar.to(dtype)
