"""The clean Parquet file of an image data set: one row per image, pixels as raw uint8.

The file shares the spectra file's plain columns (sample_id, label columns,
group, provenance) and its `spectragrid` schema metadata, so splitting,
targets, label patches and label issues read it unchanged. The pixels are one
`fixed_size_binary(H * W * C)` column `image`, each value an image's uint8
bytes in HWC order (the order Pillow decodes into); the metadata's `image`
entry gives height, width, bands and mode.

Raw pixels rather than the encoded files: reading the demo's 32x32 RGB set
into a (N, C, H, W) batch is a `np.frombuffer` and a transpose, where encoded
PNG bytes need one Pillow decode per image (benchmarks/images.py measures
both in the same run; docs/benchmarks.md, "Images").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from spectragrid.core.atomic import atomic_path
from spectragrid.data.clean_file import FORMAT_VERSION, LABEL_COLUMNS, META_KEY, read_meta

__all__ = ["IMAGE_COLUMN", "ImageData", "is_image_file", "read_images", "write_images"]

IMAGE_COLUMN = "image"
# Bands of each mode, in Pillow's order: a channel set picks and orders them.
MODE_BANDS: dict[str, tuple[str, ...]] = {"L": ("L",), "RGB": ("R", "G", "B")}


@dataclass
class ImageData:
    """An image clean file in memory: `pixels` (N, H, W, C) uint8, read-only."""

    table: pd.DataFrame
    pixels: np.ndarray
    bands: list[str]
    meta: dict[str, Any]
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.table)

    def stack(self, bands: list[str]) -> np.ndarray:
        """(N, C, H, W) uint8 of `bands` in that order: the layout the networks take."""
        unknown = [b for b in bands if b not in self.bands]
        if unknown:
            raise ValueError(
                f"{self.path}: band(s) {unknown} not in these images; their bands: {self.bands}"
            )
        index = [self.bands.index(b) for b in bands]
        return np.ascontiguousarray(self.pixels[..., index].transpose(0, 3, 1, 2))


def is_image_file(path: Path) -> bool:
    """Whether a clean file holds images (rather than spectra)."""
    return read_meta(Path(path)).get("kind") == "images"


def write_images(
    path: Path,
    table: pd.DataFrame,
    pixels: np.ndarray,
    mode: str,
    provenance: list[str],
) -> None:
    """Write the clean file of `pixels` (N, H, W, C) uint8, one row of `table` each."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 4 or len(pixels) != len(table):
        raise ValueError(f"pixels have shape {pixels.shape}; expected ({len(table)}, H, W, C)")
    n, height, width, channels = pixels.shape
    bands = list(MODE_BANDS[mode])
    if channels != len(bands):
        raise ValueError(f"mode {mode} has {len(bands)} bands, the pixels {channels}")
    plain = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
    width_bytes = height * width * channels
    column = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width_bytes), n, [None, pa.py_buffer(pixels)]
    )
    meta = {
        "format": FORMAT_VERSION,
        "kind": "images",
        "channels": bands,
        "wavelengths": {},
        "spectrum_columns": {},
        "image": {
            "column": IMAGE_COLUMN,
            "height": height,
            "width": width,
            "bands": bands,
            "mode": mode,
            "dtype": "uint8",
            "layout": "HWC",
        },
        "group_column": "group" if "group" in table.columns else None,
        "tabular_columns": [],
        "provenance_columns": list(provenance),
        "label_columns": [c for c in LABEL_COLUMNS if c in table.columns],
        "rows": n,
    }
    schema = pa.schema(
        [*plain.schema, pa.field(IMAGE_COLUMN, pa.binary(width_bytes))],
        metadata={META_KEY: json.dumps(meta).encode()},
    )
    columns = [plain.column(c) for c in plain.column_names] + [column]
    with atomic_path(Path(path)) as tmp:
        # Pixels compress a little (flat backgrounds) and decompress fast enough with lz4;
        # the other columns use zstd, as the spectra file's do.
        pq.write_table(
            pa.Table.from_arrays(columns, schema=schema),
            tmp,
            compression={**dict.fromkeys(plain.column_names, "zstd"), IMAGE_COLUMN: "lz4"},
            use_dictionary=plain.column_names,
            write_statistics=plain.column_names,
        )


def read_images(path: Path) -> ImageData:
    """Read an image clean file: the plain columns and the (N, H, W, C) pixels."""
    path = Path(path)
    meta = read_meta(path)
    if meta.get("kind") != "images":
        raise ValueError(f"{path}: a clean file of spectra, not of images")
    image = meta["image"]
    shape = (int(image["height"]), int(image["width"]), len(image["bands"]))
    parquet = pq.ParquetFile(path)
    plain = [n for n in parquet.schema_arrow.names if n != image["column"]]
    table = parquet.read(columns=plain).to_pandas()
    pixels = np.empty((len(table), *shape), dtype=np.uint8)
    size = int(np.prod(shape))
    row = 0
    for chunk in parquet.read(columns=[image["column"]]).column(0).chunks:
        if chunk.null_count or chunk.type.byte_width != size:
            raise ValueError(
                f"{path}: column {image['column']!r} holds missing images or values of "
                f"{chunk.type.byte_width} bytes; the metadata promises {size} per image"
            )
        values = np.frombuffer(chunk.buffers()[1], np.uint8, len(chunk) * size, chunk.offset * size)
        pixels[row : row + len(chunk)] = values.reshape(-1, *shape)
        row += len(chunk)
    pixels.flags.writeable = False
    return ImageData(table=table, pixels=pixels, bands=list(image["bands"]), meta=meta, path=path)
