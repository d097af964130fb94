"""Score batch files with the served models: one row per sample, column groups per target.

A spectra study's batch is raw files (spectragrid.serve.batch_input); an image
study's is image files and folders (spectragrid.serve.image_input), one row
per image. Which one is the served models' input.

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
from spectragrid.serve.image_input import (
    ImageBatch,
    image_inputs,
    read_image_batch,
    shared_image_spec,
)
from spectragrid.serve.model import ServedModel

ID_COLUMNS: tuple[str, ...] = ("sample_id", "source_file", "source_row")


def column(target: str, name: str) -> str:
    return f"{target}.{name}"


def _model_probabilities(
    batch: BatchFile | ImageBatch,
    model: ServedModel,
    saturation: dict | None,
    min_integral: dict | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, NaN where not scored; reason per row) of `batch` under `model`."""
    proba = np.full((len(batch), len(model.classes)), np.nan, dtype=np.float32)
    if isinstance(batch, ImageBatch):
        images = image_inputs(batch, model)
        ok = images.reason == ""
        proba[ok] = model.image_probabilities(images.images[ok])
        return proba, images.reason
    inputs = model_inputs(batch, model, saturation, min_integral)
    ok = inputs.reason == ""
    proba[ok] = model.probabilities(inputs.spectra[ok], inputs.tabular[ok])
    return proba, inputs.reason


def score_batch(
    batch: BatchFile | ImageBatch,
    models: Mapping[str, ServedModel],
    saturation: dict | None = None,
    min_integral: dict | None = None,
) -> pd.DataFrame:
    """The scores of every row of `batch` under each target's served model."""
    out = batch.table.loc[:, list(ID_COLUMNS)].copy()
    for target, model in models.items():
        proba, reason = _model_probabilities(batch, model, saturation, min_integral)
        ok = reason == ""
        predicted = np.full(len(batch), None, dtype=object)
        decision = np.full(len(batch), None, dtype=object)
        predicted[ok], decision[ok] = model.decisions(proba[ok])
        for i, name in enumerate(model.classes):
            out[column(target, f"prob_{name}")] = proba[:, i]
        out[column(target, "predicted")] = predicted
        out[column(target, "decision")] = decision
        out[column(target, "reason")] = reason
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
    """Score every row of `raw_files` (an image study: every image of the files and
    folders listed) and write the table as Parquet and CSV."""
    models = load_models(model_paths, threads)
    spec = shared_image_spec(models)
    batches = (
        (read_image_batch([p], spec) for p in raw_files)
        if spec is not None
        else (read_batch_file(Path(p), columns) for p in raw_files)
    )
    frames = [score_batch(batch, models, saturation, min_integral) for batch in batches]
    scores = pd.concat(frames, ignore_index=True)
    with atomic_path(out_parquet) as tmp:
        scores.to_parquet(tmp, index=False)
    with atomic_path(out_csv) as tmp:
        # ids and labels from a file must not become spreadsheet formulas
        neutralised(scores).to_csv(tmp, index=False)
    return scores
