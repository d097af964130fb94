import copy
from pathlib import Path

import pytest
import yaml

from spectragrid.config import ConfigError, config_hash, validate
from spectragrid.layout import NAME_PATTERN

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


def test_validated_config_is_canonical_whatever_the_key_order(config):
    config["targets"]["mine"] = {"column": "severity", "classes": {"VR": ["VR"], "OK": ["OK"]}}
    reordered = copy.deepcopy(config)
    reordered["cleaning"]["saturation"] = dict(reversed(config["cleaning"]["saturation"].items()))
    reordered["models"]["cnn"]["train"] = dict(reversed(config["models"]["cnn"]["train"].items()))
    # Snakemake compares params by repr, which follows key order
    assert repr(validate(config)) == repr(validate(reordered))
    checked = validate(config)
    assert list(checked["models"]["cnn"]["train"]) == sorted(config["models"]["cnn"]["train"])
    # a custom target's class order is its models' class order: kept as written
    assert list(checked["targets"]["mine"]["classes"]) == ["VR", "OK"]
    assert list(checked["targets"]["mine"]) == ["classes", "column"]


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x\n"])
@pytest.mark.parametrize("section", ["models", "targets", "channel_sets"])
def test_a_name_that_is_not_a_plain_folder_name_is_refused(config, section, name):
    config[section][name] = copy.deepcopy(next(iter(config[section].values())))
    with pytest.raises(ConfigError) as caught:
        validate(config)
    assert f"{section}: {name!r} is not a valid name" in str(caught.value)
    assert "folder names under results/" in str(caught.value)


@pytest.mark.parametrize("name", ["../x", "a/b", "x\n"])
def test_a_dataset_name_that_is_not_a_plain_folder_name_is_refused(config, name):
    config["dataset"]["name"] = name
    with pytest.raises(ConfigError, match=r"dataset\.name: .* is not a valid name"):
        validate(config)


def test_the_schema_checks_names_with_the_wildcard_pattern():
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["$defs"]["name"]["pattern"] == f"^{NAME_PATTERN}$"
