"""Flagged images in a review sheet: thumbnails as data URIs, every name inert to markup."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
import pandas as pd
from PIL import Image

from spectragrid.data.image_clean import ImageData
from spectragrid.report.review_images import thumbnail_png, thumbnails_html

HOSTILE = '<img src=x onerror="alert(1)">.png'


def test_thumbnails_show_given_and_suggested_class_and_escape_names():
    pixels = np.zeros((2, 8, 8, 3), np.uint8)
    pixels[1, :, :, 0] = 200
    images = ImageData(
        table=pd.DataFrame({"sample_id": ["a.png", HOSTILE]}),
        pixels=pixels,
        bands=["R", "G", "B"],
        meta={},
    )
    flagged = pd.DataFrame(
        {
            "rank": [1, 2],
            "sample_id": [HOSTILE, "gone.png"],
            "given_label": ["<b>plain</b>", "x"],
            "suggested_label": ["glasses", "y"],
        }
    )
    html = thumbnails_html(flagged, images)
    assert "<h2>The 1 most suspicious images</h2>" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.png" in html
    assert "given <b>&lt;b&gt;plain&lt;/b&gt;</b>" in html and "suggested <b>glasses</b>" in html
    payload = re.search(r'src="data:image/png;base64,([^"]+)"', html)[1]
    shown = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
    # 8x8 enlarged 12 times, nearest neighbour: the red image of row 1, pixel for pixel
    assert shown.shape == (96, 96, 3) and (shown[..., 0] == 200).all()


def test_grayscale_thumbnail():
    png = thumbnail_png(np.full((32, 32, 1), 7, np.uint8))
    image = Image.open(io.BytesIO(png))
    assert image.mode == "L" and image.size == (96, 96)
