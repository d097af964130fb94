"""An image study's config: the kind of data set against the models, budgets, pretrained files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spectragrid.core.config import ConfigError, validate
from spectragrid.data.image_config import check_image_config
from spectragrid.train.image_models import build_image_model
from spectragrid.train.study_checks import check_study_models

ROOT = Path(__file__).resolve().parents[3]


def image_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "images.yaml").read_text())


def test_the_shipped_image_study_passes():
    config = validate(image_config())
    check_image_config(config)
    check_study_models(config)
    assert config["cleaning"] == {"saturation": {}, "min_integral": {}}


def test_bands_label_column_and_spectral_models_are_checked():
    config = image_config()
    config["dataset"]["channels"] = ["R", "G"]
    config["channel_sets"] = {"rgb": ["R", "G"]}
    config["models"]["cnn"] = {"arch": "cnn"}
    config["grid"]["models"].append("cnn")
    with pytest.raises(ConfigError) as error:
        check_image_config(validate(config))
    text = str(error.value)
    assert "dataset.channels: ['R', 'G'] are not the bands of mode RGB" in text
    assert "models.cnn.arch: 'cnn' takes spectra" in text


def test_a_demo_kind_must_match_the_layout():
    config = image_config()
    config["dataset"]["images"]["mode"] = "L"
    config["dataset"]["channels"] = ["L"]
    config["channel_sets"] = {"rgb": ["L"]}
    with pytest.raises(
        ConfigError, match=r"dataset\.images\.mode: the binary demo writes mode 'RGB'"
    ):
        check_image_config(validate(config))


def test_an_image_family_in_a_spectra_study_is_refused():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"]["lenet"] = {"arch": "img_lenet"}
    config["grid"]["models"].append("lenet")
    with pytest.raises(ConfigError, match=r"models\.lenet\.arch: 'img_lenet' takes images"):
        check_image_config(validate(config))


def test_budget_error_names_the_model_and_its_count():
    config = image_config()
    config["models"]["small_cnn"]["budget"]["max_parameters"] = 1000
    with pytest.raises(ConfigError) as error:
        check_study_models(validate(config))
    # widths [16, 32, 48] on 3 bands (R, G, B), 2 classes (OVA glasses)
    built = build_image_model("img_small_cnn", {"widths": [16, 32, 48]}, 3, (32, 32), 2)
    count = sum(p.numel() for p in built.parameters())
    assert count == 51_602
    assert (
        f"models.small_cnn.budget.max_parameters: model 'small_cnn' has {count:,} parameters, "
        "over its budget of 1,000"
    ) in str(error.value)


def test_a_missing_pretrained_file_names_the_key(tmp_path):
    config = image_config()
    config["models"]["lenet"]["pretrained"] = str(tmp_path / "lenet.pth")
    with pytest.raises(ConfigError, match=r"models.lenet.pretrained: '.*lenet.pth' is no file"):
        check_study_models(validate(config))


def test_a_given_split_needs_split_folders_and_no_label_issue_search():
    config = image_config()  # the binary demo: one folder and a label file
    config["splits"]["given"] = True
    with pytest.raises(ConfigError) as error:
        check_image_config(validate(config))
    text = str(error.value)
    assert "splits.given: a given split is an image tree's train/val/test folders" in text
    assert (
        "label_issues.enabled: finding label issues needs out-of-fold probabilities of every "
        "image, which only splits.k seeded folds give; with splits.given: true set "
        "label_issues.enabled: false"
    ) in text
    config["dataset"]["images"] = {
        "layout": "class_folders",
        "folder": "images",
        "split_folders": True,
        "size": [32, 32],
        "mode": "RGB",
    }
    config["label_issues"]["enabled"] = False
    check_image_config(validate(config))
    spectra = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    spectra["splits"]["given"] = True
    spectra["label_issues"]["enabled"] = False
    with pytest.raises(ConfigError, match=r"splits\.given: a given split is an image tree"):
        check_image_config(validate(spectra))
