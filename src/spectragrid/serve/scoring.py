"""Score batch files with the served models: one row per sample, column groups per target.

For each served target T the columns are `T.prob_<class>` (one per class, in
the model's order), `T.predicted`, `T.decision` (the predicted class, or
`uncertain` under that class's cutoff), `T.reason` ("" where scored, else why
not: then the probabilities are NaN and the predicted class and decision
empty) and `T.model_sha256`. The dot cannot occur in a target name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core.atomic import atomic_path
from spectragrid.core.spreadsheet import neutralised
from spectragrid.serve.batch_input import BatchFile, model_inputs, read_batch_file
from spectragrid.serve.model import ServedModel

ID_COLUMNS: tuple[str, ...] = ("sample_id", "source_file", "source_row")


def column(target: str, name: str) -> str:
    return f"{target}.{name}"


def score_batch(
    batch: BatchFile,
    models: Mapping[str, ServedModel],
    saturation: dict | None = None,
    min_integral: dict | None = None,
) -> pd.DataFrame:
    """The scores of every row of `batch` under each target's served model."""
    out = batch.table.loc[:, list(ID_COLUMNS)].copy()
    for target, model in models.items():
        inputs = model_inputs(batch, model, saturation, min_integral)
        ok = inputs.reason == ""
        proba = np.full((len(batch), len(model.classes)), np.nan, dtype=np.float32)
        proba[ok] = model.probabilities(inputs.spectra[ok], inputs.tabular[ok])
        predicted = np.full(len(batch), None, dtype=object)
        decision = np.full(len(batch), None, dtype=object)
        predicted[ok], decision[ok] = model.decisions(proba[ok])
        for i, name in enumerate(model.classes):
            out[column(target, f"prob_{name}")] = proba[:, i]
        out[column(target, "predicted")] = predicted
        out[column(target, "decision")] = decision
        out[column(target, "reason")] = inputs.reason
        out[column(target, "model_sha256")] = model.sha256
    return out


def load_models(paths: Mapping[str, Path], threads: int = 1) -> dict[str, ServedModel]:
    return {target: ServedModel.load(Path(p), threads) for target, p in paths.items()}


def predict_batch(
    raw_files: Sequence[Path],
    model_paths: Mapping[str, Path],
    columns: dict,
    saturation: dict | None,
    min_integral: dict | None,
    out_parquet: Path,
    out_csv: Path,
    threads: int = 1,
) -> pd.DataFrame:
    """Score every row of `raw_files` and write the table as Parquet and CSV."""
    models = load_models(model_paths, threads)
    frames = [
        score_batch(read_batch_file(Path(p), columns), models, saturation, min_integral)
        for p in raw_files
    ]
    scores = pd.concat(frames, ignore_index=True)
    with atomic_path(out_parquet) as tmp:
        scores.to_parquet(tmp, index=False)
    with atomic_path(out_csv) as tmp:
        # ids and labels from a file must not become spreadsheet formulas
        neutralised(scores).to_csv(tmp, index=False)
    return scores
