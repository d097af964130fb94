import copy
from pathlib import Path

import pytest
import yaml

from spectragrid.config import ConfigError, config_hash, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_the_default_config_is_valid_and_gets_defaults(config):
    del config["report"]
    checked = validate(config)
    assert checked["report"]["best_metric"] == "test_macro_f1"
    assert checked["label_issues"]["models"] == ["cnn"]


def test_unknown_key_names_the_path_and_suggests(config):
    config["splits"]["seed"] = [1]
    with pytest.raises(ConfigError, match=r"splits: unknown key 'seed' \(did you mean 'seeds'\?\)"):
        validate(config)


def test_wrong_type_names_the_key(config):
    config["splits"]["k"] = "five"
    with pytest.raises(ConfigError, match=r"splits\.k: 'five' is not of type 'integer'"):
        validate(config)


def test_unknown_name_in_the_grid(config):
    config["grid"]["models"] = ["cnm"]
    with pytest.raises(
        ConfigError, match=r"grid\.models: 'cnm' is not defined \(did you mean 'cnn'\?\)"
    ):
        validate(config)


def test_names_that_could_escape_results_are_refused(config):
    config["channel_sets"]["../../etc"] = ["277"]
    with pytest.raises(ConfigError, match="channel_sets"):
        validate(config)


def test_unknown_channel_in_a_channel_set(config):
    config["channel_sets"]["all"] = ["277", "999"]
    with pytest.raises(ConfigError, match=r"channel_sets\.all: '999' is not defined"):
        validate(config)


def test_hash_ignores_key_order(config):
    reordered = dict(reversed(list(copy.deepcopy(config).items())))
    assert config_hash(config) == config_hash(reordered)
    config["models"]["cnn"]["train"]["lr"] = 0.1
    assert config_hash(config) != config_hash(reordered)


def test_bad_model_params_are_rejected_before_any_job(config):
    config["models"]["cnn"]["params"]["widht"] = 3
    with pytest.raises(
        ConfigError, match=r"models\.cnn\.params: .*'widht' \(did you mean 'widths'\?\)"
    ):
        validate(config)


def test_every_architecture_is_accepted(config):
    for arch in ("cnn", "vgg11", "vgg16", "resnetv2", "transformer", "mlp"):
        config["models"]["cnn"] = {"arch": arch}
        validate(config)
