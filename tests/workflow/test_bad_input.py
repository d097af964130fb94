"""Bad raw data and bad config through the real snakemake.

Bad data: the ingest job fails, its message names the file and the column,
no clean.parquet (nor a temporary file) is left, and the raw file is intact.
Bad config: snakemake stops while reading the Snakefile, before any job,
with the key in the message.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout
from spectragrid.data.demo import generate_demo
from spectragrid.data.unpickle import load_pickle_dataframe

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """40 rows of a demo campaign, in the users' raw layout."""
    info = generate_demo(tmp_path_factory.mktemp("demo"), n_samples=200, seed=0)
    frame = load_pickle_dataframe(Path(info["raw_files"][0])).iloc[:40]
    return frame[~frame.index.duplicated()].copy()


def _user_config(raw: list[str]) -> dict:
    config = tiny_config()
    del config["dataset"]["demo"]
    config["dataset"].update(name="mine", raw=raw, truth=None)
    return config


class _RunsCode:
    """Pickles as `os.system(command)`: a raw file that would run code when loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _with_payload(marker: Path) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def build(frame: pd.DataFrame) -> pd.DataFrame:
        frame["note"] = pd.Series([_RunsCode(f"touch {marker}")] * len(frame), index=frame.index)
        return frame

    return build


def _long(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per sample and wavelength of channel 277, as some instruments export."""
    keep = ["greffon_defaut_severite", "greffon_defaut_type", "scelle"]
    spectra = frame[[f"277_{w}" for w in range(295, 300)]].copy()
    spectra.columns = range(295, 300)
    long = spectra.stack().rename("intensity").rename_axis(["sequence", "wavelength"])
    return long.reset_index().merge(frame[keep].reset_index(), on="sequence")


def _copy_channel(frame: pd.DataFrame) -> pd.DataFrame:
    for w in range(295, 741):
        frame[f"380_{w}"] = frame[f"277_{w}"]
    return frame


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        (
            "runs_code.pkl",
            "runs_code.pkl: refused to load: the pickle asks for os.system, which is not "
            "pandas/numpy data",
        ),
        (
            "no_label.pkl",
            "no_label.pkl: severity column 'greffon_defaut_severite' is missing",
        ),
        (
            "copied_channel.pkl",
            "channels '277' and '380' are identical in every row of copied_channel.pkl",
        ),
        (
            "long.csv",
            "this looks like a long layout, one row per sample and wavelength. Pivot it to one "
            "row per sample",
        ),
    ],
)
def test_bad_raw_data_fails_ingest_naming_file_and_column(
    tmp_path: Path, campaign: pd.DataFrame, file_name: str, expected: str
) -> None:
    (tmp_path / "work").mkdir()
    work = Workdir(tmp_path / "work")
    marker = tmp_path / "payload_ran"
    breakers = {
        "runs_code.pkl": _with_payload(marker),
        "no_label.pkl": lambda f: f.drop(columns=["greffon_defaut_severite"]),
        "copied_channel.pkl": _copy_channel,
        "long.csv": _long,
    }
    raw = work.path / "raw" / file_name
    raw.parent.mkdir()
    broken = breakers[file_name](campaign.copy())
    if file_name.endswith(".csv"):
        broken.to_csv(raw, index=False)
    else:
        broken.to_pickle(raw)
    before = hashlib.sha256(raw.read_bytes()).hexdigest()
    work.write_config(_user_config([f"raw/{file_name}"]))

    proc = work.snakemake(layout.clean_file("mine"), check=False)

    assert proc.returncode != 0
    assert "Error in rule ingest" in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("spectragrid: ")]
    assert line.startswith(("spectragrid: RawDataError: ", "spectragrid: UnsafePickleError: "))
    assert expected in line
    # the traceback is in the log only: the terminal has the one line
    assert "Traceback" not in proc.stderr
    log = (work.path / layout.log_file("mine", "ingest")).read_text()
    assert expected in log and "Traceback (most recent call last)" in log
    # nothing that looks like an output, complete or not
    leftovers = sorted(
        p.name for p in (work.path / layout.DATASET_DIR.format(dataset="mine")).glob("*")
    )
    assert leftovers == []
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == before
    assert not marker.exists()


def test_bad_config_stops_snakemake_before_any_job(tmp_path: Path) -> None:
    work = Workdir(tmp_path)
    config = tiny_config()
    config["grid"]["models"] = ["cnn", "smal"]
    config["cleaning"]["saturation"]["2777"] = 6500
    work.write_config(config)
    dry = work.snakemake("-n", check=False)
    assert dry.returncode != 0
    said = dry.stdout + dry.stderr
    assert "config is invalid:" in said
    assert "grid.models: 'smal' is not defined (did you mean 'small'?)" in said
    assert "cleaning.saturation: '2777' is not defined (did you mean '277'?)" in said

    config = tiny_config()
    config["splits"]["k"] = 2
    config["models"]["cnn"]["train"]["epoch"] = 3
    work.write_config(config)
    run = work.snakemake(check=False)
    assert run.returncode != 0
    said = run.stdout + run.stderr
    assert "splits.k: 2 is less than the minimum of 3" in said
    assert "models.cnn.train: unknown key 'epoch' (did you mean 'epochs'?)" in said
    # not even the demo data were generated
    assert not (work.path / layout.RESULTS).exists()
    assert not (work.path / "resources").exists()


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda c: c["dataset"].update(raw=["raw/mine.csv"]),
            "dataset.demo and dataset.raw are both set: with dataset.demo the demo data are "
            "generated and studied, and the files of dataset.raw are never read. Remove the "
            "dataset.demo block to study your files, or empty dataset.raw to run the demo",
        ),
        (
            lambda c: c["dataset"]["columns"].update(type=None),
            "dataset.columns.type: not named, beside dataset.columns.severity; a data set with "
            "one label column names it as dataset.columns.label: 'greffon_defaut_severite', "
            "and leaves out severity and type",
        ),
        (
            lambda c: c["targets"].update(OVA_OK="OVA OKK"),
            "targets.OVA_OK: 'OVA OKK': 'OKK' is not a label, a type number or a label and a "
            "type number of dataset.label_map (did you mean 'OK'?)",
        ),
    ],
)
def test_a_config_that_cannot_run_names_its_keys_before_any_job(
    tmp_path: Path, change: Callable[[dict], None], said: str
) -> None:
    work = Workdir(tmp_path)
    config = tiny_config()
    change(config)
    work.write_config(config)
    dry = work.snakemake("-n", check=False)
    assert dry.returncode != 0
    assert said in dry.stdout + dry.stderr
    assert not (work.path / "resources").exists()
