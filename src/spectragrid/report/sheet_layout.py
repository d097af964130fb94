"""Where the panels of the result sheet go, in inches.

matplotlib's constrained layout measures every artist of every panel twice
(tables included) and took over half of a sheet's rendering time. The sheet's
geometry is fixed (rows of known height, six columns), so the panels are placed
here: each plot panel is measured once, on its own axis labels, tick labels and
title, and shrunk inside its cell by what they need; panels of one row share
their top and bottom margins and panels of one column their left and right
margins, so the plots line up. Tables and text panels need their title only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.figure import Figure

MARGIN_IN = 0.25  # around the whole sheet
GAP_IN = 0.15  # between two cells
PAD_IN = 0.06  # between a panel's outermost label and its cell
TITLE_BAND_IN = 0.3  # a one-line panel title above a table or a text panel


@dataclass(frozen=True)
class Box:
    """A rectangle in inches from the sheet's top left corner."""

    left: float
    top: float
    width: float
    height: float

    def inset(self, left: float, top: float, right: float, bottom: float) -> Box:
        return Box(
            self.left + left,
            self.top + top,
            max(self.width - left - right, 0.1),
            max(self.height - top - bottom, 0.1),
        )


class SheetGrid:
    """Rows of given heights under a band for the sheet's title, six columns."""

    columns = 6

    def __init__(self, width_in: float, title_in: float, heights: Sequence[float]) -> None:
        self.width = width_in
        self.height = title_in + sum(heights) + MARGIN_IN
        self._tops = [title_in + sum(heights[:i]) for i in range(len(heights))]
        self._heights = list(heights)
        self._column = (width_in - 2 * MARGIN_IN) / self.columns

    def cell(self, row: int, start: int, stop: int) -> Box:
        """Grid columns [start, stop) of `row`, less half a gap on each side."""
        half = GAP_IN / 2
        return Box(
            MARGIN_IN + start * self._column + half,
            self._tops[row] + half,
            (stop - start) * self._column - GAP_IN,
            self._heights[row] - GAP_IN,
        )

    def rect(self, box: Box) -> tuple[float, float, float, float]:
        """`box` as matplotlib's figure fraction (left, bottom, width, height)."""
        return (
            box.left / self.width,
            1 - (box.top + box.height) / self.height,
            box.width / self.width,
            box.height / self.height,
        )


def titled(box: Box) -> Box:
    """The part of a cell under a one-line title (tables, text panels)."""
    return box.inset(0, TITLE_BAND_IN, 0, 0)


@dataclass(frozen=True)
class Panel:
    """A plot panel: its cell in the grid (row, column span) and its axes, twins included."""

    row: int
    columns: tuple[int, int]
    axes: tuple[Axes, ...]


def _needs(panel: Panel, renderer: RendererBase, dpi: float) -> tuple[float, ...]:
    """Inches the panel's labels, ticks, legends and title take outside its axes (left,
    top, right, bottom), measured where the axes are now."""
    frame = panel.axes[0].get_window_extent(renderer)
    left = top = right = bottom = 0.0
    for ax in panel.axes:
        if not ax.axison:
            continue
        # a legend placed outside the plot needs its room too
        legend = ax.get_legend()
        extents = [axis.get_tightbbox(renderer) for axis in (ax.xaxis, ax.yaxis)]
        extents.append(legend.get_window_extent(renderer) if legend is not None else None)
        for extent in extents:
            if extent is None:
                continue
            left = max(left, (frame.x0 - extent.x0) / dpi)
            right = max(right, (extent.x1 - frame.x1) / dpi)
            bottom = max(bottom, (frame.y0 - extent.y0) / dpi)
            top = max(top, (extent.y1 - frame.y1) / dpi)
    title = panel.axes[0].title
    if title.get_text():
        # a title wider than its panel overflows sideways; only its height is made room for
        top = max(top, (title.get_window_extent(renderer).y1 - frame.y1) / dpi)
    return left, top, right, bottom


def place_panels(
    fig: Figure, grid: SheetGrid, panels: Sequence[Panel], renderer: RendererBase
) -> None:
    """Shrink each plot panel inside its cell by what its labels need, shared by row and
    column so that the plots line up."""
    by_row: dict[int, list[tuple[float, ...]]] = {}
    by_column: dict[tuple[int, int], list[tuple[float, ...]]] = {}
    for panel in panels:
        box = grid.cell(panel.row, *panel.columns)
        for ax in panel.axes:
            ax.set_position(grid.rect(box))
        need = _needs(panel, renderer, fig.dpi)
        by_row.setdefault(panel.row, []).append(need)
        by_column.setdefault(panel.columns, []).append(need)
    for panel in panels:
        row, column = by_row[panel.row], by_column[panel.columns]
        left = max(n[0] for n in column) + PAD_IN
        top = max(n[1] for n in row) + PAD_IN
        right = max(n[2] for n in column) + PAD_IN
        bottom = max(n[3] for n in row) + PAD_IN
        box = grid.cell(panel.row, *panel.columns).inset(left, top, right, bottom)
        for ax in panel.axes:
            ax.set_position(grid.rect(box))
