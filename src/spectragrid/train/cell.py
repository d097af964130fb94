"""One grid cell: data of one fold, training, test predictions, export, records."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

import spectragrid
from spectragrid.core.atomic import atomic_path, write_atomic
from spectragrid.core.config import complete_model, config_hash
from spectragrid.core.metrics import classification_metrics, per_class_accuracy
from spectragrid.data.clean_file import common_axis, read_clean
from spectragrid.data.label_patch import apply_label_patch
from spectragrid.data.splits import FoldParts, read_fold_parts
from spectragrid.data.targets import Target, check_class_sizes, display_code, resolve
from spectragrid.train.augment import Augment
from spectragrid.train.batches import Arrays
from spectragrid.train.cell_lock import cell_lock
from spectragrid.train.classical import is_classical
from spectragrid.train.image_augment import ImageAugment
from spectragrid.train.image_models import is_image_arch
from spectragrid.train.label_action import (
    CleanedLabels,
    IssuesSource,
    apply_action,
    issues_source,
)
from spectragrid.train.model_card import layer_table
from spectragrid.train.models import build_model, count_parameters, flops_per_sample
from spectragrid.train.output_checksums import (
    MANIFEST_KEY,
    CorruptOutputError,
    checksums,
    verify_cell,
)
from spectragrid.train.predict import predict_proba
from spectragrid.train.settings import TrainSettings

if TYPE_CHECKING:
    from spectragrid.train.loop import FitResult


@dataclass(frozen=True)
class CellSpec:
    """Everything that defines one cell. `model_params`, `train` and `transforms`
    are complete (the schema's defaults filled in, as the workflow's validated
    config and spectragrid.core.config.complete_model give them)."""

    dataset: str
    labels: str  # "raw" or "clean"
    target: str
    target_spec: str | dict
    channels_name: str
    channels: list[str]
    model: str
    arch: str
    model_params: dict
    train: dict
    tabular: list[str]
    seed: int
    fold: int
    k: int
    transforms: dict
    # what a clean cell does with flagged samples, and their weight under
    # `downweight`; None for a raw cell
    action: str | None
    downweight: float | None
    # reviewed labels that change this cell's target: [sample id, full truth] pairs
    label_patch: tuple[tuple[str, str], ...] = ()
    # the model's preprocessing steps (models.<name>.preprocessing); None: the
    # schema's default for `arch`
    preprocessing: list | None = None
    # the weights file the model starts from (models.<name>.pretrained), and its
    # budgets (models.<name>.budget: max_parameters, max_train_seconds)
    pretrained: str | None = None
    budget: dict | None = None

    @property
    def coordinates(self) -> dict:
        return {
            "dataset": self.dataset,
            "labels": self.labels,
            "target": self.target,
            "channels": self.channels_name,
            "model": self.model,
            "seed": self.seed,
            "fold": self.fold,
            "k": self.k,
        }

    @property
    def target_display(self) -> str:
        if isinstance(self.target_spec, str):
            return display_code(self.target_spec)
        return repr([self.target])

    def augment(self) -> Augment | ImageAugment:
        if is_image_arch(self.arch):
            return ImageAugment(self.transforms)
        return Augment(self.transforms, self.channels)

    def display_name(self) -> str:
        """The name users search for, e.g. `cnn y=['OVA', 'OK'] c=('277',) t=() 0-5 s=0 eps=0.1`
        (no `eps` for a classical model, which has no label smoothing)."""
        name = (
            f"{self.model} y={self.target_display} c={tuple(self.channels)!r} "
            f"t={self.augment().names!r} {self.fold}-{self.k} s={self.seed}"
        )
        return name + (f" eps={float(self.train['eps'])}" if "eps" in self.train else "")

    def preprocessing_steps(self) -> list:
        """The spectral preprocessing, in order."""
        if self.preprocessing is not None:
            return list(self.preprocessing)
        return complete_model({"arch": self.arch})["preprocessing"]

    @property
    def config_hash(self) -> str:
        """Hash of everything that defines this cell's model (stored in its ONNX file)."""
        content = {
            "cell": self.coordinates,
            "target": self.target_spec,
            "channels": self.channels,
            "arch": self.arch,
            "model_params": self.model_params,
            "train": self.train,
            "tabular": self.tabular,
            "transforms": self.transforms,
            "preprocessing": self.preprocessing_steps(),
            "action": self.action if self.labels == "clean" else None,
            "downweight": self.downweight if self.labels == "clean" else None,
        }
        if self.label_patch:
            content["label_patch"] = [list(pair) for pair in self.label_patch]
        # Only when set, so that the cells of models without them keep their hashes.
        if self.pretrained is not None:
            content["pretrained"] = self.pretrained
        if any(v is not None for v in (self.budget or {}).values()):
            content["budget"] = self.budget
        return config_hash(content)


@dataclass(frozen=True)
class CellOutputs:
    checkpoint: Path
    onnx: Path
    predictions: Path
    metrics: Path
    history: Path
    card: Path


def _write_json(path: Path, payload: dict) -> None:
    write_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def resume_key(spec: CellSpec, inputs: list[Path]) -> str:
    """What a saved training state must match to be resumed.

    The cell's whole definition in the order the workflow gives it (a
    reordered class list is another model, so no key sorting here), and the
    size and modification time of each input: a cleaning or split edit that
    rewrote clean.parquet or the folds makes an older state stale.
    """
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in inputs]
    content = {
        "spec": dataclasses.asdict(spec),
        "inputs": stats,
        "versions": [spectragrid.__version__, torch.__version__],
    }
    return hashlib.sha256(json.dumps(content, default=str).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _read_clean_cached(path: Path, channels: tuple[str, ...], stat: tuple[int, int]):
    return read_clean(path, list(channels))


def _read_clean_once(path: Path, channels: tuple[str, ...]):
    """read_clean, once for the folds of a job that train on the same file and channels
    (the file's size and time are part of the key: a rewritten file is read again)."""
    info = path.stat()
    return _read_clean_cached(path, channels, (info.st_size, info.st_mtime_ns))


def _arrays(
    spectra: np.ndarray,
    tabular: np.ndarray,
    labels: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray | None = None,
) -> Arrays:
    """One part of the cell: the whole spectra tensor and the part's `rows` into it
    (batches gather their rows: copying each part would double a 300k cell's memory)."""
    import warnings

    weights = None if weights is None else weights[rows]
    with warnings.catch_warnings():
        # The clean file's array is read-only and shared by the folds of a job;
        # torch only reads it here, batches being gathered into new tensors.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        source = torch.from_numpy(spectra)
    return Arrays(
        spectra=source,
        tabular=torch.from_numpy(np.ascontiguousarray(tabular[rows])),
        labels=torch.from_numpy(labels[rows]),
        # weights that are all 1 are left out, which the loss then skips
        weights=None if weights is None or (weights == 1).all() else torch.from_numpy(weights),
        rows=torch.from_numpy(np.asarray(rows, dtype=np.int64)),
    )


def _cleaned(
    spec: CellSpec,
    issues: IssuesSource | None,
    sample_ids: pd.Series,
    labels: np.ndarray,
    classes: list[str],
    editable: np.ndarray,
) -> CleanedLabels:
    """The labels, kept rows and weights a cell trains on: a clean cell acts on
    its flagged samples, a raw cell keeps every row as it is."""
    if issues is None:
        rows = len(labels)
        return CleanedLabels(
            labels=labels.copy(),
            keep=np.ones(rows, dtype=bool),
            weights=np.ones(rows, dtype=np.float32),
            flagged=np.zeros(rows, dtype=bool),
            spared=np.zeros(rows, dtype=bool),
        )
    if spec.action is None or spec.downweight is None:
        raise ValueError(f"{spec.display_name()}: a clean cell needs its action and downweight")
    # Imported here: a raw cell reads no issues.
    from spectragrid.train.own_model_veto import read_acted_issues

    return apply_action(
        spec.action,
        read_acted_issues(issues),
        sample_ids,
        labels,
        classes,
        editable=editable,
        weight=spec.downweight,
    )


def run_cell(
    spec: CellSpec,
    clean_path: Path,
    folds_path: Path,
    issues: IssuesSource | Path | None,
    out: CellOutputs,
    threads: int = 1,
    resume_path: Path | None = None,
    curves_dir: Path | None = None,
    lock_path: Path | None = None,
    keep_resume_state: bool = False,
    train_cell: Callable[..., dict] | None = None,
) -> dict:
    """Train, test and export one cell, holding `lock_path` (see cell_lock) meanwhile.

    A cell whose outputs are already complete, checked against their
    checksums and made from this very definition (another process trained it
    while this one waited for the lock) is kept as it is.

    With `resume_path`, training state is saved there at the end of epochs (it
    is no output: Snakemake deletes the outputs of a failed job), a state
    left by an interrupted run of this same cell is resumed, and the file is
    removed once every output is written (with `keep_resume_state`, left for
    the caller to remove: a job of several cells keeps each finished cell's
    state until the whole job has ended, see train.fold_group). With `curves_dir`
    (core.layout.curves_dir), the per-epoch curves are logged there as training
    goes. `train_cell` trains instead of the spectra/classical path (same
    arguments as _run_cell): train.image_cell.run_image_cell for images.
    `issues` (a clean cell's): the issues file alone, or its IssuesSource with the
    own model's raw predictions for the veto.
    """
    with cell_lock(lock_path):
        if lock_path is not None and (done := _finished(spec, out)) is not None:
            return done
        metrics = (train_cell or _run_cell)(
            spec,
            clean_path,
            folds_path,
            issues_source(issues),
            out,
            threads,
            resume_path,
            curves_dir,
        )
        if resume_path is not None and not keep_resume_state:
            Path(resume_path).unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                Path(resume_path).parent.rmdir()
        return metrics


def _finished(spec: CellSpec, out: CellOutputs) -> dict | None:
    """The metrics of this cell's outputs if they are complete and made from `spec`."""
    try:
        metrics = verify_cell(out.metrics.parent)
    except CorruptOutputError:
        return None
    return metrics if metrics.get("config_hash") == spec.config_hash else None


def _run_cell(
    spec: CellSpec,
    clean_path: Path,
    folds_path: Path,
    issues: IssuesSource | None,
    out: CellOutputs,
    threads: int,
    resume_path: Path | None,
    curves_dir: Path | None,
) -> dict:
    if is_image_arch(spec.arch):
        # Images take their own reader, model and export: train.image_cell, which
        # builds on this module; run_cell's caller passes it as `train_cell`.
        raise ValueError(
            f"{spec.display_name()}: an image cell is trained by train.image_cell.run_image_cell"
        )
    started = time.perf_counter()
    torch.set_num_threads(max(1, threads))
    data = _read_clean_once(Path(clean_path), tuple(spec.channels))
    table, target, y_all, parts, in_target, cleaned = cell_labels(
        spec, data.table, folds_path, issues
    )
    flagged = cleaned.flagged
    y_fit = cleaned.labels
    train_rows = np.flatnonzero(parts.train & in_target & cleaned.keep)
    val_rows = np.flatnonzero(parts.val & in_target & cleaned.keep)
    test_rows = np.flatnonzero(parts.test & in_target)

    spectra = data.stack(spec.channels)
    tabular = (
        table[spec.tabular].to_numpy(dtype=np.float32)
        if spec.tabular
        else np.zeros((len(table), 0), dtype=np.float32)
    )
    n_channels, length = spectra.shape[1], spectra.shape[2]
    axis, _ = common_axis({c: data.wavelengths[c] for c in spec.channels})
    if is_classical(spec.arch):
        # Classical families are fitted in their own modules, which import neither
        # Lightning nor the network code.
        from spectragrid.train.classical.cell import run_classical_cell
        from spectragrid.train.fold_data import FoldData

        rows = FoldData(
            table=table[["sample_id", "full_truth"]],
            target=target,
            y_all=y_all,
            cleaned=cleaned,
            train_rows=train_rows,
            val_rows=val_rows,
            test_rows=test_rows,
            spectra=spectra,
            tabular=tabular,
            wavelengths=axis,
            channel_wavelengths=[data.wavelengths[c].tolist() for c in spec.channels],
            issues=issues,
        )
        return run_classical_cell(spec, rows, out, threads, started)
    # Imported here: a classical cell needs none of them (Lightning takes seconds).
    from spectragrid.train.export import check_parity, export_onnx

    settings = TrainSettings.from_config(spec.train)
    budget = spec.budget or {}
    torch.manual_seed(spec.seed)
    model = build_model(
        spec.arch,
        spec.model_params,
        n_channels,
        length,
        tabular.shape[1],
        target.n_classes,
        preprocessing=spec.preprocessing_steps(),
        wavelengths=axis,
        pretrained=spec.pretrained,
        name=spec.model,
        max_parameters=budget.get("max_parameters"),
    )
    # fitted chunk by chunk on the training rows: no copy of them beside the data set
    model.fit_scaling(spectra, tabular, rows=train_rows)

    result, test = fit_network(
        model,
        spectra,
        tabular,
        y_fit,
        cleaned.weights,
        y_all,
        (train_rows, val_rows, test_rows),
        spec,
        settings,
        target.n_classes,
        [Path(clean_path), Path(folds_path)] + (issues.files if issues else []),
        resume_path,
        curves_dir,
    )
    model = result.model.to("cpu")

    proba = predict_proba(model, test)
    y_test = y_all[test_rows]
    test_flagged = flagged[test_rows]

    # Saved to memory first: torch names the archive's folder after the file it writes,
    # and the temporary name holds the process id, so the bytes would differ per run.
    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "classes": list(target.classes),
            "channels": list(spec.channels),
            "arch": spec.arch,
            "model_params": spec.model_params,
            "preprocessing": spec.preprocessing_steps(),
            "n_tabular": int(tabular.shape[1]),
            "best_epoch": int(result.best_epoch),
        },
        buffer,
    )
    write_atomic(out.checkpoint, buffer.getvalue())

    display = spec.display_name()
    export_onnx(
        model,
        out.onnx,
        n_channels,
        length,
        int(tabular.shape[1]),
        {
            "classes": list(target.classes),
            "channels": list(spec.channels),
            "wavelengths": [data.wavelengths[c].tolist() for c in spec.channels],
            "target": target.code,
            "tabular": list(spec.tabular),
            "display_name": display,
            "config_hash": spec.config_hash,
        },
    )
    # the test rows gathered batch by batch, as for the predictions above
    parity = check_parity(
        out.onnx, spectra, test.tabular.numpy(), proba.astype(np.float32), rows=test_rows
    )

    write_test_outputs(out, table, target, test_rows, y_test, proba, test_flagged, result.history)
    metrics = network_metrics(
        spec,
        display,
        target,
        (train_rows, val_rows, test_rows),
        cleaned,
        in_target,
        y_all,
        result,
        proba,
        test_flagged,
        parity,
        cleaning_applied=issues is not None,
    )

    table = layer_table(
        model, (torch.zeros(1, n_channels, length), torch.zeros(1, tabular.shape[1]))
    )
    epoch_seconds = float(np.mean(result.epoch_seconds)) if result.epoch_seconds else 0.0
    # Throughput of the optimizer steps alone: an epoch's time includes its validation.
    step_seconds = float(np.mean(result.step_seconds)) if result.step_seconds else 0.0
    card = {
        "display_name": display,
        "parameters": count_parameters(model),
        "flops_per_sample": flops_per_sample(model, n_channels, length),
        "seconds_per_epoch": epoch_seconds,
        "train_samples_per_second": len(train_rows) / step_seconds if step_seconds else 0.0,
        "wall_seconds": time.perf_counter() - started,
        **training_record(result, model, budget),
        # The layer table (Xn, Fn, Wn) and FLOPs by kind, per sample.
        **{key: table[key] for key in ("input", "layers", "flops", "not_counted")},
    }
    _write_json(out.card, card)
    # Written last, with the checksums of every other output: its readers check them.
    metrics[MANIFEST_KEY] = checksums(out.metrics.parent)
    _write_json(out.metrics, metrics)
    return metrics


def write_test_outputs(
    out: CellOutputs,
    table: pd.DataFrame,
    target: Target,
    test_rows: np.ndarray,
    y_test: np.ndarray,
    proba: np.ndarray,
    test_flagged: np.ndarray,
    history: list[dict] | dict,
) -> None:
    """predictions.parquet (one row per test sample, a prob_<class> column per class)
    and history.csv of a network cell, spectra or images."""
    predictions = pd.DataFrame(
        {
            "sample_id": table["sample_id"].to_numpy()[test_rows],
            "full_truth": table["full_truth"].to_numpy()[test_rows],
            "label": np.asarray(target.classes, dtype=object)[y_test],
            "label_index": y_test,
            "pred_index": proba.argmax(axis=1),
            "flagged": test_flagged,
        }
    )
    for i, name in enumerate(target.classes):
        predictions[f"prob_{name}"] = proba[:, i]
    with atomic_path(out.predictions) as tmp:
        predictions.to_parquet(tmp, index=False)
    with atomic_path(out.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


def network_metrics(
    spec: CellSpec,
    display: str,
    target: Target,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    cleaned: CleanedLabels,
    in_target: np.ndarray,
    y_all: np.ndarray,
    result: FitResult,
    proba: np.ndarray,
    test_flagged: np.ndarray,
    parity: dict,
    *,
    cleaning_applied: bool,
) -> dict:
    """metrics.json of a network cell (before its output checksums): the parts' sizes,
    what label cleaning did, the training's course and the test fold's scores."""
    train_rows, val_rows, test_rows = rows
    y_test = y_all[test_rows]
    return {
        "cell": spec.coordinates,
        "display_name": display,
        "family": "network",
        "arch": spec.arch,
        "target": target.as_dict(),
        "channels": list(spec.channels),
        "n_train": len(train_rows),
        "n_val": len(val_rows),
        "n_test": len(test_rows),
        "label_action": spec.action if cleaning_applied else None,
        "n_removed_flagged": int((~cleaned.keep & in_target).sum()),
        "n_relabelled": int((cleaned.labels != y_all).sum()),
        "n_label_patched": len(spec.label_patch),
        "n_downweighted": int((cleaned.weights < 1).sum()),
        "n_spared_flagged": int(cleaned.spared.sum()),
        "best_epoch": int(result.best_epoch),
        "epochs_run": len(result.epoch_seconds),
        "transforms": list(spec.augment().names),
        "test": classification_metrics(y_test, proba),
        "test_per_class": per_class_accuracy(y_test, proba, list(target.classes)),
        "test_unflagged": (
            classification_metrics(y_test[~test_flagged], proba[~test_flagged])
            if cleaning_applied
            else None
        ),
        "onnx_parity": parity,
        "config_hash": spec.config_hash,
    }


def fit_network(
    model: torch.nn.Module,
    inputs: np.ndarray,
    tabular: np.ndarray,
    y_fit: np.ndarray,
    weights: np.ndarray,
    y_all: np.ndarray,
    rows: tuple[np.ndarray, np.ndarray, np.ndarray],
    spec: CellSpec,
    settings: TrainSettings,
    n_classes: int,
    input_files: list[Path],
    resume_path: Path | None,
    curves_dir: Path | None,
) -> tuple[FitResult, Arrays]:
    """Train a network cell on its training rows (labels `y_fit`, as cleaning left them),
    stopping on its validation rows, resumable from `resume_path`; returns the fit and
    the test rows' arrays (labels `y_all`: test folds are never cleaned)."""
    from spectragrid.train.loop import fit
    from spectragrid.train.resume import Resume

    train_rows, val_rows, test_rows = rows
    train = _arrays(inputs, tabular, y_fit, train_rows, weights)
    val = _arrays(inputs, tabular, y_fit, val_rows, weights)
    test = _arrays(inputs, tabular, y_all, test_rows)
    resume = Resume(Path(resume_path), resume_key(spec, input_files)) if resume_path else None
    result = fit(
        model,
        train,
        val,
        settings,
        n_classes,
        spec.seed,
        spec.augment(),
        resume,
        Path(curves_dir) if curves_dir is not None else None,
        max_train_seconds=(spec.budget or {}).get("max_train_seconds"),
    )
    return result, test


def training_record(result: FitResult, model: torch.nn.Module, budget: dict) -> dict:
    """The card's account of how a network cell trained: where, on how many threads, in
    which precision, on which kernels, resumed or not, why it stopped, from what."""
    from spectragrid.train.devices import device_report

    transfer = getattr(model, "transfer", None)
    return {
        **device_report(result.device),
        "threads": torch.get_num_threads(),
        "precision": result.precision,
        # Which path trained the first stage and the pool-ReLU pairs: the C
        # kernels or the PyTorch layers (the same numbers up to float32 rounding).
        "native": result.native,
        # Epochs an interrupted run had completed before this one resumed it.
        "resumed_after_epoch": result.resumed_from,
        # Why training ended: epochs, patience, diverged or time_budget.
        "stopped": result.stopped,
        "budget": budget,
        "pretrained": transfer.as_dict() if transfer is not None else None,
    }


def cell_labels(
    spec: CellSpec, table: pd.DataFrame, folds_path: Path, issues: IssuesSource | None
) -> tuple[pd.DataFrame, Target, np.ndarray, FoldParts, np.ndarray, CleanedLabels]:
    """A network cell's rows and labels: the reviewed labels applied, the target's class
    of each row (-1 outside it), the fold's parts and what label cleaning leaves."""
    table = apply_label_patch(table, list(spec.label_patch))
    target = resolve(spec.target, spec.target_spec, table)
    y_all = target.encode(table["full_truth"])
    check_class_sizes(target, y_all, spec.k)
    parts = read_fold_parts(folds_path, table["sample_id"], spec.fold, spec.k)
    in_target = y_all >= 0
    # Cleaning touches training and validation rows only: the test fold stays
    # exactly the raw cell's test fold, so raw and clean compare like for like.
    cleaned = _cleaned(
        spec,
        issues,
        table["sample_id"],
        y_all,
        list(target.classes),
        editable=(parts.train | parts.val) & in_target,
    )
    return table, target, y_all, parts, in_target, cleaned
