"""The sheet's own layout: every panel's labels stay inside its cell, panels line up,
and tables keep their rows at a fixed height."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from spectragrid.report.sheet_layout import Box, Panel, SheetGrid, place_panels, titled
from spectragrid.report.sheet_png import draw_history
from spectragrid.report.sheet_table import LINE_COLOR, ROW_IN, draw_table, draw_text_block

WIDTH_IN = 20.0  # the sheet's
LONG = "a class name far longer than any of the demo's"


def _figure(grid: SheetGrid) -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=(grid.width, grid.height), dpi=100)
    return fig, FigureCanvasAgg(fig)


def _pixels(grid: SheetGrid, box: Box, dpi: float = 100) -> tuple[float, ...]:
    """`box` as (x0, y0, x1, y1) in the canvas's pixels (origin bottom left)."""
    return (
        box.left * dpi,
        (grid.height - box.top - box.height) * dpi,
        (box.left + box.width) * dpi,
        (grid.height - box.top) * dpi,
    )


def _panels(fig: Figure, grid: SheetGrid) -> list[Panel]:
    """Two rows of three panels: class names on the left of the first, a twin axis on the
    right of the last, a two-line title in the middle of the second row."""
    panels = []
    for row in range(2):
        for start in (0, 2, 4):
            ax = fig.add_axes(grid.rect(grid.cell(row, start, start + 2)))
            ax.plot([0, 1], [0, 1])
            ax.set_xlabel("x label")
            ax.set_ylabel("y label")
            ax.set_title("a title")
            twins = []
            if row == 0 and start == 0:
                ax.set_yticks([0, 1], [LONG, "short"])
            if row == 0 and start == 4:
                twin = ax.twinx()
                twin.set_ylabel("right-hand label")
                twins.append(twin)
            if row == 1 and start == 2:
                ax.set_title("a title\non two lines")
            panels.append(Panel(row, (start, start + 2), (ax, *twins)))
    return panels


def test_every_panel_with_its_labels_fits_in_its_cell_and_panels_line_up() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [4.0, 4.0])
    fig, canvas = _figure(grid)
    panels = _panels(fig, grid)
    renderer = canvas.get_renderer()
    place_panels(fig, grid, panels, renderer)

    for panel in panels:
        x0, y0, x1, y1 = _pixels(grid, grid.cell(panel.row, *panel.columns))
        for ax in panel.axes:
            extent = ax.get_tightbbox(renderer)
            assert extent.x0 >= x0 - 0.5 and extent.x1 <= x1 + 0.5, (panel.columns, extent)
            assert extent.y0 >= y0 - 0.5 and extent.y1 <= y1 + 0.5, (panel.row, extent)

    frames = {(p.row, p.columns[0]): p.axes[0].get_position() for p in panels}
    for row in range(2):
        tops = {round(frames[row, c].y1, 6) for c in (0, 2, 4)}
        bottoms = {round(frames[row, c].y0, 6) for c in (0, 2, 4)}
        assert len(tops) == 1 and len(bottoms) == 1, (row, tops, bottoms)
    for column in (0, 2, 4):
        lefts = {round(frames[r, column].x0, 6) for r in range(2)}
        rights = {round(frames[r, column].x1, 6) for r in range(2)}
        assert len(lefts) == 1 and len(rights) == 1, (column, lefts, rights)
    # the long class name takes room from its own column only
    indent = [frames[0, c].x0 - grid.rect(grid.cell(0, c, c + 2))[0] for c in (0, 2, 4)]
    assert indent[0] > 2 * indent[1] and indent[1] == pytest.approx(indent[2], abs=1e-3)
    # the twin's labels on the right of the last column
    outdent = [
        grid.rect(grid.cell(0, c, c + 2))[0]
        + grid.rect(grid.cell(0, c, c + 2))[2]
        - frames[0, c].x1
        for c in (0, 2, 4)
    ]
    assert outdent[2] > 2 * outdent[1]
    # the two-line title lowers the top of its whole row
    assert frames[1, 0].y1 < grid.rect(grid.cell(1, 0, 2))[1] + grid.rect(grid.cell(1, 0, 2))[3]
    first_row_gap = grid.rect(grid.cell(0, 2, 4))[1] + grid.rect(grid.cell(0, 2, 4))[3]
    second_row_gap = grid.rect(grid.cell(1, 2, 4))[1] + grid.rect(grid.cell(1, 2, 4))[3]
    assert second_row_gap - frames[1, 2].y1 > first_row_gap - frames[0, 2].y1


DPI = 100


def _picture(grid: SheetGrid) -> Image.Image:
    return Image.new("RGB", (round(grid.width * DPI), round(grid.height * DPI)), "white")


def _line_rows(picture: Image.Image, x: int) -> list[int]:
    """The pixel rows where column `x` crosses a table's horizontal grid line."""
    column = np.asarray(picture)[:, x, :].astype(int)
    line = np.array([int(LINE_COLOR[i : i + 2], 16) for i in (1, 3, 5)])
    return [int(y) for y in np.flatnonzero(np.abs(column - line).sum(axis=1) == 0)]


@pytest.mark.parametrize("height_in", [3.0, 0.6])
def test_a_table_keeps_its_rows_at_a_fixed_height_unless_the_panel_is_too_short(
    height_in: float,
) -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [height_in + 0.45])
    picture = _picture(grid)
    box = titled(grid.cell(0, 0, 6))
    rows = [["a", "1"], ["b", "2"], ["c", "3"]]
    placed = draw_table(
        picture, grid.rect(box), "Title", ["name", "value"], rows, "empty", [3, 1], DPI
    )
    title, *texts = placed
    assert title.text == "Title" and title.bold
    assert [t.text for t in texts] == ["name", "value", "a", "1", "b", "2", "c", "3"]
    assert texts[0].bold and not texts[2].bold
    centres = np.array([t.y for t in texts[::2]])
    step = np.diff(centres)
    assert np.allclose(step, step[0])
    # the grid lines, counted in the picture: five, one row apart, from the box's top
    lines = _line_rows(picture, round(grid.rect(box)[0] * picture.width) + 5)
    top = (1 - grid.rect(box)[1] - grid.rect(box)[3]) * picture.height
    row = np.diff(lines)
    assert len(lines) == 5 and abs(lines[0] - top) <= 1
    if box.height >= 4 * ROW_IN:
        assert np.allclose(row, ROW_IN * DPI, atol=1)
    else:  # squeezed: the four rows fill the panel
        assert np.allclose(row, box.height * DPI / 4, atol=1)
    # the first column takes three quarters of the width
    left, width = grid.rect(box)[0] * picture.width, grid.rect(box)[2] * picture.width
    assert texts[0].x == pytest.approx(left + 0.375 * width)
    assert texts[1].x == pytest.approx(left + 0.875 * width)
    # the title's baseline is where matplotlib puts an axes' left title: the pad above
    assert title.x0 == pytest.approx(left, abs=2) and title.y1 < top


def test_an_empty_table_says_so() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [2.0])
    picture = _picture(grid)
    rect = grid.rect(titled(grid.cell(0, 0, 3)))
    placed = draw_table(picture, rect, "Errors", ["a", "b"], [], "no errors", None, DPI)
    assert [t.text for t in placed] == ["Errors", "no errors"]


def test_a_text_too_long_for_its_column_is_cut_with_an_ellipsis_and_stays_inside() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [1.5])
    picture = _picture(grid)
    rect = grid.rect(titled(grid.cell(0, 0, 2)))
    header = ["class", "precision at cutoff", "n"]
    rows = [[LONG * 2, "0.5", "12"], ["OK", "0.25", "3"]]
    _, *texts = draw_table(picture, rect, "Per class", header, rows, "none", [1.0, 1.0, 0.5], DPI)
    # what fits is left whole: the header and every short cell
    assert [t.text for t in texts[:3]] == header
    assert [t.text for t in texts[6:]] == rows[1]
    cut = texts[3].text
    assert cut.endswith("…") and LONG.startswith(cut[:-1].rstrip()) and len(cut) > 10
    left, width = rect[0] * picture.width, rect[2] * picture.width
    column = left + width * np.array([0.0, 0.4, 0.8, 1.0])
    for index, text in enumerate(texts):
        assert column[index % 3] <= text.x0 and text.x1 <= column[index % 3 + 1], text.text


def test_a_text_block_puts_each_line_under_the_last() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [2.0])
    picture = _picture(grid)
    rect = grid.rect(titled(grid.cell(0, 0, 6)))
    title, *lines = draw_text_block(picture, rect, "Definitions", "one\ntwo\nthree", 8.5, DPI)
    assert title.text == "Definitions" and [t.text for t in lines] == ["one", "two", "three"]
    top = (1 - rect[1] - rect[3]) * picture.height
    assert title.y1 <= top <= lines[0].y0
    baselines = np.diff([t.y for t in lines])
    assert np.allclose(baselines, baselines[0]) and baselines[0] > 8.5 * DPI / 72


def test_the_learning_curves_legend_sits_between_the_title_and_the_plot() -> None:
    """Every curve spans the whole epoch axis: a legend inside the plot hides some."""
    history = pd.DataFrame(
        {
            "epoch": range(30),
            "train_loss": np.linspace(1.0, 0.1, 30),
            "val_loss": np.linspace(1.1, 0.3, 30),
            "val_accuracy": np.linspace(0.3, 0.9, 30),
            "val_balanced_accuracy": np.linspace(0.3, 0.85, 30),
            "val_macro_f1": np.linspace(0.2, 0.8, 30),
        }
    )
    grid = SheetGrid(WIDTH_IN, 0.5, [4.4])
    fig, canvas = _figure(grid)
    ax = fig.add_axes(grid.rect(grid.cell(0, 4, 6)))
    before = set(fig.axes)
    draw_history(ax, history, 20)
    twins = [other for other in fig.axes if other not in before]
    renderer = canvas.get_renderer()
    place_panels(fig, grid, [Panel(0, (4, 6), (ax, *twins))], renderer)
    canvas.draw()
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 6  # three metrics, two losses, the best epoch
    box = legend.get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    title = ax.title.get_window_extent(renderer)
    assert frame.y1 <= box.y0 and box.y1 <= title.y0
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1
    _, y0, _, y1 = _pixels(grid, grid.cell(0, 4, 6))
    assert y0 <= frame.y0 and title.y1 <= y1 + 0.5
