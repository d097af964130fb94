"""The model card's layer table and FLOPs by kind, checked by hand on LeNet."""

import onnxruntime  # noqa: F401  (the export test below needs it importable)
import torch

from spectragrid.train.export import check_parity, export_onnx
from spectragrid.train.model_card import layer_table
from spectragrid.train.models import build_image_model, build_model
from spectragrid.train.predict import predict_proba


def lenet_card() -> dict:
    model = build_image_model("img_lenet", {}, 3, (32, 32), 10)
    return layer_table(model, (torch.zeros(2, 3, 32, 32), torch.zeros(2, 0)))


def test_lenet_flops_match_the_hand_count():
    # By hand, one 3x32x32 image, 10 classes:
    # normalise      3*32*32 = 3,072 elements: 3,072 additions, 3,072 multiplications
    # conv1 3->6 5x5 6*28*28 = 4,704 outputs x 75 (3*5*5) products, 74 sums + bias:
    #                352,800 multiplications, 352,800 additions
    # ReLU           4,704 max
    # max-pool 2x2   6*14*14 = 1,176 outputs x 3 max = 3,528 max
    # conv2 6->16    16*10*10 = 1,600 outputs x 150 (6*5*5): 240,000 mult., 240,000 add.
    # ReLU           1,600 max
    # max-pool 2x2   16*5*5 = 400 outputs x 3 = 1,200 max
    # avg-pool 5->5  windows of one pixel: copies, 0
    # Linear 400-120 120 x 400 = 48,000 mult., 120 x (399 + 1) = 48,000 add.; ReLU 120 max
    # Linear 120-84  84 x 120 = 10,080 mult. and add.; ReLU 84 max
    # Linear 84-10   10 x 84 = 840 mult. and add.
    mults = 3_072 + 352_800 + 240_000 + 48_000 + 10_080 + 840
    adds = 3_072 + 352_800 + 240_000 + 48_000 + 10_080 + 840
    maxes = 4_704 + 3_528 + 1_600 + 1_200 + 120 + 84
    assert (mults, adds, maxes) == (654_792, 654_792, 11_236)
    card = lenet_card()
    assert card["flops"] == {
        "additions": adds,
        "multiplications": mults,
        "max_operations": maxes,
        "total": adds + mults + maxes,
    }
    assert card["not_counted"] == []


def test_lenet_layer_table_has_sizes_functions_and_weights():
    card = lenet_card()
    rows = {row["name"]: row for row in card["layers"]}
    assert card["input"] == [3, 32, 32]
    assert [row["n"] for row in card["layers"]] == list(range(1, 15))
    conv1 = rows["net.features.0"]
    assert conv1["function"] == "Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert conv1["output"] == [6, 28, 28]
    assert conv1["weights"] == {"weight": [6, 3, 5, 5], "bias": [6]}
    assert conv1["parameters"] == 456
    assert rows["net.features.5"]["output"] == [16, 5, 5]
    assert rows["net.flatten"]["output"] == [400]
    assert rows["net.classifier.4"]["weights"] == {"weight": [10, 84], "bias": [10]}
    assert sum(row["parameters"] for row in card["layers"]) == card["parameters"] == 62_006


def test_residual_additions_and_batch_norms_are_counted_in_a_resnet():
    model = build_image_model("img_resnet18", {}, 3, (32, 32), 2)
    card = layer_table(model, (torch.zeros(1, 3, 32, 32),))
    first_add = next(r for r in card["layers"] if r["name"] == "net.layer1.0.add")
    assert first_add["output"] == [64, 8, 8] and first_add["additions"] == 64 * 8 * 8
    bn1 = next(r for r in card["layers"] if r["name"] == "net.bn1")
    assert (bn1["additions"], bn1["multiplications"]) == (64 * 16 * 16,) * 2


def test_a_spectra_model_gets_a_card_too():
    model = build_model("cnn", {"widths": [4], "kernel": 3, "pool": 2}, 1, 16, 0, 2)
    card = layer_table(model, (torch.zeros(1, 1, 16), torch.zeros(1, 0)))
    conv = next(r for r in card["layers"] if r["function"].startswith("PlanarConv1d"))
    # 4 channels x 16 positions, 3 products each, 2 sums + bias
    assert (conv["multiplications"], conv["additions"]) == (4 * 16 * 3, 4 * 16 * 3)
    assert "MinMaxScale" in card["not_counted"]


def test_a_small_image_model_exports_to_onnx_with_parity(tmp_path):
    torch.manual_seed(0)
    model = build_image_model("img_small_cnn", {"widths": [8, 16]}, 3, (32, 32), 3)
    images = torch.randint(0, 256, (2, 3, 32, 32)).float()
    model.fit_scaling(images.numpy())
    path = tmp_path / "model.onnx"
    export_onnx(model, path, 3, 0, 0, {"classes": ["a", "b", "c"]}, sample_shape=(3, 32, 32))
    from spectragrid.train.batches import Arrays

    test = Arrays(images, torch.zeros(2, 0), torch.zeros(2, dtype=torch.long))
    proba = predict_proba(model, test)
    parity = check_parity(path, images.numpy(), torch.zeros(2, 0).numpy(), proba)
    assert parity["n"] == 2 and parity["max_abs_diff"] < 1e-5
