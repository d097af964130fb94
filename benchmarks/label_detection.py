"""Label-issue detection of a finished study against two simpler routes, scored on the truth.

Run after `snakemake` on a dataset that has a truth file (the demo has). On
one (target, channel set, seed, k) of the study, three detections are scored
against the samples whose given target class differs from their true one:

1. spectragrid's default: the study's own `issues.csv` (cleanlab on the
   out-of-fold probabilities of the grid's raw cells);
2. "prediction differs from the label": argmax of the same out-of-fold
   probabilities (`oof.parquet`) != given label;
3. cleanlab's `CleanLearning` around a scikit-learn logistic regression on the
   flattened, standardised spectra of the channel set: the quick route a user
   would take. Its out-of-fold probabilities come from the study's own folds
   (`splits/s<seed>_k<k>.parquet`), so all three see the same partition.

Printed: one table (flagged, true positives, precision, recall, F1, seconds)
and which method has the best F1, said plainly when it is not spectragrid's.
Seconds: the detection itself, measured here, and the cost of the out-of-fold
probabilities it used (the study's raw cells from their model cards; the LR
fits, measured here on `--threads` BLAS threads).

From the repository root, after `snakemake` (defaults: the default study):

    python benchmarks/label_detection.py --results results --dataset demo \
        --truth resources/demo/truth.csv --target OVA_OK --channels all --seed 0 --k 5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from spectragrid.core import layout
from spectragrid.core.config import validate
from spectragrid.data.clean_file import read_clean
from spectragrid.data.splits import read_folds
from spectragrid.data.targets import resolve
from spectragrid.data.truth import read_truth
from spectragrid.issues.find import find_issues
from spectragrid.issues.flagged_set_scores import detection_scores, truly_mislabelled
from spectragrid.issues.out_of_fold import prob_columns
from spectragrid.train.label_action import read_issues

LR_SETTINGS = {"max_iter": 1000}
LR_DESCRIPTION = "StandardScaler + LogisticRegression(max_iter=1000), other settings default"


@dataclass
class Detection:
    method: str
    flagged: set[str]
    seconds: float  # detection itself, measured here
    oof_seconds: float  # producing the out-of-fold probabilities it used
    oof_note: str


def in_results(results: Path, path: str) -> Path:
    """A layout path (`results/...`) under the study's own results folder."""
    return results / layout.results_key(path)


def study_paths(
    results: Path, dataset: str, target: str, channels: str, seed: int, k: int
) -> dict[str, Path]:
    issues_dir = in_results(results, layout.issues_dir(dataset, target, channels, seed, k))
    paths = {
        "issues": issues_dir / layout.ISSUES_FILES["issues"],
        "oof": issues_dir / layout.ISSUES_FILES["oof"],
        "clean": in_results(results, layout.clean_file(dataset)),
        "folds": in_results(results, layout.folds_file(dataset, seed, k)),
    }
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise SystemExit(
            f"missing study output(s): {', '.join(missing)}\n"
            "run the study first (snakemake) with label issues enabled for this "
            "target, channel set, seed and k"
        )
    return paths


def training_seconds(
    results: Path, dataset: str, target: str, channels: str, models: list[str], seed: int, k: int
) -> float:
    """Wall time of the raw cells whose test folds make the study's OOF (their model cards)."""
    total = 0.0
    for model in models:
        for fold in range(k):
            cell = layout.cell_dir(dataset, "raw", target, channels, model, seed, fold, k)
            card = in_results(results, cell) / layout.CELL_FILES["card"]
            if not card.exists():
                return math.nan
            total += float(json.loads(card.read_text()).get("wall_seconds", math.nan))
    return total


def spectragrid_default(
    paths: dict, classes: list[str], issues_cfg: dict, train_s: float, models: list[str]
) -> Detection:
    flagged = set(read_issues(paths["issues"])["sample_id"])
    oof = pd.read_parquet(paths["oof"])
    start = time.perf_counter()
    # Re-running the study's filter on its own OOF times it and catches a stale issues.csv.
    again = find_issues(
        oof,
        classes,
        filter_by=issues_cfg["filter_by"],
        rank_by=issues_cfg["rank_by"],
        min_examples_per_class=int(issues_cfg["min_examples_per_class"]),
    )
    seconds = time.perf_counter() - start
    if set(again["sample_id"].astype(str)) != flagged:
        print(
            f"warning: {paths['issues']} differs from the current label_issues settings "
            "applied to its oof.parquet (study older than the config?); scoring issues.csv",
            file=sys.stderr,
        )
    return Detection(
        f"spectragrid default ({'+'.join(models)}, {issues_cfg['filter_by']})",
        flagged,
        seconds,
        train_s,
        f"K raw cells of {'+'.join(models)} in the study (model cards)",
    )


def argmax_differs(paths: dict, classes: list[str], train_s: float) -> Detection:
    oof = pd.read_parquet(paths["oof"])
    start = time.perf_counter()
    proba = oof[prob_columns(classes)].to_numpy()
    differs = proba.argmax(axis=1) != oof["label_index"].to_numpy()
    flagged = set(oof["sample_id"].astype(str).to_numpy()[differs])
    seconds = time.perf_counter() - start
    return Detection("argmax(OOF) != label", flagged, seconds, train_s, "same OOF as spectragrid")


def clean_learning_lr(
    spectra: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    ids: np.ndarray,
    k: int,
    seed: int,
    threads: int = 1,
) -> tuple[Detection, int]:
    """CleanLearning on LR out-of-fold probabilities over the study's folds; also returns
    how many of the K fits stopped at max_iter."""
    from cleanlab.classification import CleanLearning
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    # float64, as a user's features from pandas or numpy would be
    features = spectra.reshape(len(spectra), -1).astype(np.float64)
    model = make_pipeline(StandardScaler(), LogisticRegression(**LR_SETTINGS))
    start = time.perf_counter()
    # lbfgs here is a chain of small matrix-vector products: BLAS threads beyond one only
    # wait on each other, and on a busy machine made the fits about 10x slower.
    with (
        threadpool_limits(limits=threads, user_api="blas"),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        proba = cross_val_predict(
            model, features, labels, cv=PredefinedSplit(folds), method="predict_proba"
        )
    oof_seconds = time.perf_counter() - start
    not_converged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    start = time.perf_counter()
    found = CleanLearning(model, cv_n_folds=k, seed=seed).find_label_issues(
        labels=labels, pred_probs=proba
    )
    seconds = time.perf_counter() - start
    flagged = set(ids[found["is_label_issue"].to_numpy(dtype=bool)])
    detection = Detection(
        "CleanLearning(StandardScaler+LR(max_iter=1000))",
        flagged,
        seconds,
        oof_seconds,
        f"LR cross_val_predict on the study's {k} folds, in this script",
    )
    return detection, not_converged


def _fmt(value: float, spec: str = ".3f") -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def compare(args: argparse.Namespace) -> pd.DataFrame:
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    ds = config["dataset"]
    if args.target not in config["targets"]:
        raise SystemExit(
            f"--target {args.target!r} is not in {args.config}: {list(config['targets'])}"
        )
    if args.channels not in config["channel_sets"]:
        raise SystemExit(
            f"--channels {args.channels!r} is not in {args.config}: {list(config['channel_sets'])}"
        )
    results = Path(args.results)
    paths = study_paths(results, args.dataset, args.target, args.channels, args.seed, args.k)
    channels = [str(c) for c in config["channel_sets"][args.channels]]
    models = list(config["label_issues"]["models"])

    data = read_clean(paths["clean"], channels)
    table = data.table
    target = resolve(args.target, config["targets"][args.target], table)
    classes = list(target.classes)
    labels_all = target.encode(table["full_truth"])
    in_target = labels_all >= 0
    ids = table["sample_id"].astype(str).to_numpy()[in_target]
    labels = labels_all[in_target]
    folds = read_folds(paths["folds"], table["sample_id"])[in_target]

    truth = read_truth(Path(args.truth), ds["columns"], ds["label_map"])
    given = pd.Series(table["full_truth"].astype(str).to_numpy()[in_target], index=ids)
    true = pd.Series(truth["full_truth"].to_numpy(), index=truth["sample_id"].astype(str))
    truly = truly_mislabelled(given, true, target)

    train_s = training_seconds(
        results, args.dataset, args.target, args.channels, models, args.seed, args.k
    )
    detections = [
        spectragrid_default(paths, classes, config["label_issues"], train_s, models),
        argmax_differs(paths, classes, train_s),
    ]
    cl, not_converged = clean_learning_lr(
        data.stack(channels)[in_target], labels, folds, ids, args.k, args.seed, args.threads
    )
    detections.append(cl)

    rows = []
    for d in detections:
        scores = detection_scores(d.flagged, truly)
        rows.append(
            {
                "method": d.method,
                **scores,
                "detect_s": d.seconds,
                "oof_s": d.oof_seconds,
                "oof_from": d.oof_note,
            }
        )
    frame = pd.DataFrame(rows)

    print(
        f"{args.dataset} · target {args.target} ({target.code}: {', '.join(classes)}) · "
        f"channels {args.channels} {channels} · seed {args.seed} · k {args.k}"
    )
    print(
        f"{len(ids)} samples in the target, {len(truly)} with known truth, "
        f"{int(truly.sum())} truly mislabelled ({truly.mean():.1%})"
    )
    print(f"folds: shared - every method's out-of-fold probabilities come from {paths['folds']}")
    print(
        f"CleanLearning: {LR_DESCRIPTION}, on the {features_note(channels, data)}, "
        f"{args.threads} BLAS thread(s)"
    )
    if not_converged:
        print(f"  LR stopped at max_iter in {not_converged} of {args.k} fits")
    print(
        f"spectragrid's cells ({'+'.join(models)}) also see the tabular columns "
        f"{config['tabular']}; the LR sees spectra only"
    )
    print()
    header = (
        f"{'method':<48} {'flagged':>7} {'TP':>5} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'detect s':>8} {'OOF s':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in frame.itertuples(index=False):
        print(
            f"{r.method:<48} {r.n_flagged:>7} {r.true_positives:>5} {_fmt(r.precision):>9} "
            f"{_fmt(r.recall):>7} {_fmt(r.f1):>6} {_fmt(r.detect_s, '.3f'):>8} "
            f"{_fmt(r.oof_s, '.1f'):>7}"
        )
    print()
    print("OOF s: time to produce the out-of-fold probabilities each method used:")
    for r in frame.drop_duplicates("oof_from").itertuples(index=False):
        print(f"  {r.oof_from}: {_fmt(r.oof_s, '.1f')} s")
    print("  (the grid trains its raw cells anyway; CleanLearning's LR is extra work)")
    print()
    f1 = frame["f1"].to_numpy(dtype=float)
    if np.isnan(f1).all():
        print("best F1: none (no method flagged a sample with known truth)")
        return frame
    best = int(np.nanargmax(f1))
    print(f"best F1: {frame['method'][best]} ({f1[best]:.3f})")
    ours = f1[0]
    # nanargmax picks the first of equal scores, and spectragrid's default comes first
    if best != 0:
        print(
            f"spectragrid's default does NOT have the best F1 here: "
            f"{frame['method'][best]} {f1[best]:.3f} against {_fmt(ours)}"
        )
    return frame


def features_note(channels: list[str], data) -> str:
    lengths = [data.spectra[c].shape[1] for c in channels]
    return f"flattened spectra of {len(channels)} channel(s), {sum(lengths)} features"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=layout.RESULTS, help="the study's results folder")
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--truth", default=layout.demo_truth_file())
    parser.add_argument("--config", default="config/config.yaml", help="the study's config")
    parser.add_argument("--target", default="OVA_OK")
    parser.add_argument("--channels", default="all", help="a channel-set name of the config")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the LR fits")
    start = time.perf_counter()
    compare(parser.parse_args(argv))
    print(f"this script: {time.perf_counter() - start:.1f} s in all (imports not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
