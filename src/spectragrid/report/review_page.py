"""The label-issues part of the summary: how the flagged sets agree with each other and
with every model of the grid, and one review sheet per label-issues file.

A review sheet lists every flagged sample (rank, given and suggested class,
label quality, given and, where known, true full truth) and plots the most
suspicious spectra against the typical spectrum of their given class and of
the class cleanlab suggests, so a person can judge the label.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.data.targets import Target
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
from spectragrid.report.summary_tables import parse_issues_path, read_issues

AGREEMENT_COLUMNS: tuple[str, ...] = (
    "target",
    "channels",
    "seed",
    "k",
    "model",
    "n_flagged",
    "n_predicted",
    "flagged_model_disagrees",
    "flagged_model_suggests",
    "unflagged_model_disagrees",
)
OVERLAP_COLUMNS: tuple[str, ...] = (
    "target",
    "a",
    "b",
    "n_a",
    "n_b",
    "n_both",
    "jaccard",
)
REVIEW_PLOTTED = 6


def issues_name(coords: Mapping) -> str:
    """File-name stem of an issues file's review sheet; coordinates are names that match
    the workflow's wildcard pattern, so the stem is a safe file name."""
    return f"issues_{coords['target']}_{coords['channels']}_s{coords['seed']}_k{coords['k']}"


def model_agreement(
    issues_paths: Iterable[Path], cells: pd.DataFrame, base_dir: Path
) -> pd.DataFrame:
    """Per label-issues file and per model of the grid (its raw cells' out-of-fold test
    predictions): the share of flagged samples whose given label the model disagrees with,
    the share where it predicts cleanlab's suggested class, and, for contrast, the share of
    unflagged samples it disagrees with."""
    rows = []
    raw = cells[cells["labels"] == "raw"] if not cells.empty else cells
    for path in map(Path, issues_paths):
        coords = parse_issues_path(path)
        issues = read_issues(path)
        flagged = set(issues["sample_id"].astype(str))
        suggested = dict(
            zip(issues["sample_id"].astype(str), issues["suggested_label"].astype(str), strict=True)
        )
        if raw.empty:
            continue
        mine = raw[
            (raw["target"] == coords["target"])
            & (raw["channels"] == coords["channels"])
            & (raw["seed"] == coords["seed"])
            & (raw["k"] == coords["k"])
        ]
        for model, group in mine.groupby("model", sort=True):
            oof = _read_predictions(group, base_dir)
            if oof is None:
                continue
            classes = np.asarray(json.loads(group["classes"].iloc[0]), dtype=object)
            ids = oof["sample_id"].astype(str).to_numpy()
            is_flagged = np.isin(ids, list(flagged))
            disagree = oof["pred_index"].to_numpy() != oof["label_index"].to_numpy()
            predicted = classes[oof["pred_index"].to_numpy()]
            says = np.array([suggested.get(i) for i in ids], dtype=object) == predicted
            rows.append(
                {
                    **coords,
                    "model": model,
                    "n_flagged": len(flagged),
                    "n_predicted": int(is_flagged.sum()),
                    "flagged_model_disagrees": _mean(disagree[is_flagged]),
                    "flagged_model_suggests": _mean(says[is_flagged]),
                    "unflagged_model_disagrees": _mean(disagree[~is_flagged]),
                }
            )
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def _read_predictions(group: pd.DataFrame, base_dir: Path) -> pd.DataFrame | None:
    parts = []
    for relative in group["predictions"].dropna():
        try:
            parts.append(
                pd.read_parquet(
                    Path(base_dir) / str(relative),
                    columns=["sample_id", "label_index", "pred_index"],
                )
            )
        except (OSError, ValueError, KeyError):
            continue
    return pd.concat(parts, ignore_index=True) if parts else None


def flagged_overlap(issues_paths: Iterable[Path]) -> pd.DataFrame:
    """Per target, every pair of its label-issues files (channel sets, seeds): flagged
    counts, the count flagged by both and the Jaccard index."""
    sets: dict[str, list[tuple[str, set[str]]]] = {}
    for path in map(Path, issues_paths):
        coords = parse_issues_path(path)
        label = f"{coords['channels']} s{coords['seed']} k{coords['k']}"
        flagged = set(read_issues(path)["sample_id"].astype(str))
        sets.setdefault(coords["target"], []).append((label, flagged))
    rows = []
    for target, entries in sorted(sets.items()):
        for (a, fa), (b, fb) in itertools.combinations(sorted(entries, key=lambda e: e[0]), 2):
            union = fa | fb
            rows.append(
                {
                    "target": target,
                    "a": a,
                    "b": b,
                    "n_a": len(fa),
                    "n_b": len(fb),
                    "n_both": len(fa & fb),
                    "jaccard": len(fa & fb) / len(union) if union else math.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(OVERLAP_COLUMNS))


def review_table(
    issues: pd.DataFrame,
    given: pd.Series | None,
    true_values: pd.Series | None,
    target: Target | None,
) -> pd.DataFrame:
    """The flagged samples by rank, with their given (and true) full truth and whether the
    truth says the given class is wrong."""
    table = issues.sort_values("rank", kind="stable").reset_index(drop=True).copy()
    ids = table["sample_id"].astype(str)
    table["given_full_truth"] = ids.map(given) if given is not None else None
    if true_values is not None:
        table["true_full_truth"] = ids.map(true_values)
        if target is not None:
            given_class = target.encode(table["given_full_truth"])
            true_class = target.encode(table["true_full_truth"])
            known = (given_class >= 0) & (true_class >= 0)
            table["truly_mislabelled"] = np.where(
                known, np.where(given_class != true_class, "yes", "no"), ""
            )
    return table


def _spectra_png(
    table: pd.DataFrame,
    clean,
    channels: Sequence[str],
    target: Target,
    n_plotted: int,
) -> bytes | None:
    """Top flagged spectra (black) against the median and 10-90 % band of their given class
    (grey) and the median of the suggested class (dashed), one panel per channel."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ids = clean.table["sample_id"].astype(str).to_numpy()
    classes = target.encode(clean.table["full_truth"].astype(str))
    top = table.head(n_plotted)
    rows = [np.flatnonzero(ids == s) for s in top["sample_id"].astype(str)]
    if not top.shape[0] or not any(len(r) for r in rows):
        return None
    names = list(target.classes)
    with rc_context({"text.parse_math": False, "font.size": 8}):
        fig = Figure(
            figsize=(4.2 * len(channels), 1.9 * len(top) + 0.6), dpi=90, layout="constrained"
        )
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(top), len(channels), squeeze=False)
        for i, (r, where) in enumerate(zip(top.itertuples(index=False), rows, strict=True)):
            given_i = names.index(r.given_label) if r.given_label in names else -1
            suggested_i = names.index(r.suggested_label) if r.suggested_label in names else -1
            for j, channel in enumerate(channels):
                ax = axes[i, j]
                spectra = clean.spectra[channel]
                wl = clean.wavelengths[channel]
                if given_i >= 0 and (classes == given_i).any():
                    band = np.quantile(spectra[classes == given_i], [0.1, 0.5, 0.9], axis=0)
                    ax.fill_between(wl, band[0], band[2], color="#cccccc", lw=0)
                    ax.plot(wl, band[1], color="grey", lw=1, label=f"given {r.given_label}")
                if suggested_i >= 0 and (classes == suggested_i).any():
                    median = np.median(spectra[classes == suggested_i], axis=0)
                    ax.plot(
                        wl,
                        median,
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
    clean=None,
    channels: Sequence[str] = (),
) -> Path:
    """One issues file's review sheet (HTML, self-contained) in `out_dir`; returns it."""
    coords = parse_issues_path(path)
    table = review_table(read_issues(path), given, true_values, target)
    plot = ""
    if clean is not None and target is not None and channels:
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
    write_atomic(out, page(title, body, css=BASE_CSS))
    write_review_csv(table, out.with_suffix(".csv"))
    return out


REVIEW_COLUMNS = ("sample_id", "rank", "given_label", "suggested_label", "label_quality")


def write_review_csv(table: pd.DataFrame, path: Path) -> None:
    """The flagged samples, most suspicious first, with empty `corrected_label` and
    `comment` columns for the person who reviews them."""
    columns = [c for c in (*REVIEW_COLUMNS, "flagged_by", "given_full_truth") if c in table]
    review = table[columns].copy()
    review["corrected_label"] = ""
    review["comment"] = ""
    write_atomic(path, review.to_csv(index=False, float_format="%.6g"))
