"""results/summary.html: one self-contained page a scientist opens from disk.

It answers, in this order: which model and which channels are best per
target, did label cleaning help, where are the errors, then the full tables
(every grid point, every cell), label issues, cleaning, run cost and
provenance. No server, no network: CSS, the sorting/filtering script and the
charts (PNG `data:` URIs) are inline; the only references are relative paths
to files beside the page (sheets, ONNX models, predictions, review sheets,
and in a study of more than `INLINE_CELLS` cells the two per-cell tables,
which load when their section is opened: `summary_parts`). Everything that
comes from the data or the config goes through `esc`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spectragrid.core.metrics import METRIC_NAMES
from spectragrid.issues.review import issues_name
from spectragrid.report import charts
from spectragrid.report.baseline import (
    SIGNIFICANCE,
    best_network_rows,
    networks_vs_classical,
)
from spectragrid.report.htmlkit import (
    BASE_CSS,
    Cell,
    esc,
    filter_bar,
    fmt_mean_sd,
    fmt_number,
    fmt_p,
    href,
    image,
    integer,
    is_nan,
    link,
    links,
    mean_sd,
    num,
    page,
    pct,
    render_table,
    sort_value,
    text,
    write_atomic,
)
from spectragrid.report.raw_vs_clean import (
    PAIRED_METRICS,
    UNFLAGGED_METRICS,
    paired_raw_clean,
    verdict_metric,
)
from spectragrid.report.sheet_data import TOP_ERRORS, error_contributions
from spectragrid.report.sheet_text import ERROR_HEADER
from spectragrid.report.summary_parts import (
    INLINE_CELLS,
    LAZY_CSS,
    Part,
    loader_script,
    remove_stale_parts,
    write_part,
)
from spectragrid.report.summary_tables import (
    GROUP_KEYS,
    PAIR_KEYS,
    best_per_target,
    errors_by_truth,
    folds_of,
    lower_is_better,
    pooled_predictions,
)

UNFLAGGED_NOTE = "test fold without flagged samples (easier, not comparable)"
# A raw/clean difference is coloured only when its verdict is significant.
VERDICT_TONES = {"helped": "better", "hurt": "worse"}
SHOWN_TEST_METRICS: tuple[str, ...] = ("accuracy", "balanced_accuracy", "macro_f1", "auc", "hter")
GRID_METRICS: tuple[str, ...] = METRIC_NAMES
METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "macro_f1": "macro-F1",
    "auc": "AUC",
    "log_loss": "log-loss",
    "ece": "calibration error",
    "hter": "HTER",
}
# The most (model, channel set, seed) points a per-target chart draws.
CHART_POINTS = 20
NAV = (
    ("glance", "At a glance"),
    ("best", "Best per target"),
    ("grid", "Grid"),
    ("raw-vs-clean", "Raw vs clean"),
    ("baseline", "Networks vs classical"),
    ("errors", "Where the errors are"),
    ("cells", "All cells"),
    ("issues", "Label issues"),
    ("cleaning", "Cleaning"),
    ("cost", "Run cost"),
    ("provenance", "Provenance"),
)


@dataclass
class SummaryExtras:
    """The optional parts of the page: each is left out (with a note) when absent."""

    base_dir: Path | None = None
    agreement: pd.DataFrame | None = None
    overlap: pd.DataFrame | None = None
    rule_costs: pd.DataFrame | None = None
    review_links: dict[str, str] = field(default_factory=dict)
    charts: bool = True
    # report.significance: a paired difference counts only at p below it.
    significance: float = SIGNIFICANCE
    # Past this many cells the per-cell tables load from files beside the page.
    inline_cells: int = INLINE_CELLS


def _metric_label(column: str) -> str:
    for prefix in ("test_", "truth_", "unflagged_"):
        if column.startswith(prefix):
            name = column[len(prefix) :]
            title = METRIC_TITLES.get(name, name.replace("_", " "))
            return f"{prefix[:-1]} {title}" if prefix != "test_" else title
    return column.replace("_", " ")


def _has_any(frame: pd.DataFrame | None, column: str) -> bool:
    return (
        frame is not None
        and column in frame
        and bool(pd.to_numeric(frame[column], errors="coerce").notna().any())
    )


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def _header(cells: pd.DataFrame, provenance: dict) -> str:
    datasets = sorted({str(d) for d in cells.get("dataset", [])}) or [
        str(provenance.get("dataset", ""))
    ]
    date = provenance.get("date") or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    config_hash = provenance.get("config_hash", "–")
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in NAV)
    return (
        f"<header><h1>spectragrid summary: {esc(', '.join(datasets))}</h1>"
        f'<div class="meta">date {esc(date)} · config hash <code>{esc(config_hash)}</code> · '
        f"{len(cells)} cells</div><nav>{nav}</nav></header>"
    )


def _targets_table(cells: pd.DataFrame) -> str:
    if cells.empty:
        return ""
    rows = []
    # One row per distinct class list: a target whose classes differ between cells shows up
    # as several rows rather than hiding the difference.
    for (name, code, listed), _ in cells.groupby(["target", "target_code", "classes"], sort=True):
        try:
            classes = json.loads(listed)
        except (TypeError, ValueError):
            classes = [listed]
        rows.append([text(name), text(code), text(" | ".join(str(c) for c in classes))])
    return "<h3>Targets</h3>" + render_table(
        ["target", "code", "classes (in order)"], rows, "targets"
    )


def _sheet_links(cells: pd.DataFrame, point: dict) -> tuple[str, str]:
    """Links to every fold's sheet of a grid point, and the first sheet as an image."""
    folds = folds_of(cells, point)
    parts = []
    for f, png, sheet_html in zip(folds["fold"], folds["sheet"], folds["sheet_html"], strict=True):
        target = sheet_html if not is_nan(sheet_html) else png
        parts.append(link(f"f{f}", target).html)
    first = folds["sheet"].dropna()
    picture = ""
    if len(first):
        picture = (
            f"<details><summary>sheet of fold {esc(folds.loc[first.index[0], 'fold'])}"
            f'</summary><img loading="lazy" src="{href(first.iloc[0])}" alt="result sheet">'
            "</details>"
        )
    return " ".join(p for p in parts if p), picture


def _glance_section(
    cells: pd.DataFrame,
    agg: pd.DataFrame,
    paired: pd.DataFrame,
    issues: pd.DataFrame,
    best_metric: str,
    extras: SummaryExtras,
    baseline: pd.DataFrame | None = None,
) -> str:
    if agg.empty:
        return '<p class="empty">no cells yet</p>'
    best = best_per_target(agg, best_metric)
    label = _metric_label(best_metric)
    cards, figures = [], []
    for target in sorted(best["target"].unique()):
        mine = best[best["target"] == target]
        lines = []
        for r in mine.to_dict("records"):
            lines.append(
                f"<p><b>{esc(r['labels'])}</b> labels: <b>{esc(r['model'])}</b> on "
                f"<b>{esc(r['channels'])}</b> (seed {esc(r['seed'])}), {esc(label)} "
                f"{esc(fmt_mean_sd(r[f'{best_metric}_mean'], r[f'{best_metric}_sd']))} over "
                f"{esc(r['n_folds'])} folds</p>"
            )
        lines.append(_cleaning_verdict(mine, paired, best_metric, extras.significance))
        lines += _baseline_lines(baseline, target, extras.significance)
        lines.append(_issue_line(issues, target))
        cards.append(
            f'<div class="card"><h3>{esc(target)}</h3>{"".join(lines)}'
            f'<p><a href="#errors-{esc(_anchor(target))}">where the errors are</a></p></div>'
        )
        if extras.charts:
            figures += _target_charts(cells, target, best_metric, label)
    note = (
        f'<p class="note">Best = highest {esc(label)} mean over folds'
        if not lower_is_better(best_metric)
        else f'<p class="note">Best = lowest {esc(label)} mean over folds'
    ) + " (report.best_metric); clean cells are scored on the same, uncleaned test folds.</p>"
    charts_html = f'<div class="charts">{"".join(figures)}</div>' if figures else ""
    return note + f'<div class="cards">{"".join(cards)}</div>' + charts_html


def _anchor(name: object) -> str:
    # Target names match the workflow's name pattern, but anchors must be safe regardless.
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in str(name))


def _cleaning_verdict(best: pd.DataFrame, pooled: pd.DataFrame, metric: str, level: float) -> str:
    """Did cleaning help the best raw configuration? `helped`/`hurt` only at p < `level`
    over its folds (and seeds, pooled); judged on the truth where a truth file scored it,
    with the given-label figure and calibration against both beside it."""
    raw = best[best["labels"] == "raw"]
    if raw.empty or pooled.empty or f"{metric}_diff_mean" not in pooled:
        return "<p>Cleaning: no raw/clean pair for this target.</p>"
    point = raw.iloc[0]
    mask = np.ones(len(pooled), dtype=bool)
    for key in PAIR_KEYS:
        if key != "seed":
            mask &= (pooled[key] == point[key]).to_numpy()
    if not mask.any():
        return "<p>Cleaning: the best raw configuration has no clean twin.</p>"
    r = pooled.loc[mask].iloc[0]
    judged = verdict_metric(metric, pooled.loc[mask])
    if is_nan(r[f"{judged}_diff_mean"]):
        return "<p>Cleaning: no paired difference.</p>"
    verdict = str(r[f"{judged}_verdict"])
    tone = {"helped": "better", "hurt": "worse"}.get(verdict, "")
    on_truth = judged != metric
    against = " against the truth" if on_truth else ""
    lines = [
        f'<p>Cleaning: <span class="{tone}"><b>{esc(verdict)}</b></span> for '
        f"{esc(point['model'])} on {esc(point['channels'])}{against}: "
        f"{_raw_clean_figures(r, judged, level)}.{_pairs_floor_note(r, judged, level)}</p>"
    ]
    if on_truth:
        lines.append(
            f'<p class="note">Against the given (noisy) test labels, for comparison: '
            f"{_raw_clean_figures(r, metric, level)}; these labels carry the noise cleaning "
            "removes, so they mark a cleaned model wrong where it predicts the true class.</p>"
        )
    lines.append(_calibration_line(r))
    return "".join(lines)


def _raw_clean_figures(r: pd.Series, m: str, level: float) -> str:
    """`macro-F1 raw 0.80 → clean 0.81, Δ +0.010 ± 0.012, 95 % interval [−0.005, +0.025]
    (p 0.31, Wilcoxon, 5 pairs)`."""
    interval = ""
    if not is_nan(r[f"{m}_ci_low"]):
        interval = (
            f", {1 - level:.0%} interval [{float(r[f'{m}_ci_low']):+.3f}, "
            f"{float(r[f'{m}_ci_high']):+.3f}]"
        )
    return (
        f"{esc(_metric_label(m))} raw {esc(fmt_number(r[f'{m}_raw_mean']))} → clean "
        f"{esc(fmt_number(r[f'{m}_clean_mean']))}, "
        f"Δ {esc(_signed(r[f'{m}_diff_mean'], r[f'{m}_diff_sd']))}"
        f"{esc(interval)} (p {esc(fmt_p(r[f'{m}_p']))}, {esc(r[f'{m}_test'] or 'no test')}, "
        f"{esc(r['n_folds'])} pairs)"
    )


def _pairs_floor_note(r: pd.Series, m: str, level: float) -> str:
    """Said where the signed-rank test cannot reach `level` on this many pairs."""
    if r[f"{m}_test"] != "Wilcoxon":
        return ""
    smallest = 2.0 / 2 ** int(r["n_folds"])
    if smallest < level:
        return ""
    return (
        f" On {esc(r['n_folds'])} pairs the signed-rank test cannot go below p "
        f"{esc(fmt_p(smallest))}, so no verdict is possible at p &lt; {level:g}: more folds "
        "or seeds (splits.k, splits.seeds) are needed to detect a difference."
    )


def _calibration_line(r: pd.Series) -> str:
    """Calibration error raw → clean, against the truth and the given labels where known."""
    parts = []
    for m, against in (
        ("truth_ece", "against the truth"),
        ("test_ece", "against the given labels"),
    ):
        if f"{m}_raw_mean" in r and not is_nan(r[f"{m}_raw_mean"]):
            parts.append(
                f"{against} {esc(fmt_number(r[f'{m}_raw_mean']))} → "
                f"{esc(fmt_number(r[f'{m}_clean_mean']))}"
            )
    if not parts:
        return ""
    joined = "; ".join(parts)
    return f'<p class="note">Calibration error (ECE, lower is better), raw → clean: {joined}.</p>'


def _signed(mean: object, sd: object) -> str:
    """A difference with its sign, and its sd over folds where there is one."""
    if is_nan(mean):
        return "–"
    return f"{float(mean):+.3f}" + ("" if is_nan(sd) else f" ± {float(sd):.3f}")


def _paired_figures(r: dict) -> str:
    """`Δ macro-F1 +0.004 ± 0.012 (p 0.62, Wilcoxon, 5 folds; higher on 3 of 5)`."""
    label = _metric_label(str(r["metric"]))
    direction = "lower" if lower_is_better(str(r["metric"])) else "higher"
    return (
        f"Δ {esc(label)} network − baseline {esc(_signed(r['diff_mean'], r['diff_sd']))} "
        f"(p {esc(fmt_p(r['p']))}, {esc(r['test'] or 'no test')}, {esc(r['n_folds'])} folds; "
        f"the network {direction} on {esc(r['n_network_better'])} of {esc(r['n_folds'])})"
    )


def _few_folds_note(r: dict, level: float) -> str:
    """Said where the folds went all one way and still cannot reach significance."""
    smallest = r.get("smallest_p")
    if is_nan(smallest) or float(smallest) < level or float(r["p"]) > float(smallest):
        return ""
    return (
        f" With {esc(r['n_folds'])} folds the signed-rank test cannot go below p "
        f"{esc(fmt_p(smallest))}: more folds or seeds (splits.k, splits.seeds) are needed to "
        "detect a difference."
    )


def _baseline_lines(
    baseline: pd.DataFrame | None, target: str, level: float = SIGNIFICANCE
) -> list[str]:
    """Per label set: does any network beat the best classical model? Said plainly."""
    if baseline is None or baseline.empty:
        return []
    mine = baseline[baseline["target"] == target]
    lines = []
    for best in best_network_rows(mine).to_dict("records"):
        group = mine[(mine["labels"] == best["labels"]) & (mine["seed"] == best["seed"])]
        winners = group[group["verdict"] == "better"]
        if winners.empty:
            r = best
        else:
            means = pd.to_numeric(winners["network_mean"])
            lower = lower_is_better(str(best["metric"]))
            r = winners.loc[means.idxmin() if lower else means.idxmax()].to_dict()
        network = f"<b>{esc(r['model'])}</b> on {esc(r['channels'])}"
        classical = f"<b>{esc(r['baseline_model'])}</b> on {esc(r['baseline_channels'])}"
        where = f"<b>{esc(r['labels'])}</b> labels, seed {esc(r['seed'])}: "
        if r["verdict"] == "better":
            text_ = (
                f'<span class="better">{network} beats the classical baseline</span> '
                f"{classical}: {_paired_figures(r)}."
            )
        elif r["verdict"] == "worse":
            text_ = (
                f'<span class="worse">no network beats the classical baseline</span> '
                f"{classical}; the best network, {network}, is worse: {_paired_figures(r)}."
            )
        elif r["verdict"] == "cannot tell":
            text_ = (
                f"the best network, {network}, and the classical baseline {classical} share "
                "fewer than 2 folds: the data cannot tell them apart."
            )
        else:
            text_ = (
                f"<b>no network beats the classical baseline</b> {classical}; the best "
                f"network, {network}: {_paired_figures(r)}: no detectable difference at "
                f"p &lt; {level:g}.{_few_folds_note(r, level)}"
            )
        lines.append(f"<p>Baseline, {where}{text_}</p>")
    return lines


def _baseline_section(baseline: pd.DataFrame, level: float = SIGNIFICANCE) -> str:
    if baseline.empty:
        return (
            '<p class="empty">no classical model in the grid: add one (arch pls_da, logreg, '
            "svm, random_forest or hist_gradient_boosting) to compare the networks with</p>"
        )
    headers = ["labels", "target", "seed", "k", "network", "channels", "baseline", "channels"]
    headers += ["metric", "network", "baseline", "Δ network − baseline", "better on", "p"]
    headers += ["test", "Δ per fold", "verdict"]
    rows = []
    for r in baseline.to_dict("records"):
        tone = {"better": "better", "worse": "worse"}.get(str(r["verdict"]), "")
        rows.append(
            [
                text(r["labels"]),
                text(r["target"]),
                integer(r["seed"]),
                integer(r["k"]),
                text(r["model"]),
                text(r["channels"]),
                text(r["baseline_model"]),
                text(r["baseline_channels"]),
                text(_metric_label(str(r["metric"]))),
                mean_sd(r["network_mean"], r["network_sd"]),
                mean_sd(r["baseline_mean"], r["baseline_sd"]),
                Cell(esc(_signed(r["diff_mean"], r["diff_sd"])), f"num {tone}".strip()),
                text(f"{r['n_network_better']} of {r['n_folds']}"),
                Cell(esc(fmt_p(r["p"])), "num", sort_value(r["p"])),
                text(r["test"]),
                text(r["diffs"], "name"),
                text(r["verdict"], tone),
            ]
        )
    note = (
        '<p class="note">Every network grid point against the baseline: the classical grid '
        "point (model and channel set) with the best mean over folds, per target, label set "
        "and seed. Every model's cell f tests on the same fold f, so the differences pair up "
        "fold by fold. p: Wilcoxon signed-rank with at least 5 non-zero differences, paired "
        f"t-test otherwise; a network is better or worse only at p &lt; {level:g}, and "
        "“no detectable difference” means these folds cannot tell the two apart, not that "
        "they are equal (on n folds the signed-rank test cannot go below p = 2 / 2ⁿ, 0.0625 "
        "on 5). The folds share training rows, so p is approximate; the baseline is the best "
        "classical model on these same test folds, which makes it a slightly high bar.</p>"
    )
    return (
        note
        + filter_bar("baseline-table", len(rows))
        + render_table(
            headers,
            rows,
            "baseline-table",
            sortable=True,
            empty="no network to compare",
            facets=("labels", "target", "verdict"),
        )
    )


def _issue_line(issues: pd.DataFrame, target: str) -> str:
    mine = issues[issues["target"] == target] if not issues.empty else issues
    if mine.empty:
        return "<p>Label issues: none computed.</p>"
    flagged = int(pd.to_numeric(mine["n_flagged"]).sum())
    text_ = f"<p>Label issues: {flagged} flagged over {len(mine)} file(s)"
    precision = pd.to_numeric(mine["precision"], errors="coerce")
    if precision.notna().any():
        recall = pd.to_numeric(mine["recall"], errors="coerce")
        text_ += (
            f"; detection precision {esc(fmt_number(precision.mean(), 2))}, recall "
            f"{esc(fmt_number(recall.mean(), 2))} against the truth"
        )
    return text_ + ".</p>"


def _figure(png: bytes | None, caption: str) -> list[str]:
    if png is None:
        return []
    return [f"<figure>{image(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"]


def _charted_points(cells: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, str]:
    """The cells of the CHART_POINTS best (model, channel set, seed) points by `metric`
    (mean over folds and label sets), and a note when others were left out.

    A chart of a hundred points is unreadable and slow to draw; the Grid table holds
    every point."""
    points = ["model", "channels", "seed"]
    scores = (
        cells.assign(_score=pd.to_numeric(cells[metric], errors="coerce"))
        .groupby(points, sort=True)["_score"]
        .mean()
    )
    if len(scores) <= CHART_POINTS:
        return cells, ""
    ranked = scores.sort_values(
        ascending=lower_is_better(metric), na_position="last", kind="stable"
    )
    chosen = set(ranked.index[:CHART_POINTS])
    keep = [tuple(key) in chosen for key in cells[points].itertuples(index=False)]
    note = f" The {CHART_POINTS} best of {len(scores)} points; the Grid table lists them all."
    return cells[keep], note


def _target_charts(cells: pd.DataFrame, target: str, metric: str, label: str) -> list[str]:
    mine, note = _charted_points(cells[cells["target"] == target], metric)
    out = _figure(
        charts.metric_by_grid(mine, metric, label, f"{target}: {label} per fold"),
        f"{target}: {label} of every fold, by model and channel set; raw (grey) and clean "
        f"(green) labels; bar and whisker: mean ± sd over folds.{note}",
    )
    out += _figure(
        charts.clean_minus_raw(
            mine, metric, label, f"{target}: did cleaning help?", lower_is_better(metric)
        ),
        f"{target}: clean − raw {label} per fold (dots) and its mean (diamond), per grid "
        f"point; green or red: the mean moved the better or the worse way, whether or not "
        f"the paired test can tell (the verdicts are in Raw vs clean).{note}",
    )
    return out


def _best_section(cells: pd.DataFrame, agg: pd.DataFrame, best_metric: str) -> str:
    column = f"{best_metric}_mean"
    if not agg.empty and column not in agg:
        known = sorted(c[: -len("_mean")] for c in agg if c.endswith("_mean"))
        raise ValueError(f"best_metric {best_metric!r} is not aggregated; choose one of {known}")
    truth = [m for m in ("truth_accuracy", "truth_macro_f1") if _has_any(agg, f"{m}_mean")]
    headers: list[str | tuple[str, str]] = [
        "target",
        "labels",
        "channels",
        "model",
        "seed",
        "k",
        "folds",
        f"{_metric_label(best_metric)} (best)",
    ]
    shown = [
        f"test_{m}"
        for m in SHOWN_TEST_METRICS
        if f"test_{m}" != best_metric and (m != "hter" or _has_any(agg, "test_hter_mean"))
    ]
    headers += [_metric_label(m) for m in shown] + [_metric_label(m) for m in truth]
    headers += ["sheets", ""]
    rows = []
    for best in best_per_target(agg, best_metric).to_dict("records"):
        sheet_links, picture = _sheet_links(cells, {k: best[k] for k in GROUP_KEYS})
        rows.append(
            [
                text(best["target"]),
                text(best["labels"]),
                text(best["channels"]),
                text(best["model"]),
                integer(best["seed"]),
                integer(best["k"]),
                integer(best["n_folds"]),
                mean_sd(best[column], best[f"{best_metric}_sd"]),
                *(mean_sd(best[f"{m}_mean"], best[f"{m}_sd"]) for m in shown),
                *(mean_sd(best[f"{m}_mean"], best[f"{m}_sd"]) for m in truth),
                Cell(sheet_links),
                Cell(picture),
            ]
        )
    direction = "lowest" if lower_is_better(best_metric) else "highest"
    note = (
        f'<p class="note">Per target and label set, the grid point with the {direction} '
        f"{esc(_metric_label(best_metric))} on the test folds (mean ± sd over folds). Clean "
        "cells are scored on the same, uncleaned test folds as raw cells.</p>"
    )
    return note + render_table(headers, rows, "best-table", empty="no cells")


def _grid_section(
    cells: pd.DataFrame, agg: pd.DataFrame, paired: pd.DataFrame, best_metric: str, level: float
) -> str:
    metrics = [m for m in GRID_METRICS if _has_any(agg, f"test_{m}_mean")]
    truth = [f"truth_{m}" for m in ("accuracy", "macro_f1") if _has_any(agg, f"truth_{m}_mean")]
    label = _metric_label(best_metric)
    paired_ok = not paired.empty and f"{best_metric}_diff_mean" in paired
    headers = ["labels", "target", "channels", "model", "seed", "k", "folds"]
    headers += [METRIC_TITLES[m] for m in metrics] + [_metric_label(m) for m in truth]
    headers += [f"Δ {label} vs raw", "p (paired)", "sheets per fold"]
    # The first pair row of each raw/clean twin, looked up by key rather than by a mask
    # per grid point (hundreds of points at 1,000 cells).
    pairs: dict[tuple, dict] = {}
    if paired_ok:
        for pr in paired.to_dict("records"):
            pairs.setdefault(tuple(pr[k] for k in PAIR_KEYS), pr)
    rows = []
    for r in agg.to_dict("records"):
        row = [text(r[c]) for c in ("labels", "target", "channels", "model")]
        row += [integer(r["seed"]), integer(r["k"]), integer(r["n_folds"])]
        row += [mean_sd(r[f"test_{m}_mean"], r[f"test_{m}_sd"]) for m in metrics]
        row += [mean_sd(r[f"{m}_mean"], r[f"{m}_sd"]) for m in truth]
        diff, p = Cell("", "num"), Cell("", "num")
        pr = pairs.get(tuple(r[k] for k in PAIR_KEYS)) if r["labels"] == "clean" else None
        if pr is not None:
            d = pr[f"{best_metric}_diff_mean"]
            # coloured only where the paired test is significant at report.significance
            tone = VERDICT_TONES.get(str(pr[f"{best_metric}_verdict"]), "")
            diff = mean_sd(d, pr[f"{best_metric}_diff_sd"], tone)
            p = Cell(esc(fmt_p(pr[f"{best_metric}_p"])), "num", sort_value(pr[f"{best_metric}_p"]))
        row += [diff, p]
        row.append(Cell(_sheet_links(cells, {k: r[k] for k in GROUP_KEYS})[0]))
        rows.append(row)
    note = (
        '<p class="note">One row per grid point and label set: metrics on the test folds, '
        "mean ± sd over folds. Clean rows show the paired difference with their raw twin, "
        "fold by fold. Click a header to sort; filter with the box or the drop-downs.</p>"
    )
    return (
        note
        + filter_bar("grid-table", len(rows))
        + render_table(
            headers,
            rows,
            "grid-table",
            sortable=True,
            empty="no cells",
            facets=("labels", "target", "channels", "model"),
        )
    )


def _raw_clean_section(paired: pd.DataFrame, level: float) -> str:
    metrics = [m for m in PAIRED_METRICS if _has_any(paired, f"{m}_raw_mean")]
    headers: list[str | tuple[str, str]] = [
        "target",
        "channels",
        "model",
        "seed",
        "k",
        "folds",
        "flagged removed (mean)",
        "metric",
        "raw",
        "clean",
        "Δ clean − raw",
        f"{1 - level:.0%} interval of Δ",
        "p",
        "test",
        "verdict",
        "Δ per fold",
        (f"clean, {UNFLAGGED_NOTE}", "unflagged"),
    ]
    rows = []
    for r in paired.to_dict("records"):
        for m in metrics:
            unflagged = m.replace("test_", "unflagged_", 1)
            extra = (
                mean_sd(r[f"{unflagged}_clean_mean"], r[f"{unflagged}_clean_sd"], "unflagged")
                if m.startswith("test_") and unflagged in UNFLAGGED_METRICS
                else Cell("", "unflagged")
            )
            diff = r[f"{m}_diff_mean"]
            verdict = str(r[f"{m}_verdict"])
            tone = VERDICT_TONES.get(verdict, "")
            low, high = r[f"{m}_ci_low"], r[f"{m}_ci_high"]
            interval = "" if is_nan(low) else f"[{float(low):+.3f}, {float(high):+.3f}]"
            rows.append(
                [
                    text(r["target"]),
                    text(r["channels"]),
                    text(r["model"]),
                    integer(r["seed"]),
                    integer(r["k"]),
                    integer(r["n_folds"]),
                    num(r["n_removed_flagged_mean"], 1),
                    text(_metric_label(m)),
                    mean_sd(r[f"{m}_raw_mean"], r[f"{m}_raw_sd"]),
                    mean_sd(r[f"{m}_clean_mean"], r[f"{m}_clean_sd"]),
                    mean_sd(diff, r[f"{m}_diff_sd"], tone),
                    text(interval, "num"),
                    Cell(esc(fmt_p(r[f"{m}_p"])), "num", sort_value(r[f"{m}_p"])),
                    text(r[f"{m}_test"]),
                    text(verdict, tone),
                    text(r[f"{m}_diffs"], "name"),
                    extra,
                ]
            )
    note = (
        '<p class="note">Clean cells retrain on labels with the flagged samples removed and are '
        "scored on the original, uncleaned test fold, like their raw twins (same folds, fold by "
        "fold). Metrics without a prefix score them against the given test labels, which "
        "carry the label noise; “truth” metrics score the same predictions against the "
        "noise-free labels and decide the verdict where they exist. "
        "p: Wilcoxon signed-rank with at least 5 non-zero paired differences, paired t-test "
        f"otherwise. Verdict: helped (green) or hurt (red) only at p &lt; {level:g} "
        "(report.significance; a lower log-loss, calibration error or HTER is better), "
        "otherwise no detectable difference: these folds cannot tell raw from clean apart, "
        "which is not the same as equal. The interval is the t interval of the mean "
        "difference; folds share training rows, so p and interval are approximate. "
        f"The last column, {esc(UNFLAGGED_NOTE)}, removes the flagged samples from "
        "the test fold as well: it is an easier test and overstates the gain.</p>"
    )
    return (
        note
        + filter_bar("raw-vs-clean-table", len(rows))
        + render_table(
            headers,
            rows,
            "raw-vs-clean-table",
            sortable=True,
            empty="no raw/clean pairs yet",
            facets=("target", "metric"),
        )
    )


def _errors_section(
    cells: pd.DataFrame, agg: pd.DataFrame, best_metric: str, extras: SummaryExtras
) -> str:
    if agg.empty or extras.base_dir is None:
        return '<p class="empty">no predictions to analyse</p>'
    best = best_per_target(agg, best_metric)
    parts = []
    for target in sorted(best["target"].unique()):
        mine = best[best["target"] == target]
        scores = pd.to_numeric(mine[f"{best_metric}_mean"], errors="coerce")
        chosen = mine.loc[scores.idxmin() if lower_is_better(best_metric) else scores.idxmax()]
        folds = folds_of(cells, {k: chosen[k] for k in GROUP_KEYS})
        predictions, classes = pooled_predictions(folds, extras.base_dir)
        title = (
            f"{target}: {chosen['model']} · {chosen['channels']} · seed {chosen['seed']} · "
            f"{chosen['labels']} labels, {len(folds)} test folds pooled"
        )
        parts.append(f'<h3 id="errors-{esc(_anchor(target))}">{esc(title)}</h3>')
        if predictions.empty:
            parts.append('<p class="empty">no predictions</p>')
            continue
        by_truth = errors_by_truth(predictions, classes)
        if extras.charts:
            parts += _figure(
                charts.errors_by_truth_chart(
                    by_truth.head(20), f"{target}: error rate per full truth"
                ),
                "Share of each given full truth misclassified, with the class it is most often "
                "taken for.",
            )
        rows = [
            [
                text(r["full_truth"]),
                integer(r["n"]),
                integer(r["n_errors"]),
                pct(r["error_rate"]),
                text(r["top_wrong"]),
                integer(r["top_wrong_count"]),
            ]
            for r in by_truth.to_dict("records")
        ]
        parts.append(
            render_table(
                ["full truth (given)", "n", "errors", "error rate", "mostly taken for", "times"],
                rows,
                f"errors-by-truth-{_anchor(target)}",
                sortable=True,
            )
        )
        y = predictions["label_index"].to_numpy(dtype=np.int64)
        proba = predictions[[f"prob_{c}" for c in classes]].to_numpy(dtype=np.float64)
        contributions = error_contributions(predictions["full_truth"], y, proba, classes)
        rows = [
            [
                text(r["full_truth"]),
                text(r["predicted"]),
                integer(r["count"]),
                pct(r["share"]),
                text(fmt_mean_sd(r["p_true_mean"], r["p_true_sd"])),
                text(fmt_mean_sd(r["p_pred_mean"], r["p_pred_sd"])),
            ]
            for r in contributions.head(TOP_ERRORS).to_dict("records")
        ]
        parts.append(
            "<p class='note'>Top error contributions (before cutoffs): count, share of all "
            "errors, p(given class) and p(predicted) as mean ± sd.</p>"
            + render_table(
                ERROR_HEADER,
                rows,
                f"error-contributions-{_anchor(target)}",
                empty="no errors",
            )
        )
    note = (
        '<p class="note">For the best configuration of each target (over both label sets), '
        "its test folds pooled: which given full truths are misclassified, and as what.</p>"
    )
    return note + "".join(parts)


CELLS_NOTE = '<p class="note">One row per cell (one fold); metrics on its test fold.</p>'


def _cells_table(cells: pd.DataFrame) -> str:
    truth = [f"truth_{m}" for m in METRIC_NAMES if _has_any(cells, f"truth_{m}")]
    noise = _has_any(cells, "noise_rate_test")
    metrics = [m for m in METRIC_NAMES if m != "hter" or _has_any(cells, "test_hter")]
    bench = _has_any(cells, "train_seconds")
    headers = ["labels", "target", "channels", "model", "seed", "fold", "k"]
    headers += [_metric_label(f"test_{m}") for m in metrics]
    headers += [_metric_label(m) for m in truth]
    headers += ["given-label noise in test"] if noise else []
    headers += ["n train", "n test", "flagged removed"]
    headers += ["train s", "train peak MB"] if bench else []
    headers += ["sheet", "ONNX", "predictions", "name"]
    rows = []
    for r in cells.to_dict("records"):
        row = [text(r[c]) for c in ("labels", "target", "channels", "model")]
        row += [integer(r["seed"]), integer(r["fold"]), integer(r["k"])]
        row += [num(r[f"test_{m}"]) for m in metrics]
        row += [num(r[m]) for m in truth]
        row += [num(r["noise_rate_test"])] if noise else []
        row += [integer(r["n_train"]), integer(r["n_test"]), integer(r["n_removed_flagged"])]
        row += [num(r["train_seconds"], 1), num(r["train_max_rss_mb"], 0)] if bench else []
        row += [links((("html", r.get("sheet_html")), ("png", r["sheet"])))]
        row += [link("onnx", r["onnx"]), link("parquet", r["predictions"])]
        row += [text(r["display_name"], "name")]
        rows.append(row)
    return filter_bar("cells-table", len(rows)) + render_table(
        headers,
        rows,
        "cells-table",
        sortable=True,
        facets=("labels", "target", "channels", "model", "fold"),
    )


def _issues_section(issues: pd.DataFrame, extras: SummaryExtras) -> str:
    detection = _has_any(issues, "precision") or _has_any(issues, "recall")
    known_n = _has_any(issues, "n_samples")
    headers = ["target", "channels", "seed", "k", "n flagged"]
    headers += ["n samples", "flagged share"] if known_n else []
    headers += ["truly mislabelled", "precision", "recall", "F1"] if detection else []
    headers += ["most suspicious (given → suggested)", "review sheet"]
    rows = []
    for r in issues.to_dict("records"):
        row = [text(r["target"]), text(r["channels"]), integer(r["seed"]), integer(r["k"])]
        row += [integer(r["n_flagged"])]
        row += [integer(r["n_samples"]), num(r["flagged_fraction"])] if known_n else []
        if detection:
            row += [integer(r["n_truly_mislabelled"])]
            row += [num(r["precision"]), num(r["recall"]), num(r["f1"])]
        row += [text(r["top_flagged"], "name")]
        row += [link("review", extras.review_links.get(issues_name(r)))]
        rows.append(row)
    note = (
        '<p class="note">Samples flagged by cleanlab from the out-of-fold probabilities of the '
        "raw cells, per target, channel set and seed."
        + (
            " Precision, recall and F1 compare the flagged set with the samples whose given "
            "class differs from the true class."
            if detection
            else ""
        )
        + "</p>"
    )
    out = note
    if extras.charts:
        out += "".join(_figure(charts.issues_chart(issues), "Flagged share per label-issues file."))
    out += render_table(headers, rows, "issues-table", sortable=True, empty="no label-issue files")
    agreement = extras.agreement
    if agreement is not None and not agreement.empty:
        arows = [
            [
                text(r["target"]),
                text(r["channels"]),
                integer(r["seed"]),
                text(r["model"]),
                integer(r["n_flagged"]),
                pct(r["flagged_model_disagrees"]),
                pct(r["flagged_model_suggests"]),
                pct(r["unflagged_model_disagrees"]),
            ]
            for r in agreement.to_dict("records")
        ]
        out += (
            "<h3>Agreement between models</h3><p class='note'>For each model of the grid, "
            "from its own raw cells' out-of-fold predictions: how often it also disagrees with "
            "the given label of the flagged samples, how often it predicts cleanlab's suggested "
            "class, and how often it disagrees with unflagged samples (the baseline).</p>"
            + render_table(
                [
                    "target",
                    "channels",
                    "seed",
                    "model",
                    "n flagged",
                    "disagrees with given (flagged)",
                    "predicts suggested (flagged)",
                    "disagrees with given (unflagged)",
                ],
                arows,
                "agreement-table",
                sortable=True,
            )
        )
    overlap = extras.overlap
    if overlap is not None and not overlap.empty:
        orows = [
            [
                text(r["target"]),
                text(r["a"]),
                text(r["b"]),
                integer(r["n_a"]),
                integer(r["n_b"]),
                integer(r["n_both"]),
                num(r["jaccard"]),
            ]
            for r in overlap.to_dict("records")
        ]
        out += (
            "<h3>Overlap between flagged sets</h3><p class='note'>Per target, between channel "
            "sets and seeds: flagged by both, and the Jaccard index.</p>"
            + render_table(
                ["target", "A", "B", "flagged in A", "flagged in B", "in both", "Jaccard"],
                orows,
                "overlap-table",
                sortable=True,
            )
        )
    return out


def _cleaning_section(report: dict) -> str:
    if not report:
        return '<p class="empty">no cleaning report</p>'
    total = report.get("input_rows")
    kept = report.get("kept")
    share = ""
    if isinstance(total, int | float) and isinstance(kept, int | float) and total:
        share = f" ({100 * kept / total:.1f} % kept)"
    summary = (
        f"<p>input rows <b>{esc(total)}</b> · kept <b>{esc(kept)}</b>{esc(share)}</p>"
        if total is not None
        else ""
    )
    dropped = report.get("dropped") or {}
    rows = [
        [
            text(reason),
            integer(count),
            num(100 * count / total if isinstance(total, int | float) and total else None, 2),
        ]
        for reason, count in sorted(dropped.items(), key=lambda kv: (-_as_float(kv[1]), kv[0]))
    ]
    drop_table = render_table(
        ["dropped because", "rows", "% of input"], rows, "dropped", empty="nothing dropped"
    )
    files = [
        [
            text(f.get("file")),
            text(f.get("sha256"), "name"),
            integer(f.get("rows")),
            integer(f.get("kept")),
            text(", ".join(str(c) for c in f.get("dropped_columns") or []), "name"),
        ]
        for f in report.get("files") or []
    ]
    file_table = render_table(
        ["file", "sha256", "rows", "kept", "dropped columns"], files, "files", empty="no files"
    )
    # what k folds cannot do with these labels and groups (spectragrid.data.fold_notices)
    notices = "".join(f"<li>{esc(n)}</li>" for n in report.get("notices") or [])
    notes = f'<h3>Notices</h3><ul class="notices">{notices}</ul>' if notices else ""
    return summary + notes + drop_table + "<h3>Raw files</h3>" + file_table


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _flatten(value: object, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, "" if value is None else str(value))]


def _provenance_section(provenance: dict) -> str:
    rows = [[text(k), text(v)] for k, v in _flatten(provenance)]
    return render_table(["key", "value"], rows, "provenance-table", empty="no provenance")


def _rule_costs(extras: SummaryExtras) -> str:
    out = []
    costs = extras.rule_costs
    if costs is not None and not costs.empty:
        if extras.charts:
            out += _figure(charts.rule_cost_chart(costs), "Total wall time per rule.")
        rows = [
            [
                text(r["rule"]),
                integer(r["jobs"]),
                num(r["total_seconds"], 1),
                num(r["mean_seconds"], 2),
                num(r["max_seconds"], 2),
                num(r["cpu_seconds"], 1),
                num(r["peak_rss_mb"], 0),
            ]
            for r in costs.to_dict("records")
        ]
        total = pd.to_numeric(costs["total_seconds"], errors="coerce").sum()
        out.append(
            f'<p class="note">From Snakemake\'s benchmark files: {total / 3600:.2f} h of job '
            "wall time in all (jobs may have run in parallel).</p>"
        )
        out.append(
            render_table(
                ["rule", "jobs", "total s", "mean s", "max s", "CPU s", "peak RSS MB"],
                rows,
                "rule-cost-table",
                sortable=True,
            )
        )
    else:
        out.append('<p class="note">No benchmark files were given.</p>')
    return "".join(out)


def _cell_costs_table(cells: pd.DataFrame) -> str:
    bench = _has_any(cells, "train_seconds")
    headers = ["labels", "target", "channels", "model", "seed", "fold", "k", "device"]
    headers += ["parameters", "FLOPs / sample", "s / epoch", "train samples / s"]
    headers += ["epochs run", "best epoch", "wall s (in job)"]
    headers += ["train job s", "train peak MB", "sheet job s", "sheet peak MB"] if bench else []
    rows = []
    for r in cells.to_dict("records"):
        row = [text(r[c]) for c in ("labels", "target", "channels", "model")]
        row += [integer(r["seed"]), integer(r["fold"]), integer(r["k"]), text(r["device"])]
        row += [integer(r["parameters"]), integer(r["flops_per_sample"])]
        row += [num(r["seconds_per_epoch"], 3), num(r["train_samples_per_second"], 0)]
        row += [integer(r["epochs_run"]), integer(r["best_epoch"]), num(r["wall_seconds"], 1)]
        if bench:
            row += [num(r["train_seconds"], 1), num(r["train_max_rss_mb"], 0)]
            row += [num(r["sheet_seconds"], 1), num(r["sheet_max_rss_mb"], 0)]
        rows.append(row)
    return filter_bar("cost-table", len(rows)) + render_table(
        headers,
        rows,
        "cost-table",
        sortable=True,
        empty="no cells",
        facets=("labels", "target", "model"),
    )


def render_summary_html(
    out_html: Path,
    cells: pd.DataFrame,
    aggregate: pd.DataFrame,
    paired: pd.DataFrame,
    issues: pd.DataFrame,
    cleaning_report: dict,
    provenance: dict,
    best_metric: str = "test_macro_f1",
    extras: SummaryExtras | None = None,
) -> None:
    """Write the self-contained summary page atomically."""
    provenance = provenance or {}
    extras = extras or SummaryExtras(base_dir=Path(out_html).parent)
    if not aggregate.empty and f"{best_metric}_mean" not in aggregate:
        known = sorted(c[: -len("_mean")] for c in aggregate if c.endswith("_mean"))
        raise ValueError(f"best_metric {best_metric!r} is not aggregated; choose one of {known}")
    level = extras.significance
    baseline = networks_vs_classical(cells, best_metric, level)
    # The glance's verdict pools the folds of every seed into one paired test.
    pooled = paired_raw_clean(cells, level, pool_seeds=True)
    lazy = len(cells) > extras.inline_cells
    written: set[str] = set()

    def per_cell(part_id: str, title: str, table: str) -> str:
        if not lazy:
            return table
        section, path = write_part(Part(part_id, title, len(cells), table), out_html)
        written.add(path.name)
        return section

    cells_table = per_cell("cells-table", "All cells", _cells_table(cells))
    costs_table = per_cell("cost-table", "Cost per cell", _cell_costs_table(cells))
    body = [
        _header(cells, provenance),
        _section(
            "glance",
            "At a glance",
            _glance_section(cells, aggregate, pooled, issues, best_metric, extras, baseline),
        ),
        _targets_table(cells),
        _section("best", "Best per target", _best_section(cells, aggregate, best_metric)),
        _section("grid", "Grid", _grid_section(cells, aggregate, paired, best_metric, level)),
        _section("raw-vs-clean", "Raw vs clean", _raw_clean_section(paired, level)),
        _section("baseline", "Networks vs classical", _baseline_section(baseline, level)),
        _section(
            "errors", "Where the errors are", _errors_section(cells, aggregate, best_metric, extras)
        ),
        _section("cells", "All cells", CELLS_NOTE + cells_table),
        _section("issues", "Label issues", _issues_section(issues, extras)),
        _section("cleaning", "Cleaning", _cleaning_section(cleaning_report or {})),
        _section("cost", "Run cost", _rule_costs(extras) + "<h3>Per cell</h3>" + costs_table),
        _section("provenance", "Provenance", _provenance_section(provenance)),
    ]
    if lazy:
        body.append(f"<script>{loader_script()}</script>")
    write_atomic(Path(out_html), page("spectragrid summary", body, css=BASE_CSS + LAZY_CSS))
    # Only once the new page is in place: until then the previous page needs its parts.
    remove_stale_parts(out_html, written)
