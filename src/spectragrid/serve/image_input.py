"""New images read for scoring: decoded with Pillow and checked as the ingest checks them.

An image study's served models take the data set's images as they were
ingested (spectragrid.data.image_ingest): one size and one mode (L, or RGB),
with no resizing or conversion. A new image is held to the same rules, and
one the model cannot take is listed with the ingest's reason, never scored:

- `unreadable`: Pillow cannot decode it (not an image, truncated, ...);
- `wrong_mode`: not the mode of the data set's bands;
- `wrong_size`: not the model's [height, width].

Mode and size are read from the file's header before any pixel is decoded:
an image is decoded only when it has exactly the model's pixel count, so a
small file that would inflate to a huge picture (a decompression bomb) never
is. (The ingest decodes first and checks after, so a truncated file of the
wrong size is `wrong_size` here and `unreadable` there; either way it is not
used.) An upload is decoded from memory: nothing of it is written anywhere.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from spectragrid.data.image_clean import MODE_BANDS
from spectragrid.data.unpickle import RawDataError
from spectragrid.serve.image_paths import image_entries
from spectragrid.serve.model import ServedModel, ServedModelError

# What an upload's message says for each of the ingest's reasons.
_UPLOAD_TEXT = {
    "unreadable": "cannot be read as an image",
    "wrong_mode": "is not in the mode of the study's images (dataset.images.mode)",
    "wrong_size": "is not the size of the study's images (dataset.images.size, height x width)",
}


@dataclass(frozen=True)
class ImageSpec:
    """The images a served model takes: Pillow mode and (height, width)."""

    mode: str
    height: int
    width: int

    @classmethod
    def of(cls, model: ServedModel) -> ImageSpec:
        modes = [m for m, bands in MODE_BANDS.items() if list(bands) == model.data_bands]
        if not model.image_size or not modes:
            raise ServedModelError(
                f"{model.path}: not an image model of known bands (data_bands "
                f"{model.data_bands}; known: {dict(MODE_BANDS)})"
            )
        return cls(modes[0], *model.image_size)

    @property
    def bands(self) -> int:
        return len(MODE_BANDS[self.mode])

    def describe(self) -> str:
        return f"{self.height}x{self.width} {self.mode}"


def shared_image_spec(models: Mapping[str, ServedModel]) -> ImageSpec | None:
    """The images every served model takes; None when they take spectra. The models of one
    study serve one data set, so they agree; models that do not are an error."""
    kinds = {m.takes_images for m in models.values()}
    if kinds == {False} or not kinds:
        return None
    specs = {ImageSpec.of(m) for m in models.values() if m.takes_images}
    if len(kinds) > 1 or len(specs) > 1:
        found = ", ".join(
            f"{t}: {ImageSpec.of(m).describe() if m.takes_images else 'spectra'}"
            for t, m in models.items()
        )
        raise ServedModelError(f"the served models do not take the same input ({found})")
    return specs.pop()


def decode_image(source: Path | bytes, spec: ImageSpec) -> tuple[np.ndarray | None, str, str]:
    """(pixels (H, W, C) uint8 or None, reason, detail) of one image file or its bytes."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            if image.mode != spec.mode:
                return None, "wrong_mode", f"mode {image.mode}, expected {spec.mode}"
            if (image.height, image.width) != (spec.height, spec.width):
                return (
                    None,
                    "wrong_size",
                    f"{image.height}x{image.width}, expected {spec.height}x{spec.width}",
                )
            image.load()
            pixels = np.asarray(image, dtype=np.uint8)
    except UnidentifiedImageError:
        return None, "unreadable", "not an image file Pillow can read"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow reports truncated and corrupt files as OSError or SyntaxError.
        return None, "unreadable", f"{type(error).__name__}: {error}"
    return pixels.reshape(spec.height, spec.width, spec.bands), "", ""


@dataclass
class ImageBatch:
    """Images to score, one row each. `table` holds sample_id, source_file and source_row
    (0: an image file holds one sample); `pixels` are zero where `reason` is not ""."""

    table: pd.DataFrame
    pixels: np.ndarray  # (N, H, W, C) uint8
    reason: np.ndarray  # (N,) object: "" or `<ingest reason>: <detail>`
    spec: ImageSpec

    def __len__(self) -> int:
        return len(self.table)


def _batch(
    ids: list[str], files: list[str], sources: list[Path | bytes], spec: ImageSpec
) -> ImageBatch:
    pixels = np.zeros((len(ids), spec.height, spec.width, spec.bands), dtype=np.uint8)
    reason = np.full(len(ids), "", dtype=object)
    for i, source in enumerate(sources):
        decoded, kind, detail = decode_image(source, spec)
        if decoded is None:
            reason[i] = f"{kind}: {detail}"
        else:
            pixels[i] = decoded
    table = pd.DataFrame(
        {
            "sample_id": pd.Series(ids, dtype=object),
            "source_file": pd.Series(files, dtype=object),
            "source_row": np.zeros(len(ids), dtype=np.int64),
        }
    )
    return ImageBatch(table, pixels, reason, spec)


def read_image_batch(paths: list[Path | str], spec: ImageSpec) -> ImageBatch:
    """The images of a batch: listed files, and every file under listed folders."""
    entries = image_entries([str(p) for p in paths])
    if not entries:
        raise RawDataError(f"{', '.join(map(str, paths))}: no image file found")
    ids, files = [e[0] for e in entries], [e[1] for e in entries]
    return _batch(ids, files, [Path(f) for f in files], spec)


def read_image_upload(data: bytes, name: str, spec: ImageSpec) -> ImageBatch:
    """An uploaded image, sent as `name`; RawDataError naming what is wrong when the served
    models cannot take it."""
    batch = _batch([name], [name], [data], spec)
    if batch.reason[0]:
        kind, detail = str(batch.reason[0]).split(": ", 1)
        raise RawDataError(f"{name}: the file {_UPLOAD_TEXT[kind]} ({detail})")
    return batch


@dataclass
class ImageInputs:
    """A batch as one model takes it; `reason` is "" where a row can be scored."""

    images: np.ndarray  # (N, H, W, C) uint8
    reason: np.ndarray  # (N,) object


def image_inputs(batch: ImageBatch, model: ServedModel) -> ImageInputs:
    """The images `model` takes of `batch`, and why each row it cannot score is left out."""
    spec = ImageSpec.of(model)
    if spec != batch.spec:
        reason = np.full(len(batch), "", dtype=object)
        reason[:] = f"image: the model takes {spec.describe()}, not {batch.spec.describe()}"
        return ImageInputs(np.zeros_like(batch.pixels), reason)
    return ImageInputs(batch.pixels, batch.reason.copy())
