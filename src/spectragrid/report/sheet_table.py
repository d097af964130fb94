"""A table of text drawn straight onto a panel of the result sheet.

matplotlib's `Axes.table` measures every cell's text to size and place it,
and measures it again whenever the figure asks for extents; on the sheet's
five tables that was about a quarter of the rendering time. The sheet's tables
have rows of a fixed height and columns of given relative widths, so each cell's
text is simply centred in its box, with the grid drawn as one set of lines.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import rcParams
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.collections import LineCollection
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.transforms import (
    Bbox,
    BboxTransformTo,
    ScaledTranslation,
    Transform,
    TransformedBbox,
)

ROW_IN = 0.24  # one table row
FONT_SIZE = 8
# No character of the sheet's font (DejaVu Sans, bold included) is wider than this, in
# ems: a text that fits its column at this width is drawn without being measured
# (measuring every cell is what made matplotlib's own tables slow).
WIDEST_EM = 1.0
PAD_PT = 4.0  # kept free in each cell, half on each side
ELLIPSIS = "…"
LINE_COLOR = "#cccccc"
HEADER_COLOR = "#eeeeee"


def draw_table(
    ax: Axes,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    empty: str,
    height_in: float,
    widths: Sequence[float] | None = None,
    *,
    rect: tuple[float, float, float, float] | None = None,
) -> None:
    """A table anchored at the top of its axes (`height_in` tall), one `ROW_IN` per row,
    squeezed only if the axes are shorter than the rows. With `rect` (left, bottom, width,
    height in figure fractions) the table fills that box of `ax`, a layer over the whole
    figure that holds every table: an axes of its own per table cost more to make than
    the table's text to draw."""
    if rect is None:
        ax.set_axis_off()
        ax.set_title(title, loc="left")
        transform = ax.transAxes
        width = ax.get_position().width
    else:
        transform = box_transform(ax, rect)
        panel_title(ax, transform, title)
        width = rect[2]
    if not rows:
        ax.text(0.5, 0.8, empty, transform=transform, ha="center", va="center")
        return
    n_rows = len(rows) + 1
    row = min(ROW_IN / max(height_in, ROW_IN), 1.0 / n_rows)
    relative = np.asarray(widths if widths is not None else [1.0] * len(header), dtype=float)
    edges = np.concatenate([[0.0], np.cumsum(relative / relative.sum())])
    bottom = 1.0 - n_rows * row
    ax.add_patch(
        Rectangle(
            (0.0, 1.0 - row),
            1.0,
            row,
            transform=transform,
            facecolor=HEADER_COLOR,
            edgecolor="none",
        )
    )
    levels = 1.0 - row * np.arange(n_rows + 1)
    lines = [((0.0, y), (1.0, y)) for y in levels] + [((x, bottom), (x, 1.0)) for x in edges]
    ax.add_collection(LineCollection(lines, colors=LINE_COLOR, linewidths=1.0, transform=transform))
    centres = (edges[:-1] + edges[1:]) / 2
    column_pt = np.diff(edges) * width * ax.figure.get_figwidth() * 72
    renderer = ax.figure.canvas.get_renderer()
    for i, cells in enumerate([header, *rows]):
        y = 1.0 - (i + 0.5) * row
        font = FontProperties(size=FONT_SIZE, weight="bold" if i == 0 else "normal")
        for x, width_pt, text in zip(centres, column_pt, cells, strict=True):
            ax.text(
                x,
                y,
                fit_text(str(text), width_pt - PAD_PT, font, renderer),
                transform=transform,
                ha="center",
                va="center",
                fontproperties=font,
            )


def box_transform(ax: Axes, rect: tuple[float, float, float, float]) -> Transform:
    """Coordinates 0..1 across the box `rect` (figure fractions) of the figure of `ax`."""
    return BboxTransformTo(TransformedBbox(Bbox.from_bounds(*rect), ax.figure.transFigure))


def panel_title(ax: Axes, transform: Transform, title: str) -> None:
    """`title` over the box of `transform` where `set_title(loc="left")` would put it over
    an axes of that box: its baseline `axes.titlepad` points above the top, in the title
    font."""
    pad = ScaledTranslation(0, rcParams["axes.titlepad"] / 72, ax.figure.dpi_scale_trans)
    color = rcParams["axes.titlecolor"]
    ax.text(
        0,
        rcParams["axes.titley"] if rcParams["axes.titley"] is not None else 1.0,
        title,
        transform=transform + pad,
        ha="left",
        va="baseline",
        fontsize=rcParams["axes.titlesize"],
        fontweight=rcParams["axes.titleweight"],
        color=rcParams["text.color"] if color == "auto" else color,
    )


def fit_text(text: str, width_pt: float, font: FontProperties, renderer: RendererBase) -> str:
    """`text`, cut with an ellipsis to fit `width_pt`: a long class name stays inside its
    column instead of running over its neighbours (the HTML sheet shows it whole)."""
    if len(text) * font.get_size_in_points() * WIDEST_EM <= width_pt:
        return text

    def width(candidate: str) -> float:
        pixels, _, _ = renderer.get_text_width_height_descent(candidate, font, ismath=False)
        return pixels * 72 / renderer.points_to_pixels(72)

    if width(text) <= width_pt:
        return text
    low, high = 0, len(text) - 1  # the longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if width(text[:middle].rstrip() + ELLIPSIS) <= width_pt:
            low = middle
        else:
            high = middle - 1
    return text[:low].rstrip() + ELLIPSIS
