from __future__ import annotations

import io

from PIL import Image
from report_cases import default_costs, default_rule
from sheet_cases import CARD, ERR_CLASSES, PNG_SIGNATURE, err_predictions, fake_history

from spectragrid.report.sheet_data import sheet_data
from spectragrid.report.sheet_png import DPI, WIDTH_IN, palette_png, sheet_png


def test_sheet_png_is_a_palette_png_of_the_sheet_width_and_deterministic() -> None:
    data = sheet_data(
        err_predictions(),
        ERR_CLASSES,
        "three classes",
        rule=default_rule(),
        costs=default_costs(),
        history=fake_history(),
        card=CARD,
    )
    first, second = sheet_png(data), sheet_png(data)
    assert first == second and first.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(first)) as image:
        assert image.mode == "P"
        assert image.width == int(WIDTH_IN * DPI)
        assert image.height > image.width  # one tall sheet, panels stacked in rows


def test_palette_png_keeps_a_flat_picture() -> None:
    compact = palette_png(Image.new("RGBA", (30, 20), (31, 95, 153, 255)))
    with Image.open(io.BytesIO(compact)) as image:
        assert image.mode == "P" and image.size == (30, 20)
        assert image.convert("RGB").getpixel((7, 3)) == (31, 95, 153)
