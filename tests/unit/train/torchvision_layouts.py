"""torchvision's ImageNet state-dict layouts (names and shapes), written out from
torchvision.models (resnet.py, vgg.py, alexnet.py) for the compatibility tests.

torchvision itself is not importable beside the CPU torch wheel; these are the
keys of `torchvision.models.<name>(weights=...).state_dict()`.
"""

from __future__ import annotations


def _bn(prefix: str, c: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}.weight": (c,),
        f"{prefix}.bias": (c,),
        f"{prefix}.running_mean": (c,),
        f"{prefix}.running_var": (c,),
        f"{prefix}.num_batches_tracked": (),
    }


def resnet(depths: tuple[int, int, int, int], n_classes: int = 1000) -> dict:
    keys: dict[str, tuple[int, ...]] = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    c_in = 64
    for stage, (depth, width) in enumerate(zip(depths, (64, 128, 256, 512), strict=True), start=1):
        for b in range(depth):
            p = f"layer{stage}.{b}"
            first_in = c_in if b == 0 else width
            keys[f"{p}.conv1.weight"] = (width, first_in, 3, 3)
            keys.update(_bn(f"{p}.bn1", width))
            keys[f"{p}.conv2.weight"] = (width, width, 3, 3)
            keys.update(_bn(f"{p}.bn2", width))
            if b == 0 and stage > 1:
                keys[f"{p}.downsample.0.weight"] = (width, c_in, 1, 1)
                keys.update(_bn(f"{p}.downsample.1", width))
        c_in = width
    keys["fc.weight"] = (n_classes, 512)
    keys["fc.bias"] = (n_classes,)
    return keys


# Indices of the convolutions in `features` (torchvision's make_layers: conv [+ BN],
# ReLU per value, MaxPool2d per "M").
VGG_CONVS = {
    "vgg11": [0, 3, 6, 8, 11, 13, 16, 18],
    "vgg11_bn": [0, 4, 8, 11, 15, 18, 22, 25],
    "vgg16": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    "vgg16_bn": [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40],
}
VGG_WIDTHS = {
    "vgg11": [64, 128, 256, 256, 512, 512, 512, 512],
    "vgg16": [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512],
}


def vgg(name: str, n_classes: int = 1000) -> dict:
    widths = VGG_WIDTHS[name.removesuffix("_bn")]
    keys: dict[str, tuple[int, ...]] = {}
    c_in = 3
    for index, width in zip(VGG_CONVS[name], widths, strict=True):
        keys[f"features.{index}.weight"] = (width, c_in, 3, 3)
        keys[f"features.{index}.bias"] = (width,)
        if name.endswith("_bn"):
            keys.update(_bn(f"features.{index + 1}", width))
        c_in = width
    keys.update(
        {
            "classifier.0.weight": (4096, 25088),
            "classifier.0.bias": (4096,),
            "classifier.3.weight": (4096, 4096),
            "classifier.3.bias": (4096,),
            "classifier.6.weight": (n_classes, 4096),
            "classifier.6.bias": (n_classes,),
        }
    )
    return keys


def alexnet(n_classes: int = 1000) -> dict:
    return {
        "features.0.weight": (64, 3, 11, 11),
        "features.0.bias": (64,),
        "features.3.weight": (192, 64, 5, 5),
        "features.3.bias": (192,),
        "features.6.weight": (384, 192, 3, 3),
        "features.6.bias": (384,),
        "features.8.weight": (256, 384, 3, 3),
        "features.8.bias": (256,),
        "features.10.weight": (256, 256, 3, 3),
        "features.10.bias": (256,),
        "classifier.1.weight": (4096, 9216),
        "classifier.1.bias": (4096,),
        "classifier.4.weight": (4096, 4096),
        "classifier.4.bias": (4096,),
        "classifier.6.weight": (n_classes, 4096),
        "classifier.6.bias": (n_classes,),
    }


LAYOUTS = {
    "img_resnet18": lambda: resnet((2, 2, 2, 2)),
    "img_resnet34": lambda: resnet((3, 4, 6, 3)),
    "img_vgg11": lambda: vgg("vgg11"),
    "img_vgg11_bn": lambda: vgg("vgg11_bn"),
    "img_vgg16": lambda: vgg("vgg16"),
    "img_vgg16_bn": lambda: vgg("vgg16_bn"),
    "img_alexnet": alexnet,
}
HEADS = {
    "img_resnet18": "fc",
    "img_resnet34": "fc",
    "img_vgg11": "classifier.6",
    "img_vgg11_bn": "classifier.6",
    "img_vgg16": "classifier.6",
    "img_vgg16_bn": "classifier.6",
    "img_alexnet": "classifier.6",
}
