"""Image files -> checks -> clean.parquet, cleaning report and dropped list.

What the ingest rule runs for a data set with `dataset.images`. Each file is
decoded with Pillow and kept, or dropped with one reason, first match wins:

- `no_label`: no line of the label file names it;
- `unreadable`: Pillow cannot decode it (not an image, truncated, ...);
- `wrong_mode`: not in `dataset.images.mode` (L or RGB);
- `wrong_size`: not `dataset.images.size` ([height, width]);
- `unknown_label`: its label is no key of `dataset.label_map`;
- `duplicate`: the same pixels as an image kept before it (by sample id).

A label naming no file is reported as `missing_file`. Every file found and
every label line is thus accounted for, in dropped.csv (sample_id,
source_file, reason, detail) and in the report's counts; the report also
records each file's sha256 (the same digests as the clean file's `sha256`
column). The three outputs appear together or not at all, as for spectra.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from spectragrid.core.spreadsheet import neutralised
from spectragrid.data.fold_notices import fold_notices
from spectragrid.data.image_clean import MODE_BANDS, write_images
from spectragrid.data.image_files import ImageFileError, list_images

__all__ = ["IMAGE_REASONS", "run_image_ingest"]

log = logging.getLogger(__name__)

IMAGE_REASONS: tuple[str, ...] = (
    "no_label",
    "unreadable",
    "wrong_mode",
    "wrong_size",
    "unknown_label",
    "duplicate",
    "missing_file",
)
PROVENANCE = ["source_file", "sha256", "given_split"]


def _decode(path: Path, mode: str, size: tuple[int, int]) -> tuple[np.ndarray | None, str, str]:
    """(pixels (H, W, C) uint8 or None, reason, detail) of one file."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode != mode:
                return None, "wrong_mode", f"mode {image.mode}, expected {mode}"
            height, width = image.height, image.width
            if (height, width) != size:
                return None, "wrong_size", f"{height}x{width}, expected {size[0]}x{size[1]}"
            pixels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        # Pillow reports truncated and corrupt files as OSError or SyntaxError.
        return None, "unreadable", f"{type(error).__name__}: {error}"
    return pixels.reshape(height, width, -1), "", ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_image_ingest(
    out_parquet: Path,
    out_report: Path,
    out_dropped: Path,
    images: dict,
    columns: dict,
    label_map: dict,
    *,
    k: int,
) -> dict[str, Any]:
    """Read, check and write one image data set (`images`: the `dataset.images` section);
    returns the cleaning report."""
    mode = str(images["mode"])
    size = (int(images["size"][0]), int(images["size"][1]))
    listing = list_images(
        Path(images["folder"]),
        str(images["layout"]),
        Path(images["labels"]) if images.get("labels") else None,
        id_column=str(columns.get("id") or "file"),
        label_column=str(columns.get("label") or "label"),
        split_folders=bool(images.get("split_folders", False)),
    )
    files = listing.files
    n = len(files)
    if n == 0:
        raise ImageFileError(f"{images['folder']}: no image file found (dataset.images.folder)")
    bands = len(MODE_BANDS[mode])
    pixels = np.zeros((n, *size, bands), dtype=np.uint8)
    reasons = np.full(n, "", dtype=object)
    details = np.full(n, "", dtype=object)
    digests = []
    first_of: dict[bytes, str] = {}
    mapping = {str(key): str(value) for key, value in label_map.items()}
    for i, row in enumerate(files.itertuples(index=False)):
        path = Path(row.path)
        digests.append(_sha256(path))
        if pd.isna(row.label_raw):
            reasons[i], details[i] = "no_label", "no line of the label file names it"
            continue
        decoded, reason, detail = _decode(path, mode, size)
        if decoded is None:
            reasons[i], details[i] = reason, detail
            continue
        if str(row.label_raw) not in mapping:
            reasons[i], details[i] = "unknown_label", f"label {row.label_raw!r}"
            continue
        # By decoded pixels: the same image saved twice, even under other encoders'
        # settings, is one sample (its two labels may even disagree).
        key = hashlib.sha256(decoded.tobytes()).digest()
        if key in first_of:
            reasons[i], details[i] = "duplicate", f"same pixels as {first_of[key]}"
            continue
        first_of[key] = row.sample_id
        pixels[i] = decoded
    files = files.assign(sha256=digests, reason=reasons, detail=details)
    keep = (reasons == "").astype(bool)
    if not keep.any():
        counts = pd.Series(reasons).value_counts().to_dict()
        raise ImageFileError(
            f"{images['folder']}: all {n} images were dropped ({counts}); check "
            "dataset.images.size, mode and dataset.label_map against the files"
        )

    folder = Path(images["folder"])
    kept = files.loc[keep].reset_index(drop=True)
    labels = kept["label_raw"].map(mapping).astype(object)
    table = pd.DataFrame(
        {
            "sample_id": kept["sample_id"].astype(object),
            "label": labels,
            "full_truth": labels.copy(),
            "label_raw": kept["label_raw"].astype(object),
            # no replicate structure between images: each is its own group
            "group": kept["sample_id"].astype(object),
            "source_file": kept["sample_id"].astype(object),
            "sha256": kept["sha256"].astype(object),
            "given_split": kept["given_split"].astype(object),
        }
    )
    dropped = pd.concat(
        [
            files.loc[~keep, ["sample_id", "reason", "detail"]].assign(
                source_file=files.loc[~keep, "sample_id"]
            ),
            listing.orphans.assign(
                reason="missing_file",
                detail="the label file names it, the folder has no such file",
                source_file=listing.orphans["source"],
            )[["sample_id", "reason", "detail", "source_file"]],
        ],
        ignore_index=True,
    )[["sample_id", "source_file", "reason", "detail"]]

    counts = {r: int((dropped["reason"] == r).sum()) for r in IMAGE_REASONS}
    report: dict[str, Any] = {
        "kind": "images",
        "input_rows": n + len(listing.orphans),
        "kept": int(keep.sum()),
        "dropped": counts,
        "image": {"height": size[0], "width": size[1], "mode": mode},
        "files": [
            {
                "file": str(folder),
                "sha256": hashlib.sha256("".join(digests).encode()).hexdigest(),
                "rows": n,
                "kept": int(keep.sum()),
                "dropped": {r: c for r, c in counts.items() if r != "missing_file"},
                "dropped_columns": [],
            }
        ],
        "image_sha256": dict(zip(files["sample_id"], files["sha256"], strict=True)),
        "labels": table["label"].value_counts().sort_index().to_dict(),
        "notices": fold_notices(table, k, False, None),
    }
    for notice in report["notices"]:
        log.warning(notice)
    _write_outputs(out_parquet, out_report, out_dropped, table, pixels[keep], mode, report, dropped)
    return report


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _write_outputs(
    out_parquet: Path,
    out_report: Path,
    out_dropped: Path,
    table: pd.DataFrame,
    pixels: np.ndarray,
    mode: str,
    report: dict,
    dropped: pd.DataFrame,
) -> None:
    """The three outputs under temporary names, renamed only once all are written."""
    targets = [Path(out_parquet), Path(out_report), Path(out_dropped)]
    report["outputs"] = {"clean": str(targets[0]), "report": str(targets[1])}
    report["outputs"]["dropped"] = str(targets[2])
    temps = [_tmp(p) for p in targets]
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
        write_images(temps[0], table, pixels, mode, PROVENANCE)
        temps[1].write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        neutralised(dropped).to_csv(temps[2], index=False, lineterminator="\n")
        for tmp, path in zip(temps, targets, strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
