"""Label issues from the grid's own out-of-fold predictions: the label_issues job.

The K raw cells of one (model, target, channels, seed, k) test on disjoint
folds that cover the dataset, so their test predictions are out-of-fold
probabilities for every sample (`out_of_fold`): the cross-validation cleanlab
needs, without training anything twice. The issues file written here is read
back by `spectragrid.train.label_action.read_issues` alone.

Every (model, channel set) of the grid sees the same samples with the same
labels and folds, so any of them is evidence for any channel set's labels.
`combine` says how the sources of one job become one probability table:
`best_log_loss` keeps the source with the lowest out-of-fold log-loss on the
given labels; `greedy_log_loss` starts from that source and adds, one at a
time, the source whose average with those chosen lowers the log-loss most,
stopping when none does; `mean` averages them all; `model_mean` averages one
source per model, each model on the channel set where its out-of-fold
log-loss is lowest. On the demo a weak source
(one channel) dragged the plain mean below the best single source, while the
greedy average of the sources that help beat the best single source on every
pair; docs/label_cleaning.md has the figures. Only the given labels steer the
choice: no truth is needed to make it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues

from spectragrid.core.atomic import atomic_path, write_atomic
from spectragrid.core.spreadsheet import neutralised
from spectragrid.data.clean_file import read_labels
from spectragrid.data.label_patch import apply_label_patch
from spectragrid.data.targets import Target, resolve
from spectragrid.issues.out_of_fold import (
    OOFError,
    assemble_oof,
    check_out_of_fold,
    mean_oof,
    oof_log_loss,
    prob_columns,
)
from spectragrid.train.output_checksums import verify_cell

# How the sources of evidence of one job become one probability table.
COMBINE = ("best_log_loss", "greedy_log_loss", "mean", "model_mean")


def find_issues(
    oof: pd.DataFrame,
    classes: list[str],
    *,
    filter_by: str,
    rank_by: str,
    min_examples_per_class: int,
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


def chosen_sources(
    oofs: list[pd.DataFrame],
    losses: list[float],
    classes: list[str],
    combine: str,
    models: list[str] | None = None,
) -> list[int]:
    """The indices of the sources `combine` averages (see the module's docstring). Ties
    go to the source listed first: the job's own channel set comes first. `models`
    names each source (`model` or `model/channels`); `model_mean` needs it."""
    if combine == "mean":
        return list(range(len(oofs)))
    if combine == "model_mean":
        if models is None or len(models) != len(oofs):
            raise ValueError("model_mean needs the name of every source")
        best: dict[str, int] = {}
        for index, name in enumerate(models):
            model = name.split("/", 1)[0]
            if model not in best or losses[index] < losses[best[model]]:
                best[model] = index
        return sorted(best.values())
    used = [int(np.argmin(losses))]
    if combine == "best_log_loss":
        return used
    best = losses[used[0]]
    while len(used) < len(oofs):
        trials = [
            (oof_log_loss(mean_oof([oofs[j] for j in [*used, i]], classes), classes), i)
            for i in range(len(oofs))
            if i not in used
        ]
        loss, pick = min(trials)
        if not loss < best:
            break
        used.append(pick)
        best = loss
    return used


def write_issues(path: Path, issues: pd.DataFrame) -> None:
    """Write an issues file at once (a reader never sees half of it)."""
    with atomic_path(path) as tmp:
        neutralised(issues).to_csv(tmp, index=False, float_format="%.6g")


def run_label_issues(
    prediction_files: list[Path],
    models: list[str],
    k: int,
    target_spec: str | dict,
    clean_path: Path,
    folds_path: Path,
    out_issues: Path,
    out_oof: Path,
    *,
    filter_by: str,
    rank_by: str,
    min_examples_per_class: int,
    n_jobs: int = 1,
    label_patch: list | None = None,
    check_outputs: bool = True,
    combine: str = "mean",
    out_evidence: Path | None = None,
) -> pd.DataFrame:
    """Issues of one (target, channels, seed, k) from the raw cells of the sources `models`.

    `models` names the sources of evidence (a model, or `model/channels` for a
    model on another channel set); `prediction_files` are ordered source-major,
    fold-minor (k files per source). `combine` (COMBINE) picks or averages
    them; `out_evidence`, when given, records each source's out-of-fold
    log-loss and which were used. `label_patch` holds the reviewed labels the
    cells were trained with. With `check_outputs`, each predictions file is
    first checked against the checksum its cell recorded.
    """
    if combine not in COMBINE:
        raise ValueError(f"label_issues.combine: {combine!r} is not one of {', '.join(COMBINE)}")
    if len(prediction_files) != len(models) * k:
        raise OOFError(f"expected {len(models) * k} prediction files, got {len(prediction_files)}")
    if check_outputs:
        for path in prediction_files:
            verify_cell(Path(path).parent, names=[Path(path).name])
    target, expected = _target_samples(clean_path, target_spec, label_patch)
    folds = pd.read_parquet(folds_path, columns=["sample_id", "fold"])
    first = pd.read_parquet(prediction_files[0])
    classes = [c.removeprefix("prob_") for c in first.columns if c.startswith("prob_")]
    oofs = [
        _model_oof(prediction_files[m * k : (m + 1) * k], classes, expected, folds)
        for m in range(len(models))
    ]
    if list(classes) != list(target.classes):
        raise OOFError(f"cells predict {classes}, the target {target_spec!r} has {target.classes}")
    unknown = set(oofs[0]["sample_id"].astype(str)) - set(expected.astype(str))
    if unknown:
        raise OOFError(
            f"{len(unknown)} predictions name samples outside the dataset or target, "
            f"e.g. {sorted(unknown)[0]!r}"
        )
    losses = [oof_log_loss(oof, classes) for oof in oofs]
    used = chosen_sources(oofs, losses, classes, combine, models)
    chosen = [oofs[i] for i in used]
    combined = mean_oof(chosen, classes) if len(chosen) > 1 else chosen[0]
    settings = {
        "filter_by": filter_by,
        "rank_by": rank_by,
        "min_examples_per_class": min_examples_per_class,
        "n_jobs": n_jobs,
    }
    issues = find_issues(combined, classes, **settings)
    # Which models, on their own, would flag each sample: agreement a reviewer can weigh.
    own = {
        model: set(find_issues(oof, classes, **settings)["sample_id"])
        for model, oof in zip(models, oofs, strict=True)
    }
    issues["flagged_by"] = [
        ";".join(m for m in models if sample in own[m]) for sample in issues["sample_id"]
    ]
    with atomic_path(out_oof) as tmp:
        combined[["sample_id", "label_index", "label", *prob_columns(classes)]].to_parquet(
            tmp, index=False
        )
    if out_evidence is not None:
        record = {
            "combine": combine,
            "used": [models[i] for i in used],
            "log_loss": {m: loss for m, loss in zip(models, losses, strict=True)},
            "used_log_loss": oof_log_loss(combined, classes),
        }
        write_atomic(Path(out_evidence), json.dumps(record, indent=1) + "\n")
    write_issues(out_issues, issues)
    return issues


def _target_samples(
    clean_path: Path, target_spec: str | dict, label_patch: list | None
) -> tuple[Target, pd.Series]:
    """The target, and the ids of the samples it classifies, under the cells' own labels.

    Every label column is read: a user-defined target may name any of them.
    """
    table = apply_label_patch(read_labels(clean_path), label_patch or [])
    target = resolve("label_issues", target_spec, table)
    return target, table["sample_id"][target.encode(table["full_truth"]) >= 0]


def _model_oof(
    files: list[Path], classes: list[str], expected: pd.Series, folds: pd.DataFrame
) -> pd.DataFrame:
    """One model's OOF table from its K cells (fold-ordered), checked for leaks."""
    oof = assemble_oof(files, classes, expected)
    oof["cell_fold"] = oof["source"].map({str(f): i for i, f in enumerate(files)})
    check_out_of_fold(oof, folds)
    return oof
