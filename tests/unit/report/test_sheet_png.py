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


def test_axes_matplotlib_ticks_get_at_most_five_intervals_and_epochs_stay_whole() -> None:
    import numpy as np
    import pandas as pd
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator

    from spectragrid.report.sheet_png import TICK_BINS, draw_history, fewer_ticks

    # a panel as tall as the sheet's (about 5 in): matplotlib alone puts 8-10 ticks here
    fig = Figure(figsize=(6.5, 5.2), dpi=DPI)
    FigureCanvasAgg(fig)
    scores = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    scores.plot([0.0, 1.0], [0.0, 287.0])
    scores.set_xticks([0, 1], ["first", "second"])  # placed by the panel: kept
    fewer_ticks(scores)
    low, high = scores.get_ylim()
    shown = [t for t in scores.get_yticks() if low <= t <= high]
    assert 3 <= len(shown) <= TICK_BINS + 1
    assert isinstance(scores.xaxis.get_major_locator(), FixedLocator)

    # 23 epochs of a 7-class history: whole-number epoch ticks, still few
    curves = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    epochs = np.arange(24)
    history = pd.DataFrame(
        {
            "epoch": epochs,
            "train_loss": np.r_[np.nan, np.linspace(1.9, 0.4, 23)],
            "val_loss": np.linspace(2.0, 0.6, 24),
            "val_accuracy": np.linspace(1 / 7, 0.8, 24),
        }
    )
    # and one epoch (epochs 0 and 1), where matplotlib alone ticks every 0.2
    short = fig.add_axes((0.1, 0.1, 0.8, 0.8))
    for ax, frame, best in ((curves, history, 17), (short, history.head(2), 1)):
        draw_history(ax, frame, best_epoch=best)
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        assert len(ticks) <= TICK_BINS + 1
