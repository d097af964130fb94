"""The review sheet of one issues file, as a self-contained HTML page.

It lists every flagged sample (rank, given and suggested class, label
quality, given and, where known, true full truth: `issues.review.review_table`)
and plots the most suspicious spectra against the typical spectrum of their
given class and of the class cleanlab suggests, so a person can judge the
label. The CSV the reviewer fills in is written beside it, with the same stem.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from spectragrid.data.clean_file import CleanData
from spectragrid.data.image_clean import ImageData
from spectragrid.data.targets import Target
from spectragrid.issues.review import (
    issues_coordinates,
    issues_name,
    review_table,
    write_review_csv,
)
from spectragrid.report.htmlkit import (
    BASE_CSS,
    Cell,
    esc,
    filter_bar,
    image,
    integer,
    num,
    page,
    render_table,
    text,
    write_atomic,
)
from spectragrid.report.review_images import THUMBNAIL_CSS, thumbnails_html
from spectragrid.train.label_action import read_issues

REVIEW_PLOTTED = 6
# One panel (a flagged sample on one channel), inches, and the room around the panels:
# fixed rather than matplotlib's constrained layout, which took half of the figure's
# time, since every panel has the same kind of labels (a title, intensities, at the
# bottom the wavelength).
PANEL_IN = (4.2, 1.9)
MARGIN_IN = {"left": 0.6, "right": 0.12, "top": 0.3, "bottom": 0.5, "wspace": 0.6, "hspace": 0.55}


def _margins(width: float, height: float, n_rows: int, n_columns: int) -> dict[str, float]:
    """MARGIN_IN as the figure fractions and gaps (fractions of a panel) of a gridspec."""
    m = MARGIN_IN
    panel_w = (width - m["left"] - m["right"] - (n_columns - 1) * m["wspace"]) / n_columns
    panel_h = (height - m["top"] - m["bottom"] - (n_rows - 1) * m["hspace"]) / n_rows
    return {
        "left": m["left"] / width,
        "right": 1 - m["right"] / width,
        "top": 1 - m["top"] / height,
        "bottom": m["bottom"] / height,
        "wspace": m["wspace"] / panel_w,
        "hspace": m["hspace"] / panel_h,
    }


def _spectra_png(
    table: pd.DataFrame,
    clean: CleanData,
    channels: Sequence[str],
    target: Target,
    n_plotted: int,
) -> bytes | None:
    """Top flagged spectra (black) against the median and 10-90 % band of their given class
    (grey) and the median of the suggested class (dashed), one panel per channel."""
    ids = clean.table["sample_id"].astype(str).to_numpy()
    classes = target.encode(clean.table["full_truth"].astype(str))
    top = table.head(n_plotted)
    rows = [np.flatnonzero(ids == s) for s in top["sample_id"].astype(str)]
    if not top.shape[0] or not any(len(r) for r in rows):
        return None
    names = list(target.classes)
    # The band of a class on a channel, computed once: the rows share their classes.
    # None for a class the clean file has no sample of (or no class: index -1).
    bands: dict[tuple[int, str], np.ndarray | None] = {}

    def band(class_index: int, channel: str) -> np.ndarray | None:
        if (class_index, channel) not in bands:
            members = clean.spectra[channel][classes == class_index]
            bands[class_index, channel] = (
                np.quantile(members, [0.1, 0.5, 0.9], axis=0)
                if class_index >= 0 and len(members)
                else None
            )
        return bands[class_index, channel]

    n_rows, n_columns = len(top), len(channels)
    width, height = PANEL_IN[0] * n_columns, PANEL_IN[1] * n_rows + 0.6
    with rc_context({"text.parse_math": False, "font.size": 8}):
        fig = Figure(figsize=(width, height), dpi=90)
        FigureCanvasAgg(fig)
        axes = fig.subplots(
            n_rows, n_columns, squeeze=False, gridspec_kw=_margins(width, height, n_rows, n_columns)
        )
        for i, (r, where) in enumerate(zip(top.itertuples(index=False), rows, strict=True)):
            given_i = names.index(r.given_label) if r.given_label in names else -1
            suggested_i = names.index(r.suggested_label) if r.suggested_label in names else -1
            for j, channel in enumerate(channels):
                ax = axes[i, j]
                spectra = clean.spectra[channel]
                wl = clean.wavelengths[channel]
                given = band(given_i, channel)
                if given is not None:
                    low, median, high = given
                    ax.fill_between(wl, low, high, color="#cccccc", lw=0)
                    ax.plot(wl, median, color="grey", lw=1, label=f"given {r.given_label}")
                suggested = band(suggested_i, channel)
                if suggested is not None:
                    ax.plot(
                        wl,
                        suggested[1],
                        color="tab:blue",
                        ls="--",
                        lw=1,
                        label=f"suggested {r.suggested_label}",
                    )
                if len(where):
                    ax.plot(wl, spectra[where[0]], color="black", lw=1, label=str(r.sample_id))
                ax.set_title(f"#{r.rank} {r.sample_id} · {channel}", fontsize=8)
                if i == 0 and j == 0:
                    ax.legend(fontsize=6.5, loc="upper right")
                if i == len(top) - 1:
                    ax.set_xlabel("wavelength (nm)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def write_review_sheet(
    path: Path,
    out_dir: Path,
    given: pd.Series | None,
    true_values: pd.Series | None,
    target: Target | None,
    clean: CleanData | ImageData | None = None,
    channels: Sequence[str] = (),
) -> Path:
    """One issues file's review sheet (HTML, self-contained) in `out_dir`; returns it.
    With an image data set's `clean`, the flagged images are shown as thumbnails."""
    coords = issues_coordinates(path)
    table = review_table(read_issues(path), given, true_values, target)
    plot = ""
    if isinstance(clean, ImageData):
        plot = thumbnails_html(table, clean)
    elif clean is not None and target is not None and channels:
        png = _spectra_png(table, clean, list(channels), target, REVIEW_PLOTTED)
        if png is not None:
            plot = (
                f"<h2>The {min(REVIEW_PLOTTED, len(table))} most suspicious spectra</h2>"
                '<p class="note">Black: the flagged sample. Grey: median and 10–90 % band of '
                "its given class. Dashed: median of the class cleanlab suggests.</p>"
                + image(png, "most suspicious spectra")
            )
    headers = ["rank", "sample", "given", "suggested", "label quality"]
    headers += ["given full truth"] if given is not None else []
    has_truth = "true_full_truth" in table
    headers += ["true full truth"] if has_truth else []
    headers += ["truly mislabelled"] if "truly_mislabelled" in table else []
    rows = []
    for r in table.to_dict("records"):
        row: list[Cell] = [
            integer(r["rank"]),
            text(r["sample_id"]),
            text(r["given_label"]),
            text(r["suggested_label"]),
            num(r["label_quality"]),
        ]
        row += [text(r["given_full_truth"])] if given is not None else []
        row += [text(r["true_full_truth"])] if has_truth else []
        row += [text(r["truly_mislabelled"])] if "truly_mislabelled" in table else []
        rows.append(row)
    title = f"Label issues: {coords['target']} · {coords['channels']} · seed {coords['seed']}"
    body = [
        f"<header><h1>{esc(title)}</h1><div class='meta'>{len(table)} flagged samples · "
        f"{esc(path.as_posix())}</div></header>",
        plot,
        "<h2>Flagged samples, most suspicious first</h2>",
        filter_bar("review-table", len(rows)),
        render_table(
            headers,
            rows,
            "review-table",
            sortable=True,
            empty="no sample flagged",
            facets=("given", "suggested", "truly mislabelled"),
        ),
    ]
    out = Path(out_dir) / f"{issues_name(coords)}.html"
    write_atomic(out, page(title, body, css=BASE_CSS + (THUMBNAIL_CSS if plot else "")))
    write_review_csv(table, out.with_suffix(".csv"))
    return out
