"""Label-issue detection of a finished study against simpler routes and strong peers,
scored on the truth.

Run after `snakemake` on a dataset that has a truth file (the demo has). On
each (target, channel set) asked for (seed and k of the study), every
detection is scored against the samples whose given target class differs
from their true one:

1. spectragrid: the study's own `issues.csv` (cleanlab on the out-of-fold
   probabilities of the grid's raw cells, the evidence chosen by
   `label_issues.models`, `.channel_sets` and `.combine`: `evidence.json`);
2. "prediction differs from the label": argmax of the same out-of-fold
   probabilities (`oof.parquet`) != given label;
3. cleanlab's `CleanLearning` around four scikit-learn models on the
   flattened spectra of the channel set and the tabular columns: a logistic
   regression at C=1 (the quick route), one with C chosen by an inner CV on
   the noisy labels, an RBF SVC and a random forest. Their out-of-fold
   probabilities come from the study's own folds
   (`splits/s<seed>_k<k>.parquet`), so every method sees the same partition.

Printed per pair: one table (flagged, true positives, precision, recall, F1,
seconds) and which method has the best F1, said plainly when it is not
spectragrid's. Seconds: the detection itself, measured here, and the cost of
the out-of-fold probabilities it used (the study's raw cells from their model
cards; the peers' fits, measured here on `--threads` BLAS threads).

From the repository root, after `snakemake` (defaults: the default study):

    python benchmarks/label_detection.py --results results --dataset demo \
        --truth resources/demo/truth.csv --target OVA_OK AVA_IN --channels all ex277 \
        --seed 0 --k 5
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
LR_CS = (0.0001, 0.001, 0.01, 0.1, 1.0, 10.0)


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
        "evidence": issues_dir / layout.ISSUES_FILES["evidence"],
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


def evidence_sources(evidence: dict, channels: str) -> list[tuple[str, str]]:
    """The (model, channel set) of every source the label-issues job weighed: a source on
    the job's own channel set is named by its model alone, others `model/channels`."""
    sources = []
    for name in evidence["log_loss"]:
        model, _, other = name.partition("/")
        sources.append((model, other or channels))
    return sources


def training_seconds(
    results: Path, dataset: str, target: str, sources: list[tuple[str, str]], seed: int, k: int
) -> float:
    """Wall time of the raw cells whose test folds made the evidence (their model cards):
    every source weighed, since choosing the best needs them all."""
    total = 0.0
    for model, channels in sources:
        for fold in range(k):
            cell = layout.cell_dir(dataset, "raw", target, channels, model, seed, fold, k)
            card = in_results(results, cell) / layout.CELL_FILES["card"]
            if not card.exists():
                return math.nan
            total += float(json.loads(card.read_text()).get("wall_seconds", math.nan))
    return total


def spectragrid_default(
    paths: dict, classes: list[str], issues_cfg: dict, train_s: float, evidence: dict
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
    used = "+".join(evidence["used"])
    return Detection(
        f"spectragrid ({evidence['combine']}: {used}, {issues_cfg['filter_by']})",
        flagged,
        seconds,
        train_s,
        f"K raw cells of {', '.join(evidence['log_loss'])} in the study (model cards)",
    )


def argmax_differs(paths: dict, classes: list[str], train_s: float) -> Detection:
    oof = pd.read_parquet(paths["oof"])
    start = time.perf_counter()
    proba = oof[prob_columns(classes)].to_numpy()
    differs = proba.argmax(axis=1) != oof["label_index"].to_numpy()
    flagged = set(oof["sample_id"].astype(str).to_numpy()[differs])
    seconds = time.perf_counter() - start
    return Detection("argmax(OOF) != label", flagged, seconds, train_s, "same OOF as spectragrid")


def _peer_models(seed: int, threads: int) -> dict[str, tuple[str, object]]:
    """The scikit-learn models CleanLearning wraps: name -> (description, estimator)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return {
        "LR(C=1)": (
            "StandardScaler + LogisticRegression(max_iter=1000), other settings default",
            make_pipeline(StandardScaler(), LogisticRegression(**LR_SETTINGS)),
        ),
        # C chosen by an inner 3-fold CV on the training folds' (noisy) labels, by log-loss:
        # the tuning a user would do, on the labels a user has.
        "LR(C tuned)": (
            f"StandardScaler + LogisticRegressionCV(Cs={list(LR_CS)}, inner 3-fold CV on the "
            "noisy labels, log-loss)",
            make_pipeline(
                StandardScaler(),
                LogisticRegressionCV(Cs=list(LR_CS), cv=3, scoring="neg_log_loss", max_iter=1000),
            ),
        ),
        "RBF SVC": (
            "StandardScaler + SVC(kernel='rbf', probability=True), other settings default",
            make_pipeline(StandardScaler(), SVC(probability=True, random_state=seed)),
        ),
        "random forest": (
            "RandomForestClassifier(), settings default (100 trees)",
            RandomForestClassifier(random_state=seed, n_jobs=threads),
        ),
    }


def clean_learning_peers(
    features: np.ndarray,
    labels: np.ndarray,
    folds: np.ndarray,
    ids: np.ndarray,
    k: int,
    seed: int,
    threads: int = 1,
) -> tuple[list[Detection], dict[str, int]]:
    """CleanLearning around each peer model, on out-of-fold probabilities over the study's
    folds; also returns, per model, how many fits stopped at max_iter."""
    from cleanlab.classification import CleanLearning
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import PredefinedSplit, cross_val_predict
    from threadpoolctl import threadpool_limits

    detections, not_converged = [], {}
    for name, (description, model) in _peer_models(seed, threads).items():
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
        not_converged[name] = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        start = time.perf_counter()
        found = CleanLearning(model, cv_n_folds=k, seed=seed).find_label_issues(
            labels=labels, pred_probs=proba
        )
        seconds = time.perf_counter() - start
        detections.append(
            Detection(
                f"CleanLearning({name})",
                set(ids[found["is_label_issue"].to_numpy(dtype=bool)]),
                seconds,
                oof_seconds,
                f"{description}: cross_val_predict on the study's {k} folds, in this script",
            )
        )
    return detections, not_converged


def _fmt(value: float, spec: str = ".3f") -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def compare(args: argparse.Namespace) -> pd.DataFrame:
    """Every (target, channel set) asked for, one table each; returns all rows."""
    config = validate(yaml.safe_load(Path(args.config).read_text()))
    for name in args.target:
        if name not in config["targets"]:
            raise SystemExit(
                f"--target {name!r} is not in {args.config}: {list(config['targets'])}"
            )
    for name in args.channels:
        if name not in config["channel_sets"]:
            raise SystemExit(
                f"--channels {name!r} is not in {args.config}: {list(config['channel_sets'])}"
            )
    frames = [
        compare_one(args, config, target, channels)
        for target in args.target
        for channels in args.channels
    ]
    return pd.concat(frames, ignore_index=True)


def compare_one(args: argparse.Namespace, config: dict, target_name: str, set_name: str):
    ds = config["dataset"]
    results = Path(args.results)
    paths = study_paths(results, args.dataset, target_name, set_name, args.seed, args.k)
    channels = [str(c) for c in config["channel_sets"][set_name]]
    evidence = json.loads(paths["evidence"].read_text())
    sources = evidence_sources(evidence, set_name)

    data = read_clean(paths["clean"], channels)
    table = data.table
    target = resolve(target_name, config["targets"][target_name], table)
    classes = list(target.classes)
    labels_all = target.encode(table["full_truth"])
    in_target = labels_all >= 0
    ids = table["sample_id"].astype(str).to_numpy()[in_target]
    labels = labels_all[in_target]
    folds = read_folds(paths["folds"], table["sample_id"])[in_target]
    # The peers see what the grid's cells see: the spectra and the tabular columns.
    tabular = [c for c in config["tabular"] if c in table]
    features = np.concatenate(
        [
            data.stack(channels)[in_target].reshape(int(in_target.sum()), -1),
            table[tabular].to_numpy(dtype=np.float64)[in_target],
        ],
        axis=1,
    ).astype(np.float64)

    truth = read_truth(Path(args.truth), ds["columns"], ds["label_map"])
    given = pd.Series(table["full_truth"].astype(str).to_numpy()[in_target], index=ids)
    true = pd.Series(truth["full_truth"].to_numpy(), index=truth["sample_id"].astype(str))
    truly = truly_mislabelled(given, true, target)

    train_s = training_seconds(results, args.dataset, target_name, sources, args.seed, args.k)
    detections = [
        spectragrid_default(paths, classes, config["label_issues"], train_s, evidence),
        argmax_differs(paths, classes, train_s),
    ]
    peers, not_converged = clean_learning_peers(
        features, labels, folds, ids, args.k, args.seed, args.threads
    )
    detections += peers

    rows = []
    for d in detections:
        scores = detection_scores(d.flagged, truly)
        rows.append(
            {
                "target": target_name,
                "channels": set_name,
                "method": d.method,
                **scores,
                "detect_s": d.seconds,
                "oof_s": d.oof_seconds,
                "oof_from": d.oof_note,
            }
        )
    frame = pd.DataFrame(rows)

    print(
        f"{args.dataset} · target {target_name} ({target.code}: {', '.join(classes)}) · "
        f"channels {set_name} {channels} · seed {args.seed} · k {args.k}"
    )
    print(
        f"{len(ids)} samples in the target, {len(truly)} with known truth, "
        f"{int(truly.sum())} truly mislabelled ({truly.mean():.1%})"
    )
    print(f"folds: shared - every method's out-of-fold probabilities come from {paths['folds']}")
    print(
        "spectragrid's evidence: out-of-fold log-loss on the given labels of each source "
        + ", ".join(f"{m} {v:.3f}" for m, v in evidence["log_loss"].items())
        + f"; used ({evidence['combine']}): {', '.join(evidence['used'])}"
    )
    print(
        f"CleanLearning peers see the {features_note(channels, data)} and the tabular "
        f"columns {tabular}; {args.threads} BLAS thread(s)"
    )
    for name, count in not_converged.items():
        if count:
            print(f"  {name} stopped at max_iter in {count} fit(s)")
    print()
    header = (
        f"{'method':<58} {'flagged':>7} {'TP':>5} {'precision':>9} {'recall':>7} {'F1':>6} "
        f"{'detect s':>8} {'OOF s':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in frame.itertuples(index=False):
        print(
            f"{r.method:<58} {r.n_flagged:>7} {r.true_positives:>5} {_fmt(r.precision):>9} "
            f"{_fmt(r.recall):>7} {_fmt(r.f1):>6} {_fmt(r.detect_s, '.3f'):>8} "
            f"{_fmt(r.oof_s, '.1f'):>7}"
        )
    print()
    print("OOF s: time to produce the out-of-fold probabilities each method used:")
    for r in frame.drop_duplicates("oof_from").itertuples(index=False):
        print(f"  {r.oof_from}: {_fmt(r.oof_s, '.1f')} s")
    print("  (the grid trains its raw cells anyway; the peers' fits are extra work)")
    print()
    f1 = frame["f1"].to_numpy(dtype=float)
    if np.isnan(f1).all():
        print("best F1: none (no method flagged a sample with known truth)\n")
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
    print()
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
    parser.add_argument("--target", nargs="+", default=["OVA_OK"], help="target name(s)")
    parser.add_argument(
        "--channels", nargs="+", default=["all"], help="channel-set name(s) of the config"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of the LR fits")
    start = time.perf_counter()
    compare(parser.parse_args(argv))
    print(f"this script: {time.perf_counter() - start:.1f} s in all (imports not counted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
