"""Train settings are built once, from the complete mapping the schema gives."""

import dataclasses

import pytest

from spectragrid.core.config import complete_model
from spectragrid.train.settings import SettingsError, TrainSettings


def test_settings_take_every_value_of_the_completed_mapping():
    train = complete_model({"arch": "cnn", "train": {"lr": 0.01, "class_weights": [1, 2]}})["train"]
    settings = TrainSettings.from_config(train)
    assert settings.lr == 0.01
    assert settings.class_weights == (1.0, 2.0)
    # the schema's defaults for everything else
    assert (settings.epochs, settings.optimizer, settings.monitor) == (20, "adam", "val_macro_f1")
    assert {f.name for f in dataclasses.fields(TrainSettings)} == set(train)


def test_an_incomplete_or_unknown_mapping_is_refused_with_the_keys():
    train = complete_model({"arch": "cnn"})["train"]
    missing = {k: v for k, v in train.items() if k != "lr"}
    with pytest.raises(SettingsError, match=r"missing \['lr'\].*complete_model"):
        TrainSettings.from_config(missing)
    with pytest.raises(SettingsError, match=r"unknown \['learning_rate'\]"):
        TrainSettings.from_config({**train, "learning_rate": 0.1})
