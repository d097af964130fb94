"""Image model registry: networks of images (B, C, H, W) in torchvision's layout.

The spectral families are in spectragrid.train.models; these take images,
normalise them inside (architectures.image_classifier) and keep torchvision's
parameter names, so `models.<name>.pretrained` can name a torchvision
ImageNet file (spectragrid.train.transfer). Each family's parameters and
defaults are the config schema's `$defs/params_img_*`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from spectragrid.core.config import ConfigError, complete_model
from spectragrid.train.architectures import alexnet, lenet, resnet, small_cnn, vgg_image
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.architectures.image_base import ImageNetwork, require_image_size
from spectragrid.train.architectures.image_classifier import ImageClassifier, ImageNormalize
from spectragrid.train.budget import check_max_parameters
from spectragrid.train.transfer import load_pretrained


@dataclass(frozen=True)
class ImageArchitecture:
    """An image family: its builder, the torchvision name it is built as, a summary."""

    build: Callable[[str, int, int, dict], ImageNetwork]
    name: str  # torchvision's name of the network (resnet18, vgg16_bn, ...)
    summary: str


IMAGE_REGISTRY: dict[str, ImageArchitecture] = {
    "img_lenet": ImageArchitecture(
        lenet.build, "lenet", "LeNet-style baseline: 2 conv 5x5 + max-pool, 3 Linear (>= 16 px)"
    ),
    "img_small_cnn": ImageArchitecture(
        small_cnn.build,
        "small_cnn",
        "CIFAR-style CNN under a 256K budget: 3 stages of 2 conv 3x3 + BN (205K parameters)",
    ),
    "img_resnet18": ImageArchitecture(resnet.build, "resnet18", "ResNet-18 (>= 32 px)"),
    "img_resnet34": ImageArchitecture(resnet.build, "resnet34", "ResNet-34 (>= 32 px)"),
    "img_vgg11": ImageArchitecture(vgg_image.build, "vgg11", "VGG-11 (>= 32 px)"),
    "img_vgg11_bn": ImageArchitecture(vgg_image.build, "vgg11_bn", "VGG-11 with BN (>= 32 px)"),
    "img_vgg16": ImageArchitecture(vgg_image.build, "vgg16", "VGG-16 (>= 32 px)"),
    "img_vgg16_bn": ImageArchitecture(vgg_image.build, "vgg16_bn", "VGG-16 with BN (>= 32 px)"),
    "img_alexnet": ImageArchitecture(alexnet.build, "alexnet", "AlexNet (>= 63 px)"),
}


def is_image_arch(arch: str) -> bool:
    return arch in IMAGE_REGISTRY


def image_params(arch: str, params: dict) -> dict:
    """`params` of an image `arch` with the schema's defaults filled in."""
    try:
        return complete_model({"arch": arch, "params": params})["params"]
    except ConfigError as error:
        raise ModelError(f"architecture {arch!r}: {error}") from None


def build_image_model(
    arch: str,
    params: dict,
    in_channels: int,
    image_size: tuple[int, int],
    n_classes: int,
    pretrained: Path | str | None = None,
    name: str = "model",
    max_parameters: int | None = None,
) -> ImageClassifier:
    """An image model for (B, in_channels, H, W) images of `image_size` (H, W), its
    head sized for `n_classes`; its weights loaded from `pretrained` when given
    (errors quote `models.<name>.pretrained`), its parameters checked against
    `max_parameters` (errors quote `models.<name>.budget.max_parameters`).
    `model.transfer` is the TransferReport of the loaded file, or None."""
    if arch not in IMAGE_REGISTRY:
        raise ModelError(
            f"architecture {arch!r} is not an image family; image families: "
            f"{', '.join(IMAGE_REGISTRY)}"
        )
    if in_channels < 1 or n_classes < 2:
        raise ModelError(
            f"architecture {arch!r}: needs >= 1 channel and >= 2 classes, got "
            f"{in_channels} and {n_classes}"
        )
    merged = image_params(arch, params)
    family = IMAGE_REGISTRY[arch]
    try:
        net = family.build(family.name, in_channels, n_classes, merged)
        require_image_size(image_size, net.min_size, arch)
        normalize = ImageNormalize(in_channels, merged["normalize"])
    except ModelError as error:
        raise ModelError(f"architecture {arch!r}: {error}") from None
    model = ImageClassifier(net, normalize)
    check_max_parameters(name, model, max_parameters)
    model.transfer = (
        None
        if pretrained is None
        else load_pretrained(model, pretrained, key=f"models.{name}.pretrained")
    )
    return model
