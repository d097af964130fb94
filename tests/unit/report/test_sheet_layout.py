"""The sheet's own layout: every panel's labels stay inside its cell, panels line up,
and tables keep their rows at a fixed height."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from spectragrid.report.sheet_layout import Box, Panel, SheetGrid, place_panels, titled
from spectragrid.report.sheet_png import draw_history
from spectragrid.report.sheet_table import ROW_IN, draw_table

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


def _table_texts(ax) -> list:
    return [t for t in ax.texts if t.get_text()]


@pytest.mark.parametrize("height_in", [3.0, 0.6])
def test_a_table_keeps_its_rows_at_a_fixed_height_unless_the_panel_is_too_short(
    height_in: float,
) -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [height_in + 0.45])
    fig, canvas = _figure(grid)
    box = titled(grid.cell(0, 0, 6))
    ax = fig.add_axes(grid.rect(box))
    rows = [["a", "1"], ["b", "2"], ["c", "3"]]
    draw_table(ax, "Title", ["name", "value"], rows, "empty", box.height, widths=[3, 1])
    texts = _table_texts(ax)
    assert [t.get_text() for t in texts] == ["name", "value", "a", "1", "b", "2", "c", "3"]
    assert texts[0].get_fontweight() == "bold" and texts[2].get_fontweight() == "normal"
    centres = np.array([t.get_position()[1] for t in texts[::2]])
    step = -np.diff(centres)
    assert np.allclose(step, step[0])
    if box.height >= 4 * ROW_IN:
        assert step[0] * box.height == pytest.approx(ROW_IN)
    else:  # squeezed: the four rows fill the panel
        assert step[0] == pytest.approx(0.25)
    # the first column takes three quarters of the width
    assert texts[0].get_position()[0] == pytest.approx(0.375)
    assert texts[1].get_position()[0] == pytest.approx(0.875)
    canvas.draw()


def test_an_empty_table_says_so() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [2.0])
    fig, _ = _figure(grid)
    ax = fig.add_axes(grid.rect(titled(grid.cell(0, 0, 3))))
    draw_table(ax, "Errors", ["a", "b"], [], "no errors", 1.5)
    assert [t.get_text() for t in _table_texts(ax)] == ["no errors"]


def test_a_text_too_long_for_its_column_is_cut_with_an_ellipsis_and_stays_inside() -> None:
    grid = SheetGrid(WIDTH_IN, 0.5, [1.5])
    fig, canvas = _figure(grid)
    box = titled(grid.cell(0, 0, 2))
    ax = fig.add_axes(grid.rect(box))
    header = ["class", "precision at cutoff", "n"]
    rows = [[LONG * 2, "0.5", "12"], ["OK", "0.25", "3"]]
    draw_table(ax, "Per class", header, rows, "none", box.height, widths=[1.0, 1.0, 0.5])
    canvas.draw()
    texts = _table_texts(ax)
    # what fits is left whole: the header and every short cell
    assert [t.get_text() for t in texts[:3]] == header
    assert [t.get_text() for t in texts[6:]] == rows[1]
    cut = texts[3].get_text()
    assert cut.endswith("…") and LONG.startswith(cut[:-1].rstrip()) and len(cut) > 10
    renderer = canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    column = frame.x0 + frame.width * np.array([0.0, 0.4, 0.8, 1.0])
    for text in texts:
        x = text.get_position()[0]
        index = int(np.searchsorted([0.4, 0.8], x))
        extent = text.get_window_extent(renderer)
        assert column[index] <= extent.x0 and extent.x1 <= column[index + 1], text.get_text()


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


def test_a_table_on_the_sheet_s_text_layer_lands_where_it_would_on_its_own_axes() -> None:
    """The sheet draws its tables on one layer over the figure (`rect=`) instead of an axes
    each: every text, the title included, sits on the same pixels either way."""
    grid = SheetGrid(WIDTH_IN, 0.5, [3.0])
    box = titled(grid.cell(0, 1, 2))
    rows = [["a", "1"], [LONG * 2, "22"], ["c", "333"]]
    placed = []
    for own_axes in (True, False):
        fig, canvas = _figure(grid)
        if own_axes:
            ax = fig.add_axes(grid.rect(box))
            draw_table(ax, "Title", ["name", "value"], rows, "empty", box.height, [3, 1])
            (title,) = (
                c for c in ax.get_children() if isinstance(c, Text) and c.get_text() == "Title"
            )
            texts = [title, *_table_texts(ax)]
        else:
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            ax.set_axis_off()
            draw_table(
                ax,
                "Title",
                ["name", "value"],
                rows,
                "empty",
                box.height,
                [3, 1],
                rect=grid.rect(box),
            )
            texts = _table_texts(ax)
        canvas.draw()
        renderer = canvas.get_renderer()
        placed.append([(t.get_text(), t.get_window_extent(renderer).bounds) for t in texts])
    on_axes, on_layer = placed
    assert [text for text, _ in on_layer] == [text for text, _ in on_axes]
    assert on_layer[0][0] == "Title" and on_layer[5][0].endswith("…")
    for (_, a), (_, b) in zip(on_axes, on_layer, strict=True):
        assert np.allclose(a, b, atol=0.01)
