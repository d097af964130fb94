"""A classical cell: features, the choice among candidates, test predictions, export, records.

It writes what a network's cell writes, to the same contract:
predictions.parquet (test-fold probabilities), metrics.json (test metrics,
ONNX parity, the config hash and, written last, the checksums of the other
outputs), card.json, history.csv (one row per candidate: its number as
`epoch`, its parameters and validation scores) and model.ckpt (the fitted
preprocessing and the head's arrays as tensors, loadable with
weights_only=True; no estimator is pickled). `best_epoch` is the number of
the candidate kept and `epochs_run` the number of candidates.

It imports neither Lightning nor the network code, and onnx and
onnxruntime only once the model is fitted.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

from spectragrid.core.atomic import atomic_path, write_atomic
from spectragrid.core.metrics import classification_metrics, per_class_accuracy
from spectragrid.train.architectures._common import ModelError
from spectragrid.train.classical.families import FAMILY_REGISTRY, Family
from spectragrid.train.classical.features import FeatureMap
from spectragrid.train.classical.heads import Head, head_arrays, head_settings
from spectragrid.train.classical.selection import Selection, candidate_grid, select
from spectragrid.train.fold_data import FoldData
from spectragrid.train.losses import class_weights
from spectragrid.train.output_checksums import MANIFEST_KEY, checksums
from spectragrid.train.preprocessing import build_preprocessing

log = logging.getLogger(__name__)


class CellDefinition(Protocol):
    """What a classical cell reads of spectragrid.train.cell.CellSpec."""

    arch: str
    channels: list[str]
    tabular: list[str]
    model_params: dict
    train: dict
    seed: int
    action: str | None
    label_patch: tuple[tuple[str, str], ...]

    @property
    def coordinates(self) -> dict: ...

    @property
    def config_hash(self) -> str: ...

    def display_name(self) -> str: ...

    def preprocessing_steps(self) -> list: ...


class CellFiles(Protocol):
    """spectragrid.train.cell.CellOutputs."""

    checkpoint: Path
    onnx: Path
    predictions: Path
    metrics: Path
    history: Path
    card: Path


def run_classical_cell(
    spec: CellDefinition, data: FoldData, out: CellFiles, threads: int, started: float
) -> dict:
    """Fit, choose, test and export one classical cell; returns its metrics."""
    family = FAMILY_REGISTRY[spec.arch]
    target = data.target
    y_fit = data.cleaned.labels
    _check_classes(spec, y_fit[data.train_rows], list(target.classes))

    n_channels, length = data.spectra.shape[1], data.spectra.shape[2]
    steps = spec.preprocessing_steps()
    try:
        features, x = _features(spec, data, family, data.train_rows)
    except ModelError as error:
        raise ModelError(f"model {spec.arch!r}: {error}") from None

    weights = _sample_weights(spec, data)
    with threadpool_limits(limits=max(1, threads)):
        selection = select(
            family,
            spec.model_params,
            (x[data.train_rows], y_fit[data.train_rows], weights),
            (x[data.val_rows], y_fit[data.val_rows]),
            target.n_classes,
            spec.train["monitor"],
            spec.seed,
            threads,
        )
        log.info("kept candidate %d %s", selection.chosen.number, selection.chosen.params)
        model, features, refit_seconds = selection.model, features, None
        if spec.train.get("refit", True):
            model, features, x, refit_seconds = _refit(spec, data, family, selection, threads)
        proba = model.predict_proba(x[data.test_rows]).astype(np.float32)
    head = model.head()

    _save_checkpoint(out.checkpoint, spec, data, features, head, selection, steps)
    display = spec.display_name()
    # onnx and onnxruntime only now: nothing before needs them.
    from spectragrid.train.classical.onnx_heads import export_classical
    from spectragrid.train.export import check_parity

    export_classical(
        features,
        head,
        out.onnx,
        n_channels,
        length,
        target.n_classes,
        {
            "classes": list(target.classes),
            "channels": list(spec.channels),
            "wavelengths": data.channel_wavelengths,
            "target": target.code,
            "tabular": list(spec.tabular),
            "display_name": display,
            "config_hash": spec.config_hash,
        },
    )
    test = data.test_rows
    parity = check_parity(out.onnx, data.spectra[test], data.tabular[test], proba)

    y_test = data.y_all[test]
    test_flagged = data.cleaned.flagged[test]
    _write_predictions(out.predictions, data, proba)
    _write_history(out.history, selection)
    metrics = {
        "cell": spec.coordinates,
        "display_name": display,
        "family": "classical",
        "arch": spec.arch,
        "target": target.as_dict(),
        "channels": list(spec.channels),
        "n_train": len(data.train_rows),
        "n_val": len(data.val_rows),
        "n_test": len(test),
        "label_action": spec.action if data.issues is not None else None,
        "n_removed_flagged": int((~data.cleaned.keep & data.in_target).sum()),
        "n_relabelled": int((data.cleaned.labels != data.y_all).sum()),
        "n_label_patched": len(spec.label_patch),
        "n_downweighted": int((data.cleaned.weights < 1).sum()),
        "n_spared_flagged": int(data.cleaned.spared.sum()),
        "best_epoch": selection.chosen.number,
        "epochs_run": len(selection.candidates),
        "chosen": selection.chosen.params,
        "refit_on_validation": refit_seconds is not None,
        "transforms": [],
        "test": classification_metrics(y_test, proba),
        "test_per_class": per_class_accuracy(y_test, proba, list(target.classes)),
        "test_unflagged": (
            classification_metrics(y_test[~test_flagged], proba[~test_flagged])
            if data.issues is not None
            else None
        ),
        "onnx_parity": parity,
        "config_hash": spec.config_hash,
    }
    n_train = len(data.train_rows)
    chosen = selection.chosen
    card = {
        "display_name": display,
        "family": "classical",
        "arch": spec.arch,
        "parameters": head.n_parameters(),
        "flops_per_sample": head.flops_per_sample(),
        "seconds_per_epoch": None,
        "train_samples_per_second": n_train / chosen.fit_seconds if chosen.fit_seconds else 0.0,
        "fit_seconds": chosen.fit_seconds,
        "selection_seconds": selection.fit_seconds,
        # the chosen candidate fitted again on the training and validation rows (train.refit)
        "refit_seconds": refit_seconds,
        "wall_seconds": time.perf_counter() - started,
        # scikit-learn fits on the CPU whatever the job was given
        "device": "cpu",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "device_index": None,
        "cuda_device_count": 0,
        "device_name": "cpu",
        "gpu_fallback": False,
        "threads": max(1, threads),
        "precision": "float64" if FAMILY_REGISTRY[spec.arch].float64 else "float32",
        "native": None,
        "resumed_after_epoch": None,
        # A network card's training-stop reason, transfer source, layer table and
        # FLOPs: a scikit-learn fit has none of them, and says so.
        "stopped": None,
        "budget": None,
        "pretrained": None,
        "input": None,
        "layers": None,
        "flops": None,
        "not_counted": None,
        "preprocessing": steps,
        "monitor": spec.train["monitor"],
        "chosen": chosen.params,
        "chosen_number": chosen.number,
        "candidates": [
            {
                "number": c.number,
                "params": c.params,
                **c.scores,
                "fit_seconds": c.fit_seconds,
                "warnings": c.warnings,
            }
            for c in selection.candidates
        ],
    }
    _write_json(out.card, card)
    # Written last, with the checksums of every other output: its readers check them.
    metrics[MANIFEST_KEY] = checksums(out.metrics.parent)
    _write_json(out.metrics, metrics)
    return metrics


def _check_classes(spec: CellDefinition, y_train: np.ndarray, classes: list[str]) -> None:
    """A fitted estimator knows only the classes it saw: every class needs a training row."""
    counts = np.bincount(y_train, minlength=len(classes))
    missing = [name for name, n in zip(classes, counts, strict=True) if n == 0]
    if missing:
        raise ModelError(
            f"model {spec.arch!r}: class(es) {missing} have no training row in this cell "
            "(after label cleaning); a classical model cannot predict a class it never saw"
        )


def _features(
    spec: CellDefinition, data: FoldData, family: Family, fit_rows: np.ndarray
) -> tuple[FeatureMap, np.ndarray]:
    """The preprocessing fitted on `fit_rows`, and the features of every row."""
    preprocessing = build_preprocessing(
        spec.preprocessing_steps(), data.spectra.shape[1], data.spectra.shape[2], data.wavelengths
    )
    features = FeatureMap(preprocessing, data.tabular.shape[1])
    features.fit(data.spectra[fit_rows], data.tabular[fit_rows])
    x = features.transform(data.spectra, data.tabular)
    return features, x.astype(np.float64) if family.float64 else x


def _refit(
    spec: CellDefinition, data: FoldData, family: Family, selection: Selection, threads: int
) -> tuple[Any, FeatureMap, np.ndarray, float]:
    """The chosen candidate fitted again, preprocessing included, on the training and
    validation rows together (scikit-learn's refit after a search): the validation fold
    has done its work once the candidate is chosen, and a third more rows make a
    stronger model and stronger out-of-fold evidence for the label issues. The test
    fold stays out. Returns the model, its features and every row's features."""
    rows = np.concatenate([data.train_rows, data.val_rows])
    features, x = _features(spec, data, family, rows)
    candidate = candidate_grid(spec.model_params, family.tuned)[selection.chosen.number - 1]
    model = family.make(candidate, spec.seed, threads)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each candidate's warnings are on the card already
        model.fit(x[rows], data.cleaned.labels[rows], _sample_weights(spec, data, rows))
    seconds = time.perf_counter() - started
    log.info("refitted on %d training and validation rows (%.2f s)", len(rows), seconds)
    return model, features, x, seconds


def _sample_weights(
    spec: CellDefinition, data: FoldData, rows: np.ndarray | None = None
) -> np.ndarray | None:
    """Per row of `rows` (default: the training rows): the clean cell's weight times its
    class weight; None when all 1."""
    rows = data.train_rows if rows is None else rows
    y = data.cleaned.labels[rows]
    weights = data.cleaned.weights[rows].astype(np.float64)
    per_class = class_weights(
        spec.train["class_weights"], np.bincount(y, minlength=data.target.n_classes)
    )
    if per_class is not None:
        weights = weights * per_class[y]
    return None if np.all(weights == 1.0) else weights


def _save_checkpoint(
    path: Path,
    spec: CellDefinition,
    data: FoldData,
    features: FeatureMap,
    head: Head,
    selection: Selection,
    steps: list,
) -> None:
    state = {key: value.detach().clone() for key, value in features.state_dict().items()}
    state.update({f"head.{k}": torch.from_numpy(np.array(v)) for k, v in head_arrays(head).items()})
    payload: dict[str, Any] = {
        "state_dict": state,
        "head": head_settings(head),
        "classes": list(data.target.classes),
        "channels": list(spec.channels),
        "arch": spec.arch,
        "model_params": spec.model_params,
        "preprocessing": steps,
        "chosen": selection.chosen.params,
        "n_tabular": int(data.tabular.shape[1]),
        "best_epoch": selection.chosen.number,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _write_predictions(path: Path, data: FoldData, proba: np.ndarray) -> None:
    rows = data.test_rows
    y = data.y_all[rows]
    predictions = pd.DataFrame(
        {
            "sample_id": data.table["sample_id"].to_numpy()[rows],
            "full_truth": data.table["full_truth"].to_numpy()[rows],
            "label": np.asarray(data.target.classes, dtype=object)[y],
            "label_index": y,
            "pred_index": proba.argmax(axis=1),
            "flagged": data.cleaned.flagged[rows],
        }
    )
    for i, name in enumerate(data.target.classes):
        predictions[f"prob_{name}"] = proba[:, i]
    with atomic_path(path) as tmp:
        predictions.to_parquet(tmp, index=False)


def _write_history(path: Path, selection: Selection) -> None:
    """One row per candidate, as a network's history has one per epoch."""
    rows = [
        {
            "epoch": c.number,
            "candidate": json.dumps(c.params, sort_keys=True),
            **c.scores,
            "fit_seconds": c.fit_seconds,
        }
        for c in selection.candidates
    ]
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def _write_json(path: Path, payload: dict) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
