"""Model registry: every network takes spectra (B, C, L) and tabular (B, T).

Preprocessing (the model's `preprocessing` steps, min-max scaling by default,
fitted on the training rows; spectragrid.train.preprocessing) lives inside the
network as buffers, so the checkpoint and the ONNX export carry it and a
serving machine cannot preprocess differently from training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spectragrid.core.config import ConfigError, complete_model
from spectragrid.train.architectures import cnn, mlp, resnetv2, transformer, vgg
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.architectures.frozen_norms import FrozenNormsMixin
from spectragrid.train.architectures.transformer import SelfAttention
from spectragrid.train.budget import check_max_parameters
from spectragrid.train.classical import FAMILIES as CLASSICAL_FAMILIES
from spectragrid.train.image_models import IMAGE_REGISTRY, build_image_model
from spectragrid.train.preprocessing import MinMaxScale, Preprocessing, build_preprocessing
from spectragrid.train.transfer import TransferReport, load_pretrained

__all__ = [
    "IMAGE_REGISTRY",
    "REGISTRY",
    "Architecture",
    "MinMaxScale",
    "ModelError",
    "SpectraClassifier",
    "build_image_model",
    "build_model",
    "count_parameters",
    "flops_per_sample",
    "model_params",
    "model_preprocessing",
]


class SpectraClassifier(FrozenNormsMixin, nn.Module):
    """Preprocessing, a spectral trunk, and a head that fuses the tabular vector.

    `spectra_scale` is the model's preprocessing (min-max scaling unless the
    config lists other steps); the trunk sees its output length. The head is
    the part a transfer replaces (spectragrid.train.transfer); the trunk's
    blocks are what `train.unfreeze` opens (spectragrid.train.phases).
    """

    head_key = "head"
    input_conv = ""

    def __init__(
        self,
        trunk: nn.Module,
        trunk_features: int,
        preprocessing: Preprocessing,
        n_tabular: int,
        n_classes: int,
        head_hidden: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.spectra_scale = preprocessing
        self.tabular_scale = MinMaxScale((n_tabular,))
        self.n_tabular = n_tabular
        # The weights file the model started from (spectragrid.train.transfer), if any.
        self.transfer: TransferReport | None = None
        self.trunk = trunk
        self.head = nn.Sequential(
            nn.Linear(trunk_features + n_tabular, head_hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, n_classes),
        )

    def block_names(self) -> list[str]:
        """The trunk's parameters by block, from input to output: its own tensors
        (embeddings), then each child holding parameters, a Sequential of several
        such children (ResNetV2's stages, the transformer's blocks) counting each."""
        names = [f"trunk.{n}" for n, _ in self.trunk.named_parameters(recurse=False)]
        for name, child in self.trunk.named_children():
            inner = [n for n, c in child.named_children() if any(True for _ in c.parameters())]
            if isinstance(child, nn.Sequential) and len(inner) > 1 and child is not self.trunk:
                names += [f"trunk.{name}.{n}" for n in inner]
            elif any(True for _ in child.parameters()):
                names.append(f"trunk.{name}")
        return names

    def block_prefixes(self, name: str) -> list[str]:
        return [name]

    def fit_scaling(
        self, spectra: np.ndarray, tabular: np.ndarray, rows: np.ndarray | None = None
    ) -> None:
        """Fit the preprocessing on the training rows: `rows` of both arrays (None: all).
        The spectra's rows are read in chunks, never copied out together."""
        self.spectra_scale.fit(spectra, rows)
        if self.n_tabular:
            self.tabular_scale.fit(tabular if rows is None else tabular[rows])

    def forward(self, spectra: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        features = self.trunk(self.spectra_scale(spectra)).flatten(1)
        if self.n_tabular:
            features = torch.cat([features, self.tabular_scale(tabular)], dim=1)
        device = features.device.type
        if not torch.is_autocast_enabled(device):
            return self.head(features)
        # The head runs in float32 under mixed precision: its GEMMs (a few hundred
        # features by head_hidden) are too small to gain from bf16 or fp16, while
        # the casts of its weights and gradients cost more than they do; measured
        # on the demo CNN (2 threads, bf16), training steps 0.89x as long.
        with torch.autocast(device, enabled=False):
            return self.head(features.float())


@dataclass(frozen=True)
class Architecture:
    """A trunk family: its builder and a one-line description.

    Its parameters, their types and defaults are in the config schema
    (`$defs/params_<family>`), which checks a study before any job runs.
    """

    build_trunk: Callable[[int, int, dict], tuple[nn.Module, int]]
    summary: str


REGISTRY: dict[str, Architecture] = {
    "cnn": Architecture(
        cnn.build_trunk,
        "LeNet-style 1-D CNN (3 conv stages; 43k parameters on the demo, 3 channels)",
    ),
    "vgg11": Architecture(
        vgg.trunk_builder("vgg11"),
        "1-D VGG11 (config A): 8 kernel-3 convs in 5 max-pooled stages",
    ),
    "vgg16": Architecture(
        vgg.trunk_builder("vgg16"),
        "1-D VGG16 (config D): 13 kernel-3 convs in 5 max-pooled stages",
    ),
    "resnetv2": Architecture(
        resnetv2.build_trunk,
        "BiT-style 1-D ResNetV2: pre-activation bottlenecks, GroupNorm, standardised convs",
    ),
    "transformer": Architecture(
        transformer.build_trunk,
        "Transformer encoder over (channel, patch) tokens with position + channel embeddings",
    ),
    "mlp": Architecture(mlp.build_trunk, "MLP on the flattened spectra"),
}


def model_preprocessing(arch: str) -> list:
    """The schema's default preprocessing steps of an `arch` model."""
    try:
        return complete_model({"arch": arch})["preprocessing"]
    except ConfigError as error:
        raise ModelError(f"architecture {arch!r}: {error}") from None


def model_params(arch: str, params: dict) -> dict:
    """`params` of an `arch` model with the schema's defaults filled in; ModelError
    names an unknown architecture, an unknown parameter or a wrong type."""
    try:
        return complete_model({"arch": arch, "params": params})["params"]
    except ConfigError as error:
        raise ModelError(f"architecture {arch!r}: {error}") from None


def build_model(
    arch: str,
    params: dict,
    n_channels: int,
    length: int,
    n_tabular: int,
    n_classes: int,
    preprocessing: Sequence[str | dict] | None = None,
    wavelengths: np.ndarray | None = None,
    pretrained: Path | str | None = None,
    name: str = "model",
    max_parameters: int | None = None,
) -> SpectraClassifier:
    """An unfitted network for spectra (B, n_channels, length).

    `preprocessing` lists the model's steps (models.<name>.preprocessing; None:
    the schema's default, min-max scaling); `wavelengths`, one per point, are
    needed by a `crop` step. `max_parameters` (models.<name>.budget) fails a
    larger model; `pretrained`, a cell's model.ckpt (models.<name>.pretrained),
    gives the starting weights of all but the head (spectragrid.train.transfer;
    `model.transfer` reports what was loaded). `name` is the model's name in
    the config, which the errors quote.
    """
    if arch in IMAGE_REGISTRY:
        raise ModelError(
            f"architecture {arch!r} takes images (B, C, H, W), not spectra: "
            "build it with build_image_model"
        )
    merged = model_params(arch, params)
    if arch in CLASSICAL_FAMILIES:
        raise ModelError(
            f"architecture {arch!r} is a classical family, fitted by "
            "spectragrid.train.classical, not a network"
        )
    steps = model_preprocessing(arch) if preprocessing is None else list(preprocessing)
    try:
        prep = build_preprocessing(steps, n_channels, length, wavelengths)
        trunk, features = REGISTRY[arch].build_trunk(n_channels, prep.out_length, merged)
    except ModelError as error:
        raise ModelError(f"architecture {arch!r}: {error}") from None
    model = SpectraClassifier(
        trunk,
        features,
        prep,
        n_tabular,
        n_classes,
        head_hidden=int(merged["head_hidden"]),
        dropout=float(merged["dropout"]),
    )
    check_max_parameters(name, model, max_parameters)
    if pretrained is not None:
        model.transfer = load_pretrained(model, pretrained, key=f"models.{name}.pretrained")
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_sample(model: SpectraClassifier, n_channels: int, length: int) -> int:
    """FLOPs of one sample's forward pass, counted as 2 x multiply-adds.

    Counted: convolutions, linear layers (once per token for token sequences)
    and attention's two matmuls (Q K^T and softmax(.) V). Not counted:
    normalisation, activations, pooling, softmax, additions and the weight
    standardisation of StdConv1d (per weight, not per sample).
    """
    total = 0

    def conv_hook(module: nn.Conv1d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        per_out = module.in_channels // module.groups * module.kernel_size[0]
        # numel, not (C_out x L_out): the transformer runs its patch embedding
        # once per spectral channel, stacked along the batch axis.
        total += 2 * per_out * out.numel()

    def linear_hook(module: nn.Linear, _inp, out: torch.Tensor) -> None:
        nonlocal total
        total += 2 * module.in_features * out.numel()

    def attention_hook(_module: SelfAttention, inp: tuple[torch.Tensor, ...], _out) -> None:
        nonlocal total
        tokens, dim = inp[0].shape[1], inp[0].shape[2]
        total += SelfAttention.matmul_flops(tokens, dim)

    hooks = []
    for module in model.modules():
        if isinstance(module, nn.Conv1d):
            hooks.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(linear_hook))
        elif isinstance(module, SelfAttention):
            hooks.append(module.register_forward_hook(attention_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, n_channels, length), torch.zeros(1, model.n_tabular))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return total
