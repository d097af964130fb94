"""predict.models read against the grid: best by default, grid points checked by name."""

from __future__ import annotations

import pytest
from tiny_study import tiny_config

from spectragrid.core import layout
from spectragrid.core.config import config_hash, study_hash, validate
from spectragrid.serve.choice import (
    PredictConfigError,
    candidate_cells,
    choice_params,
    served_choices,
    served_model_inputs,
)


def _config(predict: dict | None = None) -> dict:
    config = tiny_config()
    if predict is not None:
        config["predict"] = predict
    return validate(config)


def test_every_grid_target_is_served_by_best_unless_named() -> None:
    choices = served_choices(_config())
    assert list(choices) == ["OVA_OK"]
    assert choice_params(choices["OVA_OK"]) == {"best": True}
    inputs = served_model_inputs(_config(), choices["OVA_OK"])
    # best chooses among every cell of the target: 2 models x raw/clean x 3 folds
    assert len(inputs["metrics"]) == 12
    assert set(inputs) == {"metrics", "clean", "summary"}
    assert inputs["summary"] == [layout.SUMMARY_PARQUET]


def test_a_grid_point_serves_its_folds_and_a_fold_one_cell() -> None:
    config = _config({"models": {"OVA_OK": {"model": "small", "channels": "all"}}})
    choice = served_choices(config)["OVA_OK"]
    assert choice_params(choice) == {
        "best": False,
        "labels": "raw",
        "channels": "all",
        "model": "small",
        "seed": 0,
        "fold": None,
    }
    assert candidate_cells(config, choice) == [
        layout.cell_dir("demo", "raw", "OVA_OK", "all", "small", 0, fold, 3) for fold in range(3)
    ]
    one = _config({"models": {"OVA_OK": {"model": "cnn", "channels": "all", "fold": 2}}})
    assert candidate_cells(one, served_choices(one)["OVA_OK"]) == [
        layout.cell_dir("demo", "raw", "OVA_OK", "all", "cnn", 0, 2, 3)
    ]


@pytest.mark.parametrize(
    ("predict", "message"),
    [
        (
            {"models": {"OVA_OK": {"model": "wide", "channels": "all"}}},
            "predict.models.OVA_OK.model",
        ),
        (
            {"models": {"OVA_OK": {"model": "cnn", "channels": "all", "fold": 3}}},
            "not below splits.k",
        ),
        ({"models": {"AVA_IN": "best"}}, "target 'AVA_IN' is not in grid.targets"),
        ({"targets": ["nope"]}, "target 'nope' is not in grid.targets"),
    ],
)
def test_a_choice_outside_the_grid_is_refused_by_name(predict: dict, message: str) -> None:
    with pytest.raises(PredictConfigError, match=message):
        served_choices(_config(predict))


def test_the_predict_section_leaves_the_study_hash_alone() -> None:
    plain = tiny_config()
    with_batches = tiny_config()
    with_batches["predict"] = {"batches": {"next": ["new.pkl"]}}
    assert study_hash(validate(with_batches)) == study_hash(validate(plain))
    # ... and the study's hash is the one it had before the section existed
    before = validate(plain)
    before.pop("predict")
    assert study_hash(validate(plain)) == config_hash(before)


def test_under_a_given_split_a_grid_point_is_its_one_fold() -> None:
    # splits.given: the image tree's train/val/test folders are the one fold f0of1
    config = _config({"models": {"OVA_OK": {"model": "cnn", "channels": "all"}}})
    config["splits"]["given"] = True
    config["label_issues"]["enabled"] = False
    assert candidate_cells(config, served_choices(config)["OVA_OK"]) == [
        layout.cell_dir("demo", "raw", "OVA_OK", "all", "cnn", 0, 0, 1)
    ]
    config["predict"]["models"]["OVA_OK"]["fold"] = 1
    with pytest.raises(PredictConfigError, match=r"fold: 1 is not below splits.given"):
        served_choices(config)
