"""Pretrained weights from a local file: torchvision state dicts and cell checkpoints."""

import pytest
import torch
from torchvision_layouts import HEADS, LAYOUTS

from spectragrid.train.models import build_image_model, build_model
from spectragrid.train.transfer import TransferError, load_pretrained

# Real loads through a file; the VGG variants other than vgg16_bn share its code
# and are checked on their layout (test_image_models), 0.5 GB each.
LOADED = ["img_resnet18", "img_resnet34", "img_vgg16_bn", "img_alexnet"]
SIZE = {"img_alexnet": (64, 64)}


def torchvision_file(tmp_path, arch: str, seed: int = 0):
    """A state dict in torchvision's layout (ImageNet, 1000 classes), random weights."""
    generator = torch.Generator().manual_seed(seed)
    state = {
        key: torch.randint(0, 1000, shape)
        if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in LAYOUTS[arch]().items()
    }
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("arch", LOADED)
def test_every_key_of_a_torchvision_file_loads_and_the_head_is_new(tmp_path, arch):
    path, state = torchvision_file(tmp_path, arch)
    model = build_image_model(arch, {}, 3, SIZE.get(arch, (32, 32)), 8, pretrained=path)
    net = model.net.state_dict()
    head = HEADS[arch]
    for key, value in state.items():
        if key.startswith(head + "."):
            assert net[key].shape[0] == 8  # sized for the target, not ImageNet's 1000
        else:
            assert torch.equal(net[key], value), key
    report = model.transfer
    assert report.kind == "torchvision"
    assert report.loaded == len(state) - 2
    assert report.skipped_head == [f"{head}.bias", f"{head}.weight"]
    del state, net, model


def test_an_rgb_input_convolution_is_summed_for_a_grayscale_model(tmp_path):
    path, state = torchvision_file(tmp_path, "img_resnet18")
    model = build_image_model("img_resnet18", {}, 1, (32, 32), 2, pretrained=path)
    assert torch.allclose(model.net.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    assert model.transfer.adapted == ["conv1.weight"]


def test_a_missing_file_names_the_config_key(tmp_path):
    with pytest.raises(TransferError, match=r"models\.wbc\.pretrained: no such file: .*nope\.pth"):
        build_image_model(
            "img_lenet", {}, 3, (32, 32), 2, pretrained=tmp_path / "nope.pth", name="wbc"
        )


def test_a_wrong_shape_names_the_key_and_the_file(tmp_path):
    path, state = torchvision_file(tmp_path, "img_resnet18")
    state["layer3.1.conv2.weight"] = torch.zeros(256, 256, 1, 1)
    torch.save(state, path)
    with pytest.raises(
        TransferError,
        match=r"resnet18\.pth: 'layer3\.1\.conv2\.weight' has shape \(256, 256, 1, 1\)",
    ):
        build_image_model("img_resnet18", {}, 3, (32, 32), 2, pretrained=path)


def test_a_file_of_another_architecture_is_refused_naming_a_key(tmp_path):
    path, _ = torchvision_file(tmp_path, "img_resnet18")
    with pytest.raises(
        TransferError,
        match=r"models\.m\.pretrained: .*resnet18\.pth has no tensor 'layer1\.2\.conv1\.weight'",
    ):
        build_image_model("img_resnet34", {}, 3, (32, 32), 2, pretrained=path, name="m")
    state = dict(torch.load(path, weights_only=True))
    state["layer9.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(TransferError, match=r"'layer9\.weight' .* has no place in the model"):
        build_image_model("img_resnet18", {}, 3, (32, 32), 2, pretrained=path)


def test_a_file_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": print}, path)
    with pytest.raises(TransferError, match="refused to load"):
        build_image_model("img_resnet18", {}, 3, (32, 32), 2, pretrained=path)


def test_a_cells_checkpoint_fine_tunes_a_spectra_model_on_another_target(tmp_path):
    torch.manual_seed(0)
    source = build_model("cnn", {}, 3, 128, 2, n_classes=2)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": source.state_dict(), "arch": "cnn", "classes": ["a", "b"]}, path)
    torch.manual_seed(1)
    model = build_model("cnn", {}, 3, 128, 2, n_classes=5, pretrained=path, name="ft")
    for key, value in source.state_dict().items():
        if key.startswith("head."):
            continue
        assert torch.equal(model.state_dict()[key], value), key
    assert model.head[3].out_features == 5
    assert model.transfer.kind == "spectragrid"
    assert model.transfer.skipped_head == sorted(
        k for k in source.state_dict() if k.startswith("head.")
    )
    with pytest.raises(TransferError, match=r"holds a 'cnn' model"):
        build_model("mlp", {}, 3, 128, 2, n_classes=5, pretrained=path)


def test_an_image_cells_checkpoint_loads_into_the_whole_model(tmp_path):
    torch.manual_seed(0)
    source = build_image_model("img_small_cnn", {}, 1, (16, 16), 3)
    source.fit_scaling(torch.rand(4, 1, 16, 16).numpy() * 255)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": source.state_dict(), "arch": "img_small_cnn"}, path)
    model = build_image_model("img_small_cnn", {}, 1, (16, 16), 2, pretrained=path)
    assert torch.equal(model.preprocess.mean, source.preprocess.mean)
    assert torch.equal(model.net.features[0].weight, source.net.features[0].weight)
    assert model.transfer.skipped_head == ["net.classifier.1.bias", "net.classifier.1.weight"]


def test_load_pretrained_reads_with_weights_only(tmp_path, monkeypatch):
    seen = {}
    original = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    path, _ = torchvision_file(tmp_path, "img_resnet18")
    load_pretrained(build_image_model("img_resnet18", {}, 3, (32, 32), 2), path)
    assert seen["weights_only"] is True
