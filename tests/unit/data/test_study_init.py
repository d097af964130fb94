"""`spectragrid init`: a starting config that runs as it is, for any label layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from own_data import grain_frame

from spectragrid.core.config import validate
from spectragrid.data.study_init import init_config, main


def test_one_label_column_gets_every_label_as_a_class(tmp_path: Path) -> None:
    path = tmp_path / "grain.csv"
    grain_frame(60).to_csv(path, index=False)
    text, found = init_config([path])
    config = validate(yaml.safe_load(text))
    assert config["dataset"]["name"] == "grain"
    assert config["dataset"]["columns"]["label"] == "variety"
    assert config["dataset"]["columns"]["id"] is None
    assert config["dataset"]["label_map"] == {"barley": "barley", "rye": "rye", "wheat": "wheat"}
    assert config["targets"] == {"classes": "AVA"}
    assert config["splits"]["k"] == 5
    assert config["cleaning"] == {"saturation": {}, "min_integral": {}}
    # 60 points: 2 stages of pooling by 4 fit, a third would not
    assert config["models"]["cnn"]["params"]["widths"] == [16, 32]
    assert "labels: column 'variety', 3 classes" in found
    assert "class counts after cleaning: barley (20), rye (20), wheat (20)" in found
    assert "#   group: 'lot' (20 groups)" in text


def test_a_class_too_small_for_any_fold_is_left_out_and_k_follows_the_smallest(
    tmp_path: Path,
) -> None:
    frame = grain_frame(40)
    frame.loc[:1, "variety"] = "oats"  # 2 samples: no 3 folds can hold them
    frame.loc[2:5, "variety"] = "spelt"  # 4 samples: 4 folds at most
    path = tmp_path / "grain.parquet"
    frame.to_parquet(path)
    text, found = init_config([path], name="mixed")
    config = validate(yaml.safe_load(text))
    assert config["dataset"]["name"] == "mixed"
    assert config["splits"]["k"] == 4
    target = config["targets"]["classes"]
    assert target["column"] == "label"
    assert list(target["classes"]) == ["barley", "rye", "spelt", "wheat"]
    assert "left out of the target (fewer than 3 samples): ['oats']" in found


def test_severity_and_type_files_map_field_spellings(small: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "campaign.pkl"
    small.to_pickle(path)
    text, _ = init_config([path])
    config = validate(yaml.safe_load(text))
    columns = config["dataset"]["columns"]
    assert (columns["id"], columns["severity"], columns["type"], columns["group"]) == (
        "sequence",
        "greffon_defaut_severite",
        "greffon_defaut_type",
        "scelle",
    )
    assert config["dataset"]["label_map"].get("OK - SpectrAcer") == "OK"
    assert config["dataset"]["columns"]["drop_prefixes"] == ["sa_"]
    assert config["models"]["cnn"]["params"]["widths"] == [16, 32, 64]


def test_an_existing_config_is_replaced_only_when_told(tmp_path: Path, capsys) -> None:
    path = tmp_path / "grain.csv"
    grain_frame(30).to_csv(path, index=False)
    target = tmp_path / "config" / "config.yaml"
    target.parent.mkdir()
    target.write_text("# mine\n")
    assert main([str(path), "--config", str(target)]) == 2
    said = capsys.readouterr()
    assert said.err.strip() == (
        f"spectragrid init: error: {target} exists; pass --force to replace it (the old one "
        f"is then kept as {target}.bak), or --config to write elsewhere"
    )
    assert target.read_text() == "# mine\n"
    assert main([str(path), "--config", str(target), "--force"]) == 0
    out = capsys.readouterr().out
    assert "  labels: column 'variety', 3 classes" in out
    assert f"Wrote {target} (the previous one is now {target}.bak)" in out
    assert (tmp_path / "config" / "config.yaml.bak").read_text() == "# mine\n"
    assert validate(yaml.safe_load(target.read_text()))["grid"]["targets"] == ["classes"]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("a,b\n1,x\n2,y\n", "no spectral column"),
        ("nir_1,nir_2,nir_3\n1,2,3\n", "no label column"),
    ],
)
def test_files_init_cannot_use_are_one_line(tmp_path: Path, capsys, content, said) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(content)
    assert main([str(path), "--config", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"spectragrid init: error: {path}: ")
    assert said in err
    assert not (tmp_path / "c.yaml").exists()
