"""The flagged images of a review sheet, as thumbnails with their given and suggested class.

Each thumbnail is an inline PNG (a data URI: the sheet still opens from disk
alone), enlarged with nearest-neighbour pixels so a 32x32 image stays
readable. Sample ids and class names come from users' files and folders:
every one is escaped, so a name such as `<img onerror=...>.png` is shown as
text and never runs.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from PIL import Image

from spectragrid.data.image_clean import ImageData
from spectragrid.report.htmlkit import data_uri, esc

REVIEW_THUMBNAILS = 24
THUMBNAIL_PIXELS = 96

THUMBNAIL_CSS = """
.thumbs { display: flex; flex-wrap: wrap; gap: 10px; }
.thumbs figure { margin: 0; width: 110px; font-size: 11px; }
.thumbs img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc; }
.thumbs figcaption { overflow-wrap: anywhere; }
"""


def thumbnail_png(pixels: np.ndarray, size: int = THUMBNAIL_PIXELS) -> bytes:
    """PNG of one (H, W, C) uint8 image scaled to fit `size` pixels, nearest neighbour."""
    image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
    scale = max(1, size // max(image.width, image.height))
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnails_html(table: pd.DataFrame, images: ImageData, n: int = REVIEW_THUMBNAILS) -> str:
    """Figures of the `n` most suspicious flagged images of `table` (review_table's rows,
    most suspicious first): the image, its id, its given and suggested class."""
    row_of = {str(s): i for i, s in enumerate(images.table["sample_id"].astype(str))}
    figures = []
    for r in table.head(n).itertuples(index=False):
        where = row_of.get(str(r.sample_id))
        if where is None:
            continue
        uri = data_uri(thumbnail_png(images.pixels[where]), "image/png")
        figures.append(
            f'<figure><img src="{uri}" alt="{esc(r.sample_id)}">'
            f"<figcaption>#{esc(r.rank)} {esc(r.sample_id)}<br>given <b>{esc(r.given_label)}"
            f"</b><br>suggested <b>{esc(r.suggested_label)}</b></figcaption></figure>"
        )
    if not figures:
        return ""
    return (
        f"<h2>The {len(figures)} most suspicious images</h2>"
        f'<div class="thumbs">{"".join(figures)}</div>'
    )
