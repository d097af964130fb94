import dataclasses
import pickle

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau, StepLR

from spectragrid.core.config import complete_model
from spectragrid.train.schedules import ThreePlateau, build_optimizer, build_scheduler
from spectragrid.train.settings import TrainSettings


def settings(**train) -> TrainSettings:
    """Complete settings: the schema's defaults, an lr of 0.01 and `train`."""
    return TrainSettings.from_config(
        complete_model({"arch": "cnn", "train": {"lr": 0.01, **train}})["train"]
    )


def optimizer(**train) -> torch.optim.Optimizer:
    return build_optimizer([torch.nn.Parameter(torch.zeros(2))], settings(**train))


def lrs_per_epoch(epochs: int, **train) -> list[float]:
    opt = optimizer()
    schedule = build_scheduler(opt, settings(epochs=epochs, **train))
    assert schedule is not None
    seen = []
    for _ in range(epochs):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        schedule.step()
    return seen


@pytest.mark.parametrize(("epochs", "phases"), [(10, (5, 3, 2)), (100, (50, 25, 25))])
def test_three_plateau_lr_per_epoch(epochs, phases):
    expected = [0.01] * phases[0] + [0.001] * phases[1] + [0.0001] * phases[2]
    assert lrs_per_epoch(epochs, scheduler="three_plateau") == pytest.approx(expected)


def test_three_plateau_rounding_rule():
    def phases(n: int) -> tuple[int, int, int]:
        factors = [ThreePlateau(n)(e) for e in range(n)]
        return factors.count(1.0), factors.count(0.1), factors.count(0.01)

    assert phases(1) == (1, 0, 0)
    assert phases(4) == (2, 1, 1)
    assert phases(6) == (3, 2, 1)
    assert phases(7) == (4, 2, 1)
    assert phases(8) == (4, 2, 2)
    assert ThreePlateau(10)(25) == 0.01  # past the last epoch
    # LambdaLR saves a callable object's attributes in its state dict.
    restored = pickle.loads(pickle.dumps(ThreePlateau(10)))
    assert restored(5) == 0.1


def test_step_and_plateau_construct():
    opt = optimizer()
    step = build_scheduler(opt, settings(scheduler="step"))
    assert isinstance(step, StepLR)
    assert (step.step_size, step.gamma) == (50, 0.1)
    custom = build_scheduler(opt, settings(scheduler="step", step_size=7, step_gamma=0.5))
    assert isinstance(custom, StepLR)
    assert (custom.step_size, custom.gamma) == (7, 0.5)

    plateau = build_scheduler(optimizer(), settings(scheduler="plateau"))
    assert isinstance(plateau, ReduceLROnPlateau)
    assert (plateau.factor, plateau.patience, plateau.mode) == (0.1, 5, "min")

    three = build_scheduler(optimizer(), settings(scheduler="three_plateau", epochs=10))
    assert isinstance(three, LambdaLR)
    assert three.lr_lambdas[0].max_epochs == 10


def test_none_is_no_scheduler():
    assert build_scheduler(optimizer(), settings()) is None
    assert build_scheduler(optimizer(), settings(scheduler="none")) is None


def test_optimizers():
    adam = optimizer()
    assert type(adam) is torch.optim.Adam
    assert adam.param_groups[0]["lr"] == 0.01
    assert adam.param_groups[0]["weight_decay"] == 0.0
    adamw = optimizer(optimizer="adamw", weight_decay=0.05)
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["weight_decay"] == 0.05


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"optimizer": "sgd"}, "train.optimizer: unknown value 'sgd'; allowed: adam, adamw"),
        (
            {"scheduler": "cosine"},
            "train.scheduler: unknown value 'cosine'; allowed: none, step, plateau, three_plateau",
        ),
        ({"lr": 0}, "train.lr"),
        ({"weight_decay": -1}, "train.weight_decay"),
        ({"scheduler": "step", "step_size": 0}, "step_size"),
        ({"scheduler": "plateau", "plateau_factor": 2}, "plateau_factor"),
        ({"scheduler": "three_plateau", "epochs": 0}, "max_epochs"),
    ],
)
def test_bad_values_are_rejected_with_the_key(changes, fragment):
    """Settings made in code, past the schema's checks, are still checked where used."""
    bad = dataclasses.replace(settings(), **changes)
    with pytest.raises(ValueError, match=fragment):
        build_scheduler(build_optimizer([torch.nn.Parameter(torch.zeros(2))], bad), bad)
