"""Deterministic demo image sets, drawn with numpy and saved as PNG (nothing downloaded).

Two sets, in the users' two layouts (`dataset.images.demo.kind`):

- `binary`: RGB faces in one folder, labelled by a `name label` text file;
  the class is a visible attribute, `glasses` (a dark bar across the eyes,
  about 13 % of the faces) or `plain`; background, skin tone, position and
  size vary, and pixel noise is added.
- `multiclass`: grayscale cells in `<train|val|test>/<class>/` folders, four
  shapes (`disk`, `ring`, `square`, `cross`) of varying size, brightness and
  position.

`noise_rate` of the labels are wrong (a label file's line, or the folder a
file is saved in); the truth file (`dataset.truth`: columns `id_column`,
`label_column`) keeps the true class of every image. A handful of dirty
files exercise the ingest's checks: an unreadable file, an image of the
wrong size, one in the wrong mode, a duplicate, an unknown label and, in the
label-file layout, a label naming no file and a file without a label.
The same (kind, n_samples, seed, noise_rate, size) always gives the same bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from spectragrid.core.atomic import write_atomic

__all__ = ["KINDS", "write_demo_images"]

KINDS: dict[str, tuple[str, ...]] = {
    "binary": ("plain", "glasses"),
    "multiclass": ("disk", "ring", "square", "cross"),
}
GLASSES_SHARE = 0.13


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buffer, format="PNG")
    return buffer.getvalue()


def _grid(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0 : size[0], 0 : size[1]].astype(np.float32)


def _face(rng: np.random.Generator, size: tuple[int, int], glasses: bool) -> np.ndarray:
    yy, xx = _grid(size)
    h, w = size
    image = np.empty((h, w, 3), np.float32)
    image[:] = rng.uniform(40, 220, 3)
    cy, cx = h / 2 + rng.uniform(-2, 2), w / 2 + rng.uniform(-2, 2)
    radius = min(h, w) * rng.uniform(0.28, 0.36)
    face = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    image[face] = rng.uniform([150, 100, 70], [250, 190, 150])
    eye_y, gap = cy - radius * 0.25, radius * 0.4
    for side in (-1, 1):
        eye = (yy - eye_y) ** 2 + (xx - (cx + side * gap)) ** 2 <= (radius * 0.12) ** 2
        image[eye] = 30
    if glasses:
        bar = (np.abs(yy - eye_y) <= max(1.0, radius * 0.1)) & (np.abs(xx - cx) <= radius * 0.85)
        image[bar] = rng.uniform(0, 40, 3)
    mouth = (np.abs(yy - (cy + radius * 0.45)) <= 0.6) & (np.abs(xx - cx) <= radius * 0.35)
    image[mouth] = [120, 30, 30]
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _cell(rng: np.random.Generator, size: tuple[int, int], shape: str) -> np.ndarray:
    yy, xx = _grid(size)
    h, w = size
    cy, cx = h / 2 + rng.uniform(-3, 3), w / 2 + rng.uniform(-3, 3)
    r = min(h, w) * rng.uniform(0.22, 0.34)
    dy, dx = yy - cy, xx - cx
    if shape == "disk":
        mask = dy**2 + dx**2 <= r**2
    elif shape == "ring":
        mask = (dy**2 + dx**2 <= r**2) & (dy**2 + dx**2 >= (0.55 * r) ** 2)
    elif shape == "square":
        mask = (np.abs(dy) <= 0.85 * r) & (np.abs(dx) <= 0.85 * r)
    else:
        arm = 0.3 * r
        mask = ((np.abs(dy) <= arm) & (np.abs(dx) <= r)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= r))
    background, foreground = rng.uniform(10, 90), rng.uniform(140, 250)
    image = np.where(mask, foreground, background) + rng.normal(0, 10, size)
    return np.clip(image, 0, 255).astype(np.uint8)[..., None]


def _wrong(rng: np.random.Generator, true: int, n_classes: int) -> int:
    return int((true + rng.integers(1, n_classes)) % n_classes)


def write_demo_images(
    kind: str,
    folder: Path,
    truth_path: Path,
    *,
    labels_path: Path | None = None,
    n_samples: int,
    seed: int,
    noise_rate: float,
    size: tuple[int, int],
    id_column: str = "file",
    label_column: str = "label",
) -> pd.DataFrame:
    """Write the demo set `kind` under `folder` (and its label file for `binary`) and its
    truth file; returns the truth (id, label) of the clean images."""
    if kind not in KINDS:
        raise ValueError(f"dataset.images.demo.kind: {kind!r}; use {' or '.join(KINDS)}")
    if kind == "binary" and labels_path is None:
        raise ValueError("dataset.images.labels: the binary demo writes a label file")
    classes = KINDS[kind]
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names, truths, given, images = [], [], [], []
    for i in range(n_samples):
        if kind == "binary":
            true = int(rng.random() < GLASSES_SHARE)
            pixels = _face(rng, size, glasses=bool(true))
        else:
            true = int(rng.integers(len(classes)))
            pixels = _cell(rng, size, classes[true])
        label = _wrong(rng, true, len(classes)) if rng.random() < noise_rate else true
        names.append(f"img_{i:05d}.png")
        truths.append(classes[true])
        given.append(classes[label])
        images.append(pixels)
    rows = []
    split = rng.choice(["train", "val", "test"], size=n_samples, p=[0.7, 0.15, 0.15])
    for i, (name, label, pixels) in enumerate(zip(names, given, images, strict=True)):
        rel = name if kind == "binary" else f"{split[i]}/{label}/{name}"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, _png(pixels))
        rows.append((rel, label, truths[i]))
    truth = pd.DataFrame([(rel, true) for rel, _, true in rows], columns=[id_column, label_column])
    lines = [(rel, label) for rel, label, _ in rows]
    lines += _dirt(kind, folder, images[0], rows[0][0], classes, size)
    if kind == "binary" and labels_path is not None:
        lines.append(("img_missing.png", classes[0]))  # a label naming no file
        text = "".join(f"{rel} {label}\n" for rel, label in lines if rel != "no_label.png")
        write_atomic(Path(labels_path), text)
    Path(truth_path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(truth_path), truth.to_csv(index=False, lineterminator="\n"))
    return truth


def _dirt(
    kind: str,
    folder: Path,
    first: np.ndarray,
    first_id: str,
    classes: tuple[str, ...],
    size: tuple[int, int],
) -> list[tuple[str, str]]:
    """The dirty files, each dropped by one ingest check; their (id, label) lines."""
    place = "" if kind == "binary" else f"train/{classes[0]}/"
    small = np.zeros((size[0] // 2, size[1] // 2, first.shape[2]), np.uint8).squeeze()
    other_mode = first[..., 0] if first.shape[2] == 3 else np.repeat(first, 3, axis=2)
    files = {
        f"{place}unreadable.png": b"not an image\n",
        f"{place}wrong_size.png": _png(small),
        f"{place}wrong_mode.png": _png(other_mode),
        # beside the image it copies and sorted after it, so the copy is the one dropped
        first_id.replace(".png", "_copy.png"): _png(first),
    }
    if kind == "binary":
        files["unknown_label.png"] = _png(255 - first)
        files["no_label.png"] = _png(first // 2)
    for rel, content in files.items():
        write_atomic(folder / rel, content)
    labels = {rel: classes[0] for rel in files}
    if kind == "binary":
        labels["unknown_label.png"] = "sunglasses"
    return list(labels.items())
