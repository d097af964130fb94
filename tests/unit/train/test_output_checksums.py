"""A cell's outputs carry their checksums; a truncated or altered file is named and removed."""

import json
import os

import pytest
from cell_cases import inputs, outputs, spec

from spectragrid.core import layout
from spectragrid.train.cell import run_cell
from spectragrid.train.output_checksums import (
    CHECKED,
    CorruptOutputError,
    changed_since_recorded,
    verify_cell,
)

pytestmark = pytest.mark.slow


@pytest.fixture()
def cell(prepared, tmp_path):
    out = outputs(tmp_path / "cell")
    run_cell(spec(), *inputs(prepared), out)
    return out.metrics.parent


def test_metrics_record_the_checksum_of_every_other_output(cell):
    metrics = verify_cell(cell)
    assert sorted(metrics["outputs"]) == sorted(CHECKED)
    assert layout.CELL_FILES["metrics"] not in metrics["outputs"]


@pytest.mark.parametrize("name", ["model.ckpt", "model.onnx", "predictions.parquet"])
def test_a_truncated_output_is_named_and_the_cell_removed(cell, name):
    path = cell / name
    path.write_bytes(path.read_bytes()[:100])
    (cell / layout.SHEET_FILES["png"]).write_bytes(b"an older sheet")
    with pytest.raises(CorruptOutputError, match=rf"{name}: does not match the checksum"):
        verify_cell(cell)
    # nothing is left that a later run would take for the cell's outputs
    assert sorted(p.name for p in cell.iterdir()) == []


def test_a_metrics_file_without_checksums_or_unreadable_is_refused(cell):
    metrics = json.loads((cell / "metrics.json").read_text())
    del metrics["outputs"]
    (cell / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(CorruptOutputError, match=r"metrics\.json: holds no checksums"):
        verify_cell(cell)


def test_only_the_named_files_are_checked(cell):
    (cell / "model.ckpt").write_bytes(b"changed")
    assert verify_cell(cell, names=["predictions.parquet"])["cell"]["fold"] == 1


def test_files_missing_or_written_after_the_metrics_are_reported_by_name(cell):
    """How a change to a file Snakemake does not track reaches the sheet job."""
    assert changed_since_recorded(cell) == {}
    written = (cell / "metrics.json").stat().st_mtime_ns
    (cell / "card.json").unlink()
    history = cell / "history.csv"
    history.write_text(history.read_text() + "\n")
    os.utime(history, ns=(written + 10**9, written + 10**9))
    os.utime(cell / "model.ckpt", ns=(written - 10**9, written - 10**9))
    assert changed_since_recorded(cell) == {
        "card.json": "missing",
        "history.csv": str(written + 10**9),
    }
    # a second edit is a second change
    os.utime(history, ns=(written + 2 * 10**9, written + 2 * 10**9))
    assert changed_since_recorded(cell)["history.csv"] == str(written + 2 * 10**9)
    # a cell without metrics.json is not trained yet: Snakemake trains it
    (cell / "metrics.json").unlink()
    assert changed_since_recorded(cell) == {}
