"""A served model: its ONNX file run by onnxruntime, with what its metadata says.

The file's metadata (spectragrid.train.export or train.image_export, and the
serving keys written by spectragrid.serve.served) names the classes, the
channels and each channel's wavelength axis, the tabular columns, and the
per-class cutoffs; an image model's names its data set's bands and image size
instead of axes. Nothing else is needed to score a raw file or an image, and
torch is never imported.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

UNCERTAIN = "uncertain"
# Rows per onnxruntime call: a big batch in one call would hold all its activations.
SCORE_BATCH = 4096
# The input of an image model's file (spectragrid.train.image_export.IMAGE_INPUT; not
# imported from there, which imports torch).
IMAGE_INPUT = "image"
_REQUIRED = {
    "spectra": ("classes", "channels", "wavelengths"),
    "images": ("classes", "channels", "data_bands", "image_size"),
}


class ServedModelError(ValueError):
    """A served model file that cannot be used (missing, or without its metadata)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _meta_value(text: str) -> Any:
    # export writes strings as they are and everything else as JSON
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class ServedModel:
    path: Path
    sha256: str
    classes: list[str]
    channels: list[str]
    wavelengths: list[np.ndarray]  # each channel's own axis, in `channels` order
    tabular: list[str]
    target: str
    display_name: str
    cutoffs: list[float]  # per class; NaN: the class never abstains
    metadata: dict[str, Any] = field(default_factory=dict)
    session: ort.InferenceSession | None = None
    # An image model's input: (height, width) and the data set's bands, in file order.
    image_size: tuple[int, int] | None = None
    data_bands: list[str] = field(default_factory=list)

    @property
    def takes_images(self) -> bool:
        return self.image_size is not None

    @classmethod
    def load(cls, path: Path, threads: int = 1) -> ServedModel:
        path = Path(path)
        if not path.is_file():
            raise ServedModelError(f"{path}: no served model here")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = {k: _meta_value(v) for k, v in session.get_modelmeta().custom_metadata_map.items()}
        images = [i.name for i in session.get_inputs()] == [IMAGE_INPUT]
        missing = [k for k in _REQUIRED["images" if images else "spectra"] if k not in meta]
        if missing:
            raise ServedModelError(f"{path}: the ONNX metadata lacks {missing}")
        classes = [str(c) for c in meta["classes"]]
        cutoffs = meta.get("cutoffs") or {}
        return cls(
            path=path,
            sha256=sha256_of(path),
            classes=classes,
            channels=[str(c) for c in meta["channels"]],
            wavelengths=[np.asarray(w, dtype=np.float64) for w in meta.get("wavelengths") or []],
            tabular=[str(t) for t in meta.get("tabular") or []],
            target=str(meta.get("target", "")),
            display_name=str(meta.get("display_name", "")),
            cutoffs=[_cutoff(cutoffs.get(c)) for c in classes],
            metadata=meta,
            session=session,
            image_size=(
                (int(meta["image_size"][0]), int(meta["image_size"][1])) if images else None
            ),
            data_bands=[str(b) for b in meta.get("data_bands") or []],
        )

    def probabilities(self, spectra: np.ndarray, tabular: np.ndarray) -> np.ndarray:
        """(N, n_classes) float32 for spectra (N, C, L) and tabular (N, T), in raw units."""
        assert self.session is not None
        n = len(spectra)
        if n == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        parts = [
            self.session.run(
                ["probabilities"],
                {
                    "data_spectra": np.ascontiguousarray(
                        spectra[start : start + SCORE_BATCH], dtype=np.float32
                    ),
                    "data_tabular": np.ascontiguousarray(
                        tabular[start : start + SCORE_BATCH], dtype=np.float32
                    ),
                },
            )[0]
            for start in range(0, n, SCORE_BATCH)
        ]
        return np.concatenate(parts)

    def image_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, n_classes) float32 for images (N, H, W, C) uint8 of the data set's bands."""
        assert self.session is not None and self.takes_images
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        parts = [
            self.session.run(
                ["probabilities"],
                {IMAGE_INPUT: np.ascontiguousarray(images[start : start + SCORE_BATCH], np.uint8)},
            )[0]
            for start in range(0, len(images), SCORE_BATCH)
        ]
        return np.concatenate(parts)

    def decisions(self, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The predicted class of each row, and the decision after the cutoffs: the
        predicted class, or `uncertain` where its score is below that class's cutoff
        (the rule of spectragrid.report.cutoffs.abstentions)."""
        names = np.asarray(self.classes, dtype=object)
        if len(proba) == 0:
            return names[:0], names[:0]
        pred = proba.argmax(axis=1)
        limits = np.asarray(self.cutoffs, dtype=np.float64)[pred]
        chosen = proba[np.arange(len(pred)), pred].astype(np.float64)
        abstain = np.where(np.isnan(limits), False, chosen < limits)
        decision = np.where(abstain, UNCERTAIN, names[pred]).astype(object)
        return names[pred], decision

    def card(self) -> dict[str, Any]:
        """What the page shows of the model: name, hash, classes, cutoffs, provenance."""
        return {
            "target": self.target,
            "display_name": self.display_name,
            "sha256": self.sha256,
            "input": "images" if self.takes_images else "spectra",
            "image_size": list(self.image_size) if self.image_size else None,
            "data_bands": self.data_bands,
            "classes": self.classes,
            "channels": self.channels,
            "tabular": self.tabular,
            "cutoffs": {
                c: (None if math.isnan(v) else v)
                for c, v in zip(self.classes, self.cutoffs, strict=True)
            },
            "serving": self.metadata.get("serving", {}),
        }


def _cutoff(value: Any) -> float:
    """A cutoff from the metadata: JSON has no NaN or infinity, so they travel as null
    (never abstains) and the text "inf" (always abstains)."""
    if value is None:
        return math.nan
    return math.inf if value == "inf" else float(value)
