"""An epoch's random draws (dropout, augmentation, mixup) depend on (seed, epoch) alone."""

from __future__ import annotations

import contextlib

import pytest
import torch

from spectragrid.core.config import complete_model
from spectragrid.train.augment import Augment
from spectragrid.train.batches import Arrays, epoch_order
from spectragrid.train.losses import LossFn
from spectragrid.train.models import build_model
from spectragrid.train.steps import OptimizerSteps

CHANNELS = ["277", "380", "425"]


def steps(seed: int = 0) -> OptimizerSteps:
    torch.manual_seed(0)
    params = complete_model({"arch": "cnn", "params": {"widths": [4], "dropout": 0.5}})["params"]
    model = build_model("cnn", params, 3, 32, 2, 2)
    return OptimizerSteps(
        model,
        LossFn(2, eps=0.0, weight=None, focal_gamma=0.0),
        torch.optim.SGD(model.parameters(), lr=0.1),
        torch.Tensor.backward,
        contextlib.nullcontext(),
        torch.device("cpu"),
        n_classes=2,
        batch_size=16,
        mixup_alpha=0.4,
        augment=Augment(
            complete_model({"arch": "cnn", "transforms": {"da": True}})["transforms"], CHANNELS
        ),
        seed=seed,
    )


def data() -> Arrays:
    g = torch.Generator().manual_seed(5)
    return Arrays(
        torch.rand(40, 3, 32, generator=g) + 1,
        torch.rand(40, 2, generator=g),
        torch.randint(0, 2, (40,), generator=g),
        torch.rand(40, generator=g),
    )


def batch_losses(runner: OptimizerSteps, epoch: int) -> list[float]:
    runner.seed_epoch(epoch)
    rows = data()
    return [
        runner.batch_loss(rows.spectra[i : i + 8], rows.tabular[i : i + 8],
                          rows.labels[i : i + 8], rows.weights[i : i + 8]).item()
        for i in (0, 8, 16)
    ]  # fmt: skip


def test_an_epochs_draws_do_not_depend_on_what_earlier_epochs_drew():
    runner = steps()
    first = batch_losses(runner, epoch=3)
    batch_losses(runner, epoch=1)
    torch.rand(1000)  # and nothing else drawn in between counts
    assert batch_losses(runner, epoch=3) == first
    assert batch_losses(steps(), epoch=3) == first
    assert batch_losses(runner, epoch=4) != first
    assert batch_losses(steps(seed=1), epoch=3) != first


def test_an_epoch_steps_the_optimizer_once_per_batch_and_averages_its_loss():
    runner = steps()
    rows = data()
    before = [p.detach().clone() for p in runner.model.parameters()]
    result = runner.run_epoch(rows, epoch_order(40, seed=0, epoch=0))
    assert result.mean > 0 and result.step_seconds > 0
    assert all(
        not torch.equal(b, p) for b, p in zip(before, runner.model.parameters(), strict=True)
    )
    taken = []
    runner.optimizer.step = lambda: taken.append(1)  # count the steps of another epoch
    runner.run_epoch(rows, epoch_order(40, seed=0, epoch=1))
    assert len(taken) == 3  # 40 rows in batches of 16: 16, 16, 8


@pytest.mark.parametrize("weights", [None, "random"])
def test_the_epoch_loss_is_the_mean_over_samples(weights):
    runner = steps()
    runner.mixup_alpha, runner.augment = 0.0, None
    runner.model.eval()  # no dropout: the loss of a batch is a function of its rows
    rows = data()
    if weights is None:
        rows.weights = None
    runner.optimizer.step = lambda: None  # the weights stay, so losses can be recomputed
    result = runner.run_epoch(rows, torch.arange(40))
    per_batch = [
        runner.batch_loss(rows.spectra[a:b], rows.tabular[a:b], rows.labels[a:b],
                          None if rows.weights is None else rows.weights[a:b]).item() * (b - a)
        for a, b in ((0, 16), (16, 32), (32, 40))
    ]  # fmt: skip
    assert result.mean == pytest.approx(sum(per_batch) / 40, rel=1e-6)
