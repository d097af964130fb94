"""The JSON the page and `POST /api/predict` return for one scored file.

    {"file": name, "n_samples": N, "n_scored": {target: n},
     "models": {target: card},
     "samples": [{"sample_id", "source_row",
                  "probabilities": {target: {class: p} | null},
                  "predicted": {target: class | null},
                  "decision": {target: class | "uncertain" | null},
                  "reason": {target: "" | why it was not scored}}],
     "spectra": {"wavelengths": {channel: [nm]}, "drawn": n,
                 "values": [{channel: [value | null]}]}   (asked, a spectra file),
     "images": {"drawn": n, "png": ["data:image/png;base64,..." | null]}
                                                          (asked, an image study)}

An image is sent back as PNG re-encoded from its decoded pixels, never as the
sender's bytes: what the page draws is only ever pixels.

JSON has no NaN: a missing number is null.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from spectragrid.serve.batch_input import BatchFile
from spectragrid.serve.image_input import ImageBatch
from spectragrid.serve.model import ServedModel
from spectragrid.serve.scoring import column

# Spectra or images the page draws: the first samples of a file (a spectrum is ~1,300
# numbers).
MAX_DRAWN = 100


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def png_data_url(pixels: np.ndarray) -> str:
    """An (H, W, C) uint8 image as a PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _drawn_images(batch: ImageBatch) -> dict[str, Any]:
    drawn = min(len(batch), MAX_DRAWN)
    return {
        "drawn": drawn,
        "png": [
            png_data_url(batch.pixels[i]) if batch.reason[i] == "" else None for i in range(drawn)
        ],
    }


def _drawn_spectra(batch: BatchFile) -> dict[str, Any]:
    drawn = min(len(batch), MAX_DRAWN)
    return {
        "wavelengths": {c: [float(w) for w in wl] for c, wl in batch.wavelengths.items()},
        "drawn": drawn,
        "values": [
            {c: [_number(v) for v in values[i]] for c, values in batch.spectra.items()}
            for i in range(drawn)
        ],
    }


def payload(
    name: str,
    batch: BatchFile | ImageBatch,
    scores: pd.DataFrame,
    models: Mapping[str, ServedModel],
    spectra: bool = False,
    images: bool = False,
) -> dict[str, Any]:
    samples: list[dict[str, Any]] = []
    columns = {
        t: (
            [column(t, f"prob_{c}") for c in m.classes],
            scores[column(t, "predicted")].to_numpy(),
            scores[column(t, "decision")].to_numpy(),
            scores[column(t, "reason")].to_numpy(),
        )
        for t, m in models.items()
    }
    probabilities = {
        t: scores[cols].to_numpy(dtype=np.float64) for t, (cols, *_) in columns.items()
    }
    for i, (sample_id, row) in enumerate(
        zip(scores["sample_id"], scores["source_row"], strict=True)
    ):
        sample: dict[str, Any] = {
            "sample_id": str(sample_id),
            "source_row": int(row),
            "probabilities": {},
            "predicted": {},
            "decision": {},
            "reason": {},
        }
        for t, model in models.items():
            _, predicted, decision, reason = columns[t]
            scored = reason[i] == ""
            sample["probabilities"][t] = (
                {c: _number(p) for c, p in zip(model.classes, probabilities[t][i], strict=True)}
                if scored
                else None
            )
            sample["predicted"][t] = str(predicted[i]) if scored else None
            sample["decision"][t] = str(decision[i]) if scored else None
            sample["reason"][t] = str(reason[i])
        samples.append(sample)
    out: dict[str, Any] = {
        "file": name,
        "n_samples": len(samples),
        "n_scored": {t: int((columns[t][3] == "").sum()) for t in models},
        "models": {t: m.card() for t, m in models.items()},
        "samples": samples,
    }
    if spectra and isinstance(batch, BatchFile):
        out["spectra"] = _drawn_spectra(batch)
    if images and isinstance(batch, ImageBatch):
        out["images"] = _drawn_images(batch)
    return out
