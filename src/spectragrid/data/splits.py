"""Seeded, stratified, grouped K-fold assignment, stored once per (seed, k).

Each sample gets one fold number. Cell `f of k` tests on fold f, validates on
fold (f + 1) mod k and trains on the rest, so every sample is tested exactly
once per (seed, k) and the test folds of the K cells give an out-of-fold
prediction for every sample.

With `splits.given` the data set's own train/val/test parts (an image tree's
split folders, the clean file's `given_split` column) are the split instead:
one fold (k = 1) whose parts are the given ones, stored in the same file with
a `part` column, so a cell reads either kind through `read_fold_parts`.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from spectragrid.core.atomic import atomic_path
from spectragrid.data.image_files import GIVEN_SPLITS

log = logging.getLogger(__name__)


class SplitError(ValueError):
    """The data cannot be split as configured."""


@dataclass(frozen=True)
class FoldParts:
    train: np.ndarray  # boolean masks over the dataset's rows
    val: np.ndarray
    test: np.ndarray


def assign_folds(
    sample_ids: pd.Series,
    strata: pd.Series,
    groups: pd.Series | None,
    k: int,
    seed: int,
) -> pd.DataFrame:
    """Fold number per sample: stratified on `strata`, grouped by `groups`.

    Samples are first put in a canonical order (by id) so the result depends on
    the data and the seed only, not on the row order of the input files.
    """
    if k < 3:
        raise SplitError(f"splits.k = {k}: need at least 3 folds (train, validation, test)")
    frame = pd.DataFrame(
        {
            "sample_id": sample_ids.astype(str).to_numpy(),
            "strata": strata.astype(str).to_numpy(),
            "group": (groups if groups is not None else sample_ids).astype(str).to_numpy(),
        }
    )
    order = np.argsort(frame["sample_id"].to_numpy(), kind="stable")
    canon = frame.iloc[order].reset_index(drop=True)
    n_groups = canon["group"].nunique()
    if n_groups < k:
        fix = f"lower splits.k to {n_groups}" if n_groups >= 3 else "add samples of other groups"
        raise SplitError(
            f"splits.k = {k} but the data have only {n_groups} groups "
            f"(dataset.columns.group, whose samples stay in one fold): {fix}, or set "
            "splits.grouped: false if the replicates of a group are independent"
        )
    # A stratum rarer than k cannot be spread over the folds; it is still
    # split, just not stratified, which is what users expect of tiny classes.
    # Imported here: every training job reads folds, only the split job makes them
    # (scikit-learn takes a second to import).
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    x = np.zeros(len(canon))
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        pieces = splitter.split(x, canon["strata"], canon["group"])
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        pieces = splitter.split(x, canon["strata"])
    fold = np.full(len(canon), -1, dtype=np.int64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for f, (_, test_idx) in enumerate(pieces):
            fold[test_idx] = f
    for warning in caught:
        log.warning(_in_our_terms(str(warning.message), k))
    assert (fold >= 0).all()
    empty = sorted(set(range(k)) - set(fold.tolist()))
    if empty:
        raise SplitError(
            f"splits.k = {k}: fold(s) {', '.join(map(str, empty))} would hold no sample, since "
            f"the {n_groups} groups (dataset.columns.group) stay whole; lower splits.k, or set "
            "splits.grouped: false if the replicates of a group are independent"
        )
    canon["fold"] = fold
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    result = canon.iloc[back].reset_index(drop=True)
    return result[["sample_id", "fold"]]


def _in_our_terms(message: str, k: int) -> str:
    """scikit-learn's warning about a rare stratum, said as the cleaning report says it."""
    rare = re.match(r"The least populated class in y has only (\d+) members?", message)
    if rare:
        return (
            f"the rarest label has {rare[1]} samples, fewer than splits.k = {k}: not every test "
            "fold holds it, and its folds are not stratified (the cleaning report's notices "
            "name each such label)"
        )
    return f"splitting: {message}"


def fold_parts(folds: np.ndarray, fold: int, k: int) -> FoldParts:
    """Train / validation / test masks of cell `fold` of `k`."""
    if not 0 <= fold < k:
        raise SplitError(f"fold {fold} is not in 0..{k - 1}")
    test = folds == fold
    val = folds == (fold + 1) % k
    return FoldParts(train=~(test | val), val=val, test=test)


def given_folds(clean: Path, sample_ids: pd.Series, given: pd.Series) -> pd.DataFrame:
    """The one fold of a given split: sample_id, fold 0 and the part each sample was given
    in. Every sample needs a part and every part a sample, or the cells could not train,
    validate or test as the data set says."""
    parts = given.astype(object).where(given.notna(), None)
    unknown = ~parts.isin(GIVEN_SPLITS)
    if unknown.any():
        example = sample_ids[unknown.to_numpy()].iloc[0]
        raise SplitError(
            f"splits.given: {int(unknown.sum())} samples of {clean} were given in no "
            f"train/val/test folder (e.g. {example!r}); a given split needs "
            "dataset.images.split_folders: true"
        )
    empty = [part for part in GIVEN_SPLITS if not (parts == part).any()]
    if empty:
        raise SplitError(
            f"splits.given: the given {', '.join(empty)} folder(s) hold no kept image ({clean}; "
            "the cleaning report says why files were dropped); fill them, or set "
            "splits.given: false to split every image into splits.k folds"
        )
    return pd.DataFrame(
        {"sample_id": sample_ids.astype(str).to_numpy(), "fold": 0, "part": parts.to_numpy()}
    )


def write_folds(path: Path, folds: pd.DataFrame, seed: int, k: int) -> None:
    with atomic_path(path) as tmp:
        folds.assign(seed=seed, k=k).to_parquet(tmp, index=False)


def _aligned(path: Path, folds: pd.DataFrame, column: str, sample_ids: pd.Series) -> pd.Series:
    """`column` of the folds file aligned with `sample_ids`; every sample must have a row."""
    lookup = pd.Series(folds[column].to_numpy(), index=folds["sample_id"].astype(str))
    aligned = lookup.reindex(sample_ids.astype(str).to_numpy())
    missing = aligned.isna()
    if missing.any():
        first = sample_ids[missing.to_numpy()].iloc[0]
        raise SplitError(
            f"{path}: {int(missing.sum())} samples have no fold (e.g. {first!r}); "
            "the split is older than the data: rerun the split rule"
        )
    return aligned


def read_folds(path: Path, sample_ids: pd.Series) -> np.ndarray:
    """Fold number aligned with `sample_ids`; every sample must have one."""
    folds = pd.read_parquet(path)
    return _aligned(path, folds, "fold", sample_ids).to_numpy(dtype=np.int64)


def read_fold_parts(path: Path, sample_ids: pd.Series, fold: int, k: int) -> FoldParts:
    """Train / validation / test masks over `sample_ids` of cell `fold` of `k`, from a file
    of K folds or of a given split (its `part` column)."""
    folds = pd.read_parquet(path)
    if "part" not in folds.columns:
        return fold_parts(_aligned(path, folds, "fold", sample_ids).to_numpy(np.int64), fold, k)
    if (fold, k) != (0, 1):
        raise SplitError(
            f"{path}: a given split has one fold (f0of1); cell f{fold}of{k} is not in it"
        )
    parts = _aligned(path, folds, "part", sample_ids).to_numpy(dtype=object)
    return FoldParts(train=parts == "train", val=parts == "val", test=parts == "test")


def split_clean_file(
    clean: Path, out: Path, seed: int, k: int, grouped: bool = True, given: bool = False
) -> None:
    """Folds of a clean dataset, stratified on the full truth, grouped by the group column;
    with `given`, the data set's given train/val/test parts as one fold (seed unused: the
    split is the data set's, the seed still seeds training)."""
    if given:
        if k != 1:
            raise SplitError(f"splits.given: a given split is one fold (k = 1), not k = {k}")
        if "given_split" not in pq.read_schema(clean).names:
            raise SplitError(
                f"splits.given: {clean} has no given_split column; a given split needs an "
                "image tree with dataset.images.split_folders: true"
            )
        table = pd.read_parquet(clean, columns=["sample_id", "given_split"])
        write_folds(out, given_folds(clean, table["sample_id"], table["given_split"]), seed, k)
        return
    columns = ["sample_id", "full_truth"] + (["group"] if grouped else [])
    table = pd.read_parquet(clean, columns=columns)
    folds = assign_folds(
        table["sample_id"], table["full_truth"], table["group"] if grouped else None, k, seed
    )
    write_folds(out, folds, seed, k)
