"""Budgets: parameters checked before training, training time bounded and recorded."""

import pytest
import torch

from spectragrid.core.config import complete_model
from spectragrid.train.batches import Arrays
from spectragrid.train.budget import BudgetError, check_model_budgets, out_of_time
from spectragrid.train.loop import fit
from spectragrid.train.models import build_image_model
from spectragrid.train.settings import TrainSettings


def test_a_model_over_its_parameter_budget_fails_naming_it_and_its_count():
    with pytest.raises(
        BudgetError,
        match=r"models\.wide\.budget\.max_parameters: model 'wide' has 11,177,538 parameters, "
        r"over its budget of 256,000",
    ):
        build_image_model("img_resnet18", {}, 3, (32, 32), 2, name="wide", max_parameters=256_000)
    # the default small CNN fits the course's budget
    build_image_model("img_small_cnn", {}, 3, (32, 32), 10, max_parameters=256_000)


def test_the_config_check_lists_every_model_over_budget_without_allocating():
    models = {
        "small": complete_model({"arch": "img_small_cnn", "budget": {"max_parameters": 256000}}),
        "vgg": complete_model({"arch": "img_vgg16", "budget": {"max_parameters": 256000}}),
        "free": complete_model({"arch": "img_alexnet"}),
    }

    def build(name, entry):
        model = build_image_model(entry["arch"], entry["params"], 3, (32, 32), 10)
        assert model.net.features[0].weight.is_meta  # shapes only
        return model

    with pytest.raises(BudgetError) as error:
        check_model_budgets(models, build)
    lines = str(error.value).splitlines()[1:]
    assert lines == [
        "  - models.vgg.budget.max_parameters: model 'vgg' has 134,301,514 parameters, "
        "over its budget of 256,000"
    ]


def test_out_of_time_looks_one_epoch_ahead():
    assert not out_of_time([10.0], 25.0)  # 10 + 10 <= 25
    assert out_of_time([10.0, 10.0], 25.0)  # 20 + 10 > 25
    assert not out_of_time([10.0, 10.0], None)


def test_training_stops_at_the_time_budget_and_says_so():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    data = Arrays(
        torch.rand(16, 1, 16, 16, generator=g) * 255, torch.zeros(16, 0), torch.arange(16) % 2
    )
    model = build_image_model("img_lenet", {}, 1, (16, 16), 2)
    settings = TrainSettings.from_config(
        complete_model(
            {
                "arch": "img_lenet",
                "train": {"epochs": 5, "batch_size": 8, "patience": 5, "precision": "32-true"},
            }
        )["train"]
    )
    result = fit(model, data, data, settings, 2, 0, max_train_seconds=1e-6)
    assert result.stopped == "time_budget" and len(result.epoch_seconds) == 1
    model = build_image_model("img_lenet", {}, 1, (16, 16), 2)
    result = fit(model, data, data, settings, 2, 0, max_train_seconds=3600)
    assert result.stopped in ("epochs", "patience") and len(result.epoch_seconds) <= 5
    if len(result.epoch_seconds) == 5:
        assert result.stopped == "epochs"
