"""Fine-tuning in two phases: a frozen backbone, then its last blocks open."""

import pytest
import torch

from spectragrid.core.config import complete_model
from spectragrid.train.batches import Arrays
from spectragrid.train.loop import _Training
from spectragrid.train.models import build_image_model, build_model
from spectragrid.train.phases import PhaseError, TrainingPhases, unfreeze_prefixes
from spectragrid.train.settings import TrainSettings


def settings(**train) -> TrainSettings:
    return TrainSettings.from_config(
        complete_model({"arch": "img_small_cnn", "train": train})["train"]
    )


def images(n: int, seed: int) -> Arrays:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    x = torch.randint(0, 256, (n, 1, 16, 16), generator=g).float()
    x[:, :, :8] += 40 * labels[:, None, None, None]
    return Arrays(x, torch.zeros(n, 0), labels)


def snapshot(model, prefix: str) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith(prefix + ".")}


def moved(before: dict, model) -> set[str]:
    now = model.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, now[k])}


def test_frozen_weights_stay_in_phase_one_and_the_opened_block_trains_in_phase_two():
    torch.manual_seed(0)
    model = build_image_model("img_small_cnn", {"widths": [8, 8, 8]}, 1, (16, 16), 2)
    train, val = images(24, 1), images(8, 2)
    model.fit_scaling(train.spectra.numpy())
    run = _Training(
        model,
        train,
        val,
        settings(
            batch_size=8,
            lr=0.01,
            unfreeze_lr=0.005,
            freeze="backbone",
            unfreeze=["stage3"],
            unfreeze_after=1,
            epochs=3,
            precision="32-true",
        ),
        n_classes=2,
        seed=0,
        augment=None,
        resume=None,
        curves_dir=None,
    )
    run.restore_or_evaluate()
    assert [g["lr"] for g in run.optimizer.param_groups] == [0.01, 0.005]
    # convolutions and batch norms, their running statistics included
    stage1 = {k: v for p in model.block_prefixes("stage1") for k, v in snapshot(model, p).items()}
    stage3 = {k: v for p in model.block_prefixes("stage3") for k, v in snapshot(model, p).items()}
    assert len(stage1) == len(stage3) == 2 * (1 + 5)  # 2 x (conv weight, BN's five tensors)
    head = snapshot(model, "net.classifier.1")
    run.train_epoch(0)  # phase 1: the head alone
    assert moved(head, model) == set(head)
    assert moved(stage1, model) == set()
    assert moved(stage3, model) == set()  # weights, and batch-norm statistics too
    run.train_epoch(1)  # phase 2: stage 3 opens
    assert moved(stage3, model) == set(stage3)
    assert moved(stage1, model) == set()  # the rest of the backbone stays frozen


def test_a_number_opens_the_last_blocks():
    model = build_image_model("img_resnet18", {}, 3, (32, 32), 2)
    assert unfreeze_prefixes(model, 1) == ["net.layer4"]
    assert unfreeze_prefixes(model, 2) == ["net.layer3", "net.layer4"]
    assert unfreeze_prefixes(model, ["stem"]) == ["net.conv1", "net.bn1"]
    vgg = build_image_model("img_lenet", {}, 3, (32, 32), 2)
    assert unfreeze_prefixes(vgg, 1) == ["net.classifier.0", "net.classifier.2"]
    spectra = build_model("cnn", {}, 3, 64, 0, 2)
    assert unfreeze_prefixes(spectra, 1) == ["trunk.6"]


def test_bad_unfreeze_settings_name_the_key():
    model = build_image_model("img_resnet18", {}, 3, (32, 32), 2)
    with pytest.raises(
        PhaseError,
        match=r"train\.unfreeze: 'layer5' is not a block.*stem, layer1, layer2, layer3, layer4",
    ):
        TrainingPhases(model, settings(freeze="backbone", unfreeze=["layer5"]))
    with pytest.raises(PhaseError, match=r"train\.unfreeze: 6 blocks asked, the model has 5"):
        TrainingPhases(model, settings(freeze="backbone", unfreeze=6))
    with pytest.raises(PhaseError, match=r"set train\.freeze: backbone"):
        TrainingPhases(model, settings(unfreeze=["layer4"]))


def test_without_freeze_every_parameter_trains_in_one_group():
    model = build_image_model("img_lenet", {}, 1, (16, 16), 2)
    groups = TrainingPhases(model, settings()).param_groups()
    assert len(groups) == len(list(model.parameters()))
    assert all(p.requires_grad for p in model.parameters())
