"""Transformer encoder over spectral patches, one token per (channel, patch) pair."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from spectragrid.train.architectures._common import ModelError, positive_float, positive_int

POOLS = ("cls", "mean")


class SelfAttention(nn.Module):
    """Multi-head self-attention with explicit projections.

    Written out rather than nn.MultiheadAttention, which applies its
    projections from raw weight tensors (its out_proj module never runs, so
    FLOP hooks would miss it) and switches to a separate fused kernel for
    inference, so training and the exported graph would compute differently.
    """

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, dim = x.shape[1], x.shape[2]
        qkv = self.qkv(x).reshape(-1, tokens, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(-1, tokens, dim))

    @staticmethod
    def matmul_flops(tokens: int, dim: int) -> int:
        """2 x multiply-adds of Q K^T and of softmax(.) V over all heads, one sample."""
        return 2 * 2 * tokens * tokens * dim


class EncoderBlock(nn.Module):
    """Pre-norm block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class PatchTransformer(nn.Module):
    def __init__(
        self,
        n_channels: int,
        length: int,
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        pool: str,
        dropout: float,
    ) -> None:
        super().__init__()
        self.n_channels = n_channels
        self.n_patches = math.ceil(length / patch)
        self.padded_length = self.n_patches * patch
        self.pad = self.padded_length - length
        self.dim = dim
        self.pool = pool
        # One embedding shared by every channel; the channel embedding tells
        # channels apart, so the token layout does not depend on which channels
        # a model sees.
        self.embed = nn.Conv1d(1, dim, patch, stride=patch)
        self.position = nn.Parameter(torch.zeros(1, 1, self.n_patches, dim))
        self.channel = nn.Parameter(torch.zeros(1, n_channels, 1, dim))
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        for parameter in (self.position, self.channel, self.cls):
            if parameter is not None:
                nn.init.trunc_normal_(parameter, std=0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(
            *(EncoderBlock(dim, heads, mlp_ratio, dropout) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Zero is the middle of the scaled [-1, 1] range: padding reads as "no signal".
        if self.pad:
            # Concatenated rather than F.pad: the exported Pad carries a reversed
            # Slice that the ONNX exporter warns about on every export.
            x = torch.cat([x, x.new_zeros(x.shape[0], self.n_channels, self.pad)], dim=2)
        tokens = self.embed(x.reshape(-1, 1, self.padded_length))
        tokens = tokens.reshape(-1, self.n_channels, self.dim, self.n_patches).transpose(2, 3)
        tokens = (tokens + self.position + self.channel).reshape(
            -1, self.n_channels * self.n_patches, self.dim
        )
        if self.cls is not None:
            tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = self.norm(self.blocks(self.drop(tokens)))
        return tokens[:, 0] if self.cls is not None else tokens.mean(dim=1)


def build_trunk(n_channels: int, length: int, params: dict) -> tuple[nn.Module, int]:
    patch = positive_int(params, "patch")
    dim = positive_int(params, "dim")
    depth = positive_int(params, "depth", minimum=0)
    heads = positive_int(params, "heads")
    mlp_ratio = positive_float(params, "mlp_ratio")
    pool = params["pool"]
    dropout = float(params["dropout"])
    if dim % heads:
        raise ModelError(f"parameter 'heads' ({heads}) must divide 'dim' ({dim})")
    if pool not in POOLS:
        raise ModelError(f"parameter 'pool' must be one of {', '.join(POOLS)}, got {pool!r}")
    trunk = PatchTransformer(n_channels, length, patch, dim, depth, heads, mlp_ratio, pool, dropout)
    return trunk, dim
