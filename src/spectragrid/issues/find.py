"""Label issues from the grid's own out-of-fold predictions.

The K raw cells of one (model, target, channels, seed, k) test on disjoint
folds that cover the dataset, so their test predictions are out-of-fold
probabilities for every sample: the cross-validation cleanlab needs, without
training anything twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues

from spectragrid.core.atomic import atomic_path
from spectragrid.data.label_patch import apply_label_patch
from spectragrid.data.targets import resolve


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


def find_issues(
    oof: pd.DataFrame,
    classes: list[str],
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
    min_examples_per_class: int = 1,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Ranked label issues: sample_id, given/suggested label, label quality, rank."""
    proba = oof[prob_columns(classes)].to_numpy(dtype=np.float64)
    proba = proba / proba.sum(axis=1, keepdims=True)
    given = oof["label_index"].to_numpy(dtype=np.int64)
    ranked = find_label_issues(
        labels=given,
        pred_probs=proba,
        filter_by=filter_by,
        return_indices_ranked_by=rank_by,
        min_examples_per_class=min_examples_per_class,
        n_jobs=n_jobs,
    )
    ranked = np.asarray(ranked, dtype=np.int64)
    quality = proba[np.arange(len(given)), given]
    names = np.asarray(classes, dtype=object)
    return pd.DataFrame(
        {
            "sample_id": oof["sample_id"].to_numpy()[ranked],
            "given_label": names[given[ranked]],
            "suggested_label": names[proba[ranked].argmax(axis=1)],
            "label_quality": quality[ranked],
            "rank": np.arange(1, len(ranked) + 1),
        }
    )


def write_issues(path: Path, issues: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        issues.to_csv(tmp, index=False, float_format="%.6g")


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


def run_label_issues(
    prediction_files: list[Path],
    models: list[str],
    k: int,
    target_spec: str | dict,
    clean_path: Path,
    folds_path: Path,
    out_issues: Path,
    out_oof: Path,
    filter_by: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
    min_examples_per_class: int = 1,
    n_jobs: int = 1,
    label_patch: list | None = None,
) -> pd.DataFrame:
    """Issues of one (target, channels, seed, k) from the raw cells of `models`.

    `prediction_files` are ordered model-major, fold-minor (k files per model);
    `label_patch` holds the reviewed labels the cells were trained with.
    """
    if len(prediction_files) != len(models) * k:
        raise OOFError(f"expected {len(models) * k} prediction files, got {len(prediction_files)}")
    if label_patch:
        columns = ["sample_id", "severity", "type", "full_truth"]
        table = apply_label_patch(pd.read_parquet(clean_path, columns=columns), label_patch)
    else:
        table = pd.read_parquet(clean_path, columns=["sample_id", "full_truth"])
    target = resolve("label_issues", target_spec, table)
    expected = table["sample_id"][target.encode(table["full_truth"]) >= 0]
    folds = pd.read_parquet(folds_path, columns=["sample_id", "fold"])
    classes: list[str] | None = None
    oofs = []
    for m in range(len(models)):
        files = prediction_files[m * k : (m + 1) * k]
        if classes is None:
            first = pd.read_parquet(files[0])
            classes = [c.removeprefix("prob_") for c in first.columns if c.startswith("prob_")]
        oof = assemble_oof(files, classes, expected)
        oof["cell_fold"] = oof["source"].map({str(f): i for i, f in enumerate(files)})
        check_out_of_fold(oof, folds)
        oofs.append(oof)
    assert classes is not None
    if list(classes) != list(target.classes):
        raise OOFError(f"cells predict {classes}, the target {target_spec!r} has {target.classes}")
    unknown = set(oofs[0]["sample_id"].astype(str)) - set(expected.astype(str))
    if unknown:
        raise OOFError(
            f"{len(unknown)} predictions name samples outside the dataset or target, "
            f"e.g. {sorted(unknown)[0]!r}"
        )
    combined = mean_oof(oofs, classes) if len(oofs) > 1 else oofs[0]
    settings = (filter_by, rank_by, min_examples_per_class)
    issues = find_issues(combined, classes, *settings, n_jobs=n_jobs)
    # Which models, on their own, would flag each sample: agreement a reviewer can weigh.
    own = {
        model: set(find_issues(oof, classes, *settings, n_jobs=n_jobs)["sample_id"])
        for model, oof in zip(models, oofs, strict=True)
    }
    issues["flagged_by"] = [
        ";".join(m for m in models if sample in own[m]) for sample in issues["sample_id"]
    ]
    with atomic_path(out_oof) as tmp:
        combined[["sample_id", "label_index", "label", *prob_columns(classes)]].to_parquet(
            tmp, index=False
        )
    write_issues(out_issues, issues)
    return issues


def read_flagged(path: Path) -> set[str]:
    return set(pd.read_csv(path, dtype={"sample_id": str})["sample_id"])
