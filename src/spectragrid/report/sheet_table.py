"""The result sheet's tables and text blocks, drawn straight into its picture.

matplotlib makes an artist for every text, each with a layout and a drawing
of its own: the sheet's six tables hold about 250 cells, and making and
drawing them was about a fifth of a sheet (docs/benchmarks.md). A table's
rows have a fixed height and its columns given relative widths, so once
matplotlib has drawn the plots, the tables and the definitions are drawn on
the same pixels with PIL, in the font files matplotlib draws with (DejaVu
Sans). Their titles sit where matplotlib puts a panel's left title.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import font_manager, rcParams
from PIL import Image, ImageDraw, ImageFont

ROW_IN = 0.24  # one table row
FONT_SIZE = 8  # points, a table's text
TITLE_SIZE = 10.5  # points, a panel's title (the sheet's `axes.titlesize`)
# No character of the sheet's font (DejaVu Sans, bold included) is wider than this, in
# ems: a text that fits its column at this width is drawn without being measured.
WIDEST_EM = 1.0
PAD_PT = 4.0  # kept free in each cell, half on each side
ELLIPSIS = "…"
LINE_COLOR = "#cccccc"
HEADER_COLOR = "#eeeeee"
TEXT_COLOR = "black"
# Between the baselines of a text block's lines, in ems: matplotlib's spacing of the
# definitions at `linespacing=1.4`.
LINE_PITCH_EM = 1.3


@dataclass(frozen=True)
class PixelBox:
    """A rectangle of the picture in pixels, from its top left corner."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def of(cls, rect: Sequence[float], size: tuple[int, int]) -> PixelBox:
        """`rect` (left, bottom, width, height in figure fractions, as `Axes` take it) in
        the pixels of a picture of `size`."""
        left, bottom, width, height = rect
        return cls(
            left * size[0], (1 - bottom - height) * size[1], width * size[0], height * size[1]
        )


@dataclass(frozen=True)
class PlacedText:
    """A text as drawn: its string, the point it is anchored at (`anchor` of PIL's
    `ImageDraw.text`) and the box of its glyphs, in pixels."""

    text: str
    bold: bool
    x: float
    y: float
    x0: float
    y0: float
    x1: float
    y1: float


@functools.lru_cache(maxsize=16)
def sheet_font(size_pt: float, bold: bool, dpi: float) -> ImageFont.FreeTypeFont:
    """The font matplotlib draws the sheet's text with, at `size_pt` on a `dpi` picture."""
    path = font_manager.findfont(font_manager.FontProperties(weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size_pt * dpi / 72)


def fit_text(text: str, width_px: float, font: ImageFont.FreeTypeFont) -> str:
    """`text`, cut with an ellipsis to fit `width_px`: a long class name stays inside its
    column instead of running over its neighbours (the HTML sheet shows it whole)."""
    if len(text) * font.size * WIDEST_EM <= width_px or font.getlength(text) <= width_px:
        return text
    low, high = 0, len(text) - 1  # the longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(text[:middle].rstrip() + ELLIPSIS) <= width_px:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS


def _text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    font: ImageFont.FreeTypeFont,
    anchor: str,
    bold: bool,
) -> PlacedText:
    draw.text(xy, text, font=font, fill=TEXT_COLOR, anchor=anchor)
    x0, y0, x1, y1 = draw.textbbox(xy, text, font=font, anchor=anchor)
    return PlacedText(text, bold, *xy, x0, y0, x1, y1)


def draw_title(image: Image.Image, box: PixelBox, title: str, dpi: float) -> PlacedText:
    """A panel's title over `box`, where matplotlib puts an axes' left title: its baseline
    `axes.titlepad` points above the box, in bold at TITLE_SIZE."""
    baseline = box.top - rcParams["axes.titlepad"] * dpi / 72
    font = sheet_font(TITLE_SIZE, True, dpi)
    return _text(ImageDraw.Draw(image), (box.left, baseline), title, font, "ls", True)


def draw_table(
    image: Image.Image,
    rect: Sequence[float],
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    empty: str,
    widths: Sequence[float] | None,
    dpi: float,
) -> list[PlacedText]:
    """A table at the top of `rect` (figure fractions) of `image`, one `ROW_IN` per row,
    squeezed only if the box is shorter than the rows; the texts as placed, title first."""
    box = PixelBox.of(rect, image.size)
    draw = ImageDraw.Draw(image)
    placed = [draw_title(image, box, title, dpi)]
    if not rows:
        font = sheet_font(FONT_SIZE, False, dpi)
        centre = (box.left + box.width / 2, box.top + 0.2 * box.height)
        return [*placed, _text(draw, centre, empty, font, "mm", False)]
    n_rows = len(rows) + 1
    row = min(ROW_IN * dpi, box.height / n_rows)
    relative = np.asarray(widths if widths is not None else [1.0] * len(header), dtype=float)
    edges = box.left + box.width * np.concatenate([[0.0], np.cumsum(relative / relative.sum())])
    bottom = box.top + n_rows * row
    right = box.left + box.width
    draw.rectangle((box.left, box.top, right, box.top + row), fill=HEADER_COLOR)
    for i in range(n_rows + 1):
        y = round(box.top + i * row)
        draw.line((box.left, y, right, y), fill=LINE_COLOR, width=1)
    for x in np.round(edges):
        draw.line((x, box.top, x, bottom), fill=LINE_COLOR, width=1)
    pad = PAD_PT * dpi / 72
    for i, cells in enumerate([header, *rows]):
        font = sheet_font(FONT_SIZE, i == 0, dpi)
        y = box.top + (i + 0.5) * row
        for x0, x1, text in zip(edges[:-1], edges[1:], cells, strict=True):
            shown = fit_text(str(text), x1 - x0 - pad, font)
            placed.append(_text(draw, ((x0 + x1) / 2, y), shown, font, "mm", i == 0))
    return placed


def draw_text_block(
    image: Image.Image, rect: Sequence[float], title: str, text: str, size_pt: float, dpi: float
) -> list[PlacedText]:
    """Lines of `text` from the top left of `rect` (figure fractions), under `title`."""
    box = PixelBox.of(rect, image.size)
    draw = ImageDraw.Draw(image)
    font = sheet_font(size_pt, False, dpi)
    placed = [draw_title(image, box, title, dpi)]
    ascent, _ = font.getmetrics()
    pitch = LINE_PITCH_EM * size_pt * dpi / 72
    for i, line in enumerate(text.splitlines()):
        baseline = box.top + ascent + i * pitch
        placed.append(_text(draw, (box.left, baseline), line, font, "ls", False))
    return placed
