"""One grid cell of an image family: the image counterpart of spectragrid.train.cell.

Same fold, targets, label cleaning, training loop, outputs and records as a
spectral cell; what differs is the data (uint8 (N, C, H, W) images of the
channel set's bands, no tabular columns: a (B, 0) tensor), the model
(spectragrid.train.image_models), the augmentation (train.image_augment)
and the ONNX file, which takes uint8 HWC images (train.image_export).
"""

from __future__ import annotations

import functools
import io
import time
from pathlib import Path

import numpy as np
import torch

from spectragrid.core.atomic import write_atomic
from spectragrid.data.image_clean import ImageData, read_images
from spectragrid.train.cell import (
    CellOutputs,
    CellSpec,
    _write_json,
    cell_labels,
    fit_network,
    network_metrics,
    training_record,
    write_test_outputs,
)
from spectragrid.train.image_models import build_image_model
from spectragrid.train.label_action import IssuesSource
from spectragrid.train.model_card import layer_table
from spectragrid.train.models import count_parameters
from spectragrid.train.output_checksums import MANIFEST_KEY, checksums
from spectragrid.train.predict import predict_proba
from spectragrid.train.settings import TrainSettings


@functools.lru_cache(maxsize=1)
def _read_cached(path: Path, stat: tuple[int, int]) -> ImageData:
    return read_images(path)


def read_images_once(path: Path) -> ImageData:
    """read_images, once for the folds of a job (a rewritten file is read again)."""
    info = Path(path).stat()
    return _read_cached(Path(path), (info.st_size, info.st_mtime_ns))


def run_image_cell(
    spec: CellSpec,
    clean_path: Path,
    folds_path: Path,
    issues: IssuesSource | None,
    out: CellOutputs,
    threads: int,
    resume_path: Path | None,
    curves_dir: Path | None,
) -> dict:
    """Train, test and export one image cell; returns its metrics."""
    from spectragrid.train.image_export import check_image_parity, export_image_onnx

    started = time.perf_counter()
    torch.set_num_threads(max(1, threads))
    data = read_images_once(Path(clean_path))
    table, target, y_all, parts, in_target, cleaned = cell_labels(
        spec, data.table, folds_path, issues
    )
    train_rows = np.flatnonzero(parts.train & in_target & cleaned.keep)
    val_rows = np.flatnonzero(parts.val & in_target & cleaned.keep)
    test_rows = np.flatnonzero(parts.test & in_target)

    images = data.stack(spec.channels)  # (N, C, H, W) uint8
    tabular = np.zeros((len(table), 0), dtype=np.float32)
    n_channels, height, width = images.shape[1:]
    settings = TrainSettings.from_config(spec.train)
    budget = spec.budget or {}
    torch.manual_seed(spec.seed)
    model = build_image_model(
        spec.arch,
        spec.model_params,
        n_channels,
        (height, width),
        target.n_classes,
        pretrained=spec.pretrained,
        name=spec.model,
        max_parameters=budget.get("max_parameters"),
    )
    model.fit_scaling(images[train_rows])

    result, test = fit_network(
        model,
        images,
        tabular,
        cleaned.labels,
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
    test_flagged = cleaned.flagged[test_rows]

    buffer = io.BytesIO()
    torch.save(
        {
            "state_dict": model.state_dict(),
            "classes": list(target.classes),
            "channels": list(spec.channels),
            "arch": spec.arch,
            "model_params": spec.model_params,
            "image_size": [int(height), int(width)],
            "n_tabular": 0,
            "best_epoch": int(result.best_epoch),
        },
        buffer,
    )
    write_atomic(out.checkpoint, buffer.getvalue())

    display = spec.display_name()
    export_image_onnx(
        model,
        out.onnx,
        int(height),
        int(width),
        data.bands,
        list(spec.channels),
        {
            "classes": list(target.classes),
            "channels": list(spec.channels),
            "data_bands": list(data.bands),
            "image_size": [int(height), int(width)],
            "target": target.code,
            "tabular": [],
            "display_name": display,
            "config_hash": spec.config_hash,
        },
    )
    parity = check_image_parity(out.onnx, data.pixels[test_rows], proba.astype(np.float32))

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
    metrics["input"] = "images"

    layers = layer_table(model, (torch.zeros(1, n_channels, height, width), torch.zeros(1, 0)))
    step_seconds = float(np.mean(result.step_seconds)) if result.step_seconds else 0.0
    flops = layers["flops"]
    card = {
        "display_name": display,
        "parameters": count_parameters(model),
        # additions and multiplications of one image's forward pass (the layer table's
        # totals; max operations are counted apart)
        "flops_per_sample": int(flops.get("additions", 0)) + int(flops.get("multiplications", 0)),
        "seconds_per_epoch": (
            float(np.mean(result.epoch_seconds)) if result.epoch_seconds else 0.0
        ),
        "train_samples_per_second": len(train_rows) / step_seconds if step_seconds else 0.0,
        "wall_seconds": time.perf_counter() - started,
        **training_record(result, model, budget),
        **{key: layers[key] for key in ("input", "layers", "flops", "not_counted")},
    }
    _write_json(out.card, card)
    metrics[MANIFEST_KEY] = checksums(out.metrics.parent)
    _write_json(out.metrics, metrics)
    return metrics
