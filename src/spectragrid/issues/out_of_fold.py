"""Out-of-fold probabilities from the grid's raw cells, checked before cleanlab sees them.

The K raw cells of one (model, target, channels, seed, k) test on disjoint
folds that cover the dataset, so stacking their test predictions gives an
out-of-fold probability for every sample. The checks here make that true of
the files at hand: every sample predicted exactly once, and by the cell whose
test fold holds it (never by a cell that trained or validated on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class OOFError(ValueError):
    """Out-of-fold predictions that do not cover the data exactly once, or leak."""


def prob_columns(classes: list[str]) -> list[str]:
    return [f"prob_{c}" for c in classes]


def assemble_oof(
    prediction_files: list[Path], classes: list[str], expected_ids: pd.Series | None = None
) -> pd.DataFrame:
    """Stack the test-fold predictions of one model's K cells into one OOF table.

    Fails when a sample is predicted twice (two folds claim it) or, given the
    expected ids, when one is never predicted.
    """
    frames = []
    for path in prediction_files:
        frame = pd.read_parquet(path)
        missing = [c for c in prob_columns(classes) if c not in frame.columns]
        if missing:
            raise OOFError(f"{path}: no column {missing[0]!r}; the cell has other classes")
        frames.append(frame.assign(source=str(path)))
    oof = pd.concat(frames, ignore_index=True)
    counts = oof["sample_id"].value_counts()
    twice = counts[counts > 1]
    if len(twice):
        example = twice.index[0]
        sources = oof.loc[oof["sample_id"] == example, "source"].tolist()
        raise OOFError(
            f"{len(twice)} samples have more than one out-of-fold prediction, e.g. "
            f"{example!r} from {sources}: the folds overlap"
        )
    if expected_ids is not None:
        absent = set(expected_ids.astype(str)) - set(oof["sample_id"].astype(str))
        if absent:
            raise OOFError(
                f"{len(absent)} samples have no out-of-fold prediction, "
                f"e.g. {sorted(absent)[0]!r}: a fold is missing"
            )
    return oof.sort_values("sample_id", kind="stable").reset_index(drop=True)


def mean_oof(oofs: list[pd.DataFrame], classes: list[str]) -> pd.DataFrame:
    """Average the OOF probabilities of several models (same samples, same classes)."""
    base = oofs[0][["sample_id", "label_index", "label"]].reset_index(drop=True)
    cols = prob_columns(classes)
    for other in oofs[1:]:
        if not np.array_equal(other["sample_id"].to_numpy(), base["sample_id"].to_numpy()):
            raise OOFError("the models to average do not predict the same samples")
    mean = np.mean([o[cols].to_numpy(dtype=np.float64) for o in oofs], axis=0)
    return pd.concat([base, pd.DataFrame(mean, columns=cols)], axis=1)


def oof_log_loss(oof: pd.DataFrame, classes: list[str]) -> float:
    """Mean log-loss of out-of-fold probabilities against the given labels.

    Each sample is scored by a model that never trained on it, so this ranks
    sources of evidence on data none of them saw. The given labels carry the
    noise being looked for; a model that is sure of the truth where a label is
    wrong pays for it here, but all sources pay on the same samples, so the
    ranking stays fair.
    """
    proba = oof[prob_columns(classes)].to_numpy(dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)
    given = oof["label_index"].to_numpy(dtype=np.int64)
    picked = np.clip(proba[np.arange(len(given)), given], 1e-12, 1.0)
    return float(-np.mean(np.log(picked)))


def check_out_of_fold(oof: pd.DataFrame, folds: pd.DataFrame) -> None:
    """Fail when a prediction came from a cell that trained or validated on its sample.

    `oof` carries the fold of the cell that made each prediction (`cell_fold`);
    a genuine out-of-fold prediction comes from the cell whose test fold holds
    the sample.
    """
    lookup = pd.Series(folds["fold"].to_numpy(), index=folds["sample_id"].astype(str))
    sample_fold = lookup.reindex(oof["sample_id"].astype(str).to_numpy()).to_numpy()
    leaked = sample_fold != oof["cell_fold"].to_numpy()
    if leaked.any():
        i = int(np.flatnonzero(leaked)[0])
        raise OOFError(
            f"{int(leaked.sum())} predictions are not out-of-fold, e.g. sample "
            f"{oof['sample_id'].iloc[i]!r} (test fold {sample_fold[i]}) predicted by the cell "
            f"of fold {oof['cell_fold'].iloc[i]} in {oof['source'].iloc[i]}, which trained "
            "or validated on it"
        )
