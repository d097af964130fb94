"""Image families: torchvision's layout, shapes at any size above the minimum,
grayscale and RGB, parameter counts, clear errors."""

import pytest
import torch
from torchvision_layouts import LAYOUTS

from spectragrid.core.config import load_schema
from spectragrid.train.classical import FAMILIES as CLASSICAL
from spectragrid.train.models import (
    IMAGE_REGISTRY,
    REGISTRY,
    ModelError,
    build_image_model,
    build_model,
    count_parameters,
)


def meta_model(arch: str, channels: int = 3, n_classes: int = 1000, size=(224, 224)):
    with torch.device("meta"):
        return build_image_model(arch, {}, channels, size, n_classes)


@pytest.mark.parametrize("arch", list(LAYOUTS))
def test_the_network_has_torchvisions_keys_and_shapes_in_order(arch):
    expected = LAYOUTS[arch]()
    got = {k: tuple(v.shape) for k, v in meta_model(arch).net.state_dict().items()}
    assert list(got) == list(expected)
    assert got == expected


# torchvision's published parameter counts of the ImageNet models (1000 classes).
TORCHVISION_COUNTS = {
    "img_resnet18": 11_689_512,
    "img_resnet34": 21_797_672,
    "img_vgg11": 132_863_336,
    "img_vgg11_bn": 132_868_840,
    "img_vgg16": 138_357_544,
    "img_vgg16_bn": 138_365_992,
    "img_alexnet": 61_100_840,
}


@pytest.mark.parametrize("arch", list(TORCHVISION_COUNTS))
def test_parameter_counts_are_torchvisions(arch):
    model = meta_model(arch)
    assert count_parameters(model.net) == TORCHVISION_COUNTS[arch]


def test_small_cnn_is_within_the_256k_budget_at_its_defaults():
    model = build_image_model("img_small_cnn", {}, 3, (32, 32), 10)
    # conv 3x3 without bias: 3*32*9 + 32*32*9 + 32*64*9 + 64*64*9 + 64*96*9 + 96*96*9
    # = 203,616; batch norms 2 * 2 * (32 + 64 + 96) = 768; head 96*10 + 10 = 970
    assert count_parameters(model) == 203_616 + 768 + 970 == 205_354 <= 256_000


def test_lenet_counts_lenet5s_parameters():
    model = build_image_model("img_lenet", {}, 1, (32, 32), 10)
    # 6*1*25+6, 16*6*25+16, 400*120+120, 120*84+84, 84*10+10 (LeNet-5 has 61,706)
    assert count_parameters(model) == 156 + 2416 + 48120 + 10164 + 850 == 61_706


CHEAP = ["img_lenet", "img_small_cnn", "img_resnet18"]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(32, 32), (40, 48)])
@pytest.mark.parametrize("arch", CHEAP)
def test_gray_and_rgb_images_of_any_size_above_the_minimum(arch, channels, size):
    torch.manual_seed(0)
    model = build_image_model(arch, {}, channels, size, 4)
    images = torch.randint(0, 256, (2, channels, *size)).float()
    assert model.train()(images, torch.zeros(2, 0)).shape == (2, 4)
    with torch.no_grad():
        out = model.eval()(images, torch.zeros(2, 0))
    assert out.shape == (2, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ["img_vgg11_bn", "img_alexnet"])
def test_big_families_run_at_their_smallest_size(arch):
    torch.manual_seed(0)
    size = 63 if arch == "img_alexnet" else 32
    with torch.device("meta"):
        model = build_image_model(arch, {}, 1, (size, size), 3)
        out = model.eval()(torch.zeros(2, 1, size, size))
    assert out.shape == (2, 3)


@pytest.mark.parametrize(
    ("arch", "minimum"),
    [("img_lenet", 16), ("img_resnet18", 32), ("img_vgg16", 32), ("img_alexnet", 63)],
)
def test_an_image_below_the_minimum_is_refused_by_name(arch, minimum):
    with pytest.raises(ModelError, match=f"{arch}.*at least {minimum}x{minimum}"):
        build_image_model(arch, {}, 3, (minimum - 1, 64), 2)


def test_unknown_parameters_and_architectures_are_refused():
    with pytest.raises(ModelError, match="did you mean 'normalize'"):
        build_image_model("img_resnet18", {"normalise": "fit"}, 3, (32, 32), 2)
    with pytest.raises(ModelError, match="not an image family"):
        build_image_model("resnetv2", {}, 3, (32, 32), 2)
    with pytest.raises(ModelError, match="takes images"):
        build_model("img_lenet", {}, 3, 128, 0, 2)


def test_normalisation_fits_the_training_images_and_imagenet_is_torchvisions():
    model = build_image_model("img_lenet", {}, 3, (16, 16), 2)
    images = torch.stack([torch.full((3, 16, 16), v) for v in (10.0, 30.0)])
    model.fit_scaling(images.numpy())
    assert model.preprocess.mean.tolist() == [20.0, 20.0, 20.0]
    assert model.preprocess.std.tolist() == [10.0, 10.0, 10.0]
    assert model.preprocess(images)[:, 0, 0, 0].tolist() == [-1.0, 1.0]
    net = build_image_model("img_lenet", {"normalize": "imagenet"}, 3, (16, 16), 2)
    net.fit_scaling(images.numpy())  # fixed statistics: fitting changes nothing
    assert torch.allclose(net.preprocess.mean, torch.tensor([0.485, 0.456, 0.406]) * 255)


def test_the_schema_lists_every_family_once():
    arch_enum = load_schema()["$defs"]["model"]["properties"]["arch"]["enum"]
    assert set(arch_enum) == set(REGISTRY) | set(CLASSICAL) | set(IMAGE_REGISTRY)
    assert len(arch_enum) == len(set(arch_enum))
