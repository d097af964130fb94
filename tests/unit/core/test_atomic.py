"""A writer that fails midway leaves nothing at the final name (and no temporary file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pandas as pd
import pytest
import torch

from spectragrid.core.atomic import atomic_path, write_atomic
from spectragrid.data import splits
from spectragrid.issues import find as label_issues
from spectragrid.report import summary_tables as summary
from spectragrid.train import export


class DiskFull(OSError):
    pass


def _partial_then_fail(*args, **_kwargs) -> None:
    """A serializer that gets halfway: some bytes reach its file, then it fails."""
    path = next(a for a in args if isinstance(a, str | Path))
    with open(path, "wb") as stream:
        stream.write(b"PAR1 half a file")
    raise DiskFull("no space left on device")


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "out" / "metrics.json"
    with pytest.raises(DiskFull), atomic_path(target) as tmp:
        _partial_then_fail(tmp)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_failed_write_keeps_the_previous_version(tmp_path):
    target = tmp_path / "sheet.html"
    write_atomic(target, "<p>old</p>")
    with pytest.raises(DiskFull), atomic_path(target) as tmp:
        _partial_then_fail(tmp)
    assert target.read_text() == "<p>old</p>"
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.html"]


def test_the_temporary_name_is_hidden_and_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "table.csv.gz") as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".") and tmp.name.endswith(".gz")
        pd.DataFrame({"a": [1, 2]}).to_csv(tmp, index=False)  # gzip inferred from the name
    assert pd.read_csv(tmp_path / "table.csv.gz")["a"].tolist() == [1, 2]


def _folds(out: Path) -> None:
    folds = pd.DataFrame({"sample_id": ["a", "b"], "fold": [0, 1]})
    splits.write_folds(out / "folds.parquet", folds, seed=0, k=3)


def _issues(out: Path) -> None:
    label_issues.write_issues(out / "issues.csv", pd.DataFrame({"sample_id": ["a"]}))


def _summary_tables(out: Path) -> None:
    summary.write_tables(pd.DataFrame({"cell": [1]}), out / "summary.csv", out / "summary.parquet")


def _onnx(out: Path) -> None:
    class Tiny(torch.nn.Module):
        def forward(self, spectra, tabular):
            return spectra.mean(dim=2)

    export.export_onnx(Tiny(), out / "model.onnx", 2, 8, 0, {"classes": ["a", "b"]})


def _png(out: Path) -> None:
    write_atomic(out / "sheet.png", np.zeros(64, dtype=np.uint8).tobytes())


# (writer, the serializer it calls, the final file that must not appear)
WRITERS = [
    (_folds, (pd.DataFrame, "to_parquet"), "folds.parquet"),
    (_issues, (pd.DataFrame, "to_csv"), "issues.csv"),
    (_summary_tables, (pd.DataFrame, "to_parquet"), "summary.parquet"),
    (_onnx, (onnx, "save"), "model.onnx"),
    (_png, (Path, "write_bytes"), "sheet.png"),
]


@pytest.mark.parametrize(
    ("write", "serializer", "name"), WRITERS, ids=[name for _, _, name in WRITERS]
)
def test_a_library_writer_that_fails_midway_leaves_no_file(
    tmp_path, monkeypatch, write, serializer, name
):
    write(tmp_path)  # the writer works, and the file is there...
    assert (tmp_path / name).exists()
    (tmp_path / name).unlink()
    monkeypatch.setattr(*serializer, _partial_then_fail)
    with pytest.raises(DiskFull):
        write(tmp_path)
    # ...but a failure halfway leaves neither the half file nor its temporary name
    assert not (tmp_path / name).exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
