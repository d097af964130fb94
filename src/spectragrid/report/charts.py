"""The summary page's charts, rendered to PNG bytes (inlined as `data:` URIs).

matplotlib on a bare Figure: no JavaScript chart library, nothing fetched,
and the page stays one file. Labels come from user config and data, so
mathtext is off.
"""

from __future__ import annotations

import io
import math

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 90
RC = {"text.parse_math": False, "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold"}
LABEL_COLORS = {"raw": "tab:gray", "clean": "tab:green"}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def metric_by_grid(cells: pd.DataFrame, metric: str, label: str, title: str) -> bytes:
    """One dot per fold for each (model, channel set), raw and clean side by side, with the
    mean ± sd over folds as a bar and whisker."""
    points = cells.assign(value=pd.to_numeric(cells[metric], errors="coerce"))
    points = points.dropna(subset=["value"])
    groups = sorted(
        {
            (str(m), str(c), int(s))
            for m, c, s in zip(points["model"], points["channels"], points["seed"], strict=True)
        }
    )
    seeds = {g[2] for g in groups}
    names = [f"{m}\n{c}" + (f" s{s}" if len(seeds) > 1 else "") for m, c, s in groups]
    label_sets = [lab for lab in ("raw", "clean") if lab in set(points["labels"])]
    width = min(max(4.5, 0.75 * len(groups) * max(1, len(label_sets)) + 2), 18)
    with rc_context(RC):
        fig = _figure(width, 3.6)
        ax = fig.add_subplot()
        offsets = (
            {"raw": -0.18, "clean": 0.18}
            if len(label_sets) == 2
            else {lab: 0.0 for lab in label_sets}
        )
        for labels in label_sets:
            for i, group in enumerate(groups):
                mask = (
                    (points["labels"] == labels)
                    & (points["model"].astype(str) == group[0])
                    & (points["channels"].astype(str) == group[1])
                    & (points["seed"] == group[2])
                )
                values = points.loc[mask, "value"].to_numpy(dtype=float)
                if not len(values):
                    continue
                x = i + offsets[labels]
                jitter = np.linspace(-0.05, 0.05, len(values)) if len(values) > 1 else [0.0]
                ax.scatter(
                    x + np.asarray(jitter),
                    values,
                    s=14,
                    color=LABEL_COLORS[labels],
                    alpha=0.75,
                    zorder=3,
                    label=labels if i == 0 else None,
                )
                sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
                ax.errorbar(
                    x,
                    values.mean(),
                    yerr=sd,
                    fmt="_",
                    ms=16,
                    mew=2,
                    capsize=3,
                    color="black",
                    zorder=4,
                )
        ax.set_xticks(
            range(len(groups)),
            names,
            fontsize=8,
            rotation=30 if len(groups) > 6 else 0,
            ha="right" if len(groups) > 6 else "center",
        )
        ax.set_ylabel(label)
        ax.set_title(title)
        ax.grid(axis="y", color="#e5e5e5")
        handles, labels_ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, labels_, fontsize=8, loc="best", title="labels", title_fontsize=8)
        return _png(fig)


def clean_minus_raw(
    cells: pd.DataFrame, metric: str, label: str, title: str, lower_better: bool
) -> bytes | None:
    """Per grid point, the clean − raw difference of every fold (dots) and their mean
    (diamond); right of zero is "cleaning helped" unless lower is better."""
    keys = ["dataset", "target", "channels", "model", "seed", "k", "fold"]
    raw = cells.loc[cells["labels"] == "raw", [*keys, metric]]
    clean = cells.loc[cells["labels"] == "clean", [*keys, metric]]
    merged = raw.merge(clean, on=keys, suffixes=("_raw", "_clean"))
    merged["diff"] = pd.to_numeric(merged[f"{metric}_clean"], errors="coerce") - pd.to_numeric(
        merged[f"{metric}_raw"], errors="coerce"
    )
    merged = merged.dropna(subset=["diff"])
    if merged.empty:
        return None
    groups = sorted(
        {
            (str(m), str(c), int(s))
            for m, c, s in zip(merged["model"], merged["channels"], merged["seed"], strict=True)
        }
    )
    with rc_context(RC):
        fig = _figure(6.0, 0.9 + 0.42 * len(groups))
        ax = fig.add_subplot()
        for i, (model, channels, seed) in enumerate(groups):
            mask = (
                (merged["model"].astype(str) == model)
                & (merged["channels"].astype(str) == channels)
                & (merged["seed"] == seed)
            )
            diffs = merged.loc[mask, "diff"].to_numpy(dtype=float)
            mean = float(diffs.mean())
            helped = mean < 0 if lower_better else mean > 0
            color = "tab:green" if helped else ("tab:red" if mean != 0 else "tab:gray")
            ax.scatter(diffs, np.full(len(diffs), i), s=16, color=color, alpha=0.6, zorder=3)
            ax.scatter([mean], [i], marker="D", s=40, color=color, edgecolor="black", zorder=4)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(range(len(groups)), [f"{m} · {c} · s{s}" for m, c, s in groups], fontsize=8)
        ax.set_ylim(len(groups) - 0.5, -0.5)
        direction = "left" if lower_better else "right"
        ax.set_xlabel(f"Δ {label}, clean − raw, per fold (better: {direction})")
        ax.set_title(title)
        ax.grid(axis="x", color="#e5e5e5")
        return _png(fig)


def issues_chart(issues: pd.DataFrame) -> bytes | None:
    """Flagged share per label-issues file, with detection precision and recall when the
    truth is known."""
    if issues.empty:
        return None
    frame = issues.copy()
    names = [
        f"{t} · {c} · s{s}"
        for t, c, s in zip(frame["target"], frame["channels"], frame["seed"], strict=True)
    ]
    fraction = pd.to_numeric(frame["flagged_fraction"], errors="coerce")
    values = fraction if fraction.notna().any() else pd.to_numeric(frame["n_flagged"])
    with rc_context(RC):
        fig = _figure(6.5, 1.0 + 0.42 * len(frame))
        ax = fig.add_subplot()
        y = np.arange(len(frame))
        ax.barh(y, values.fillna(0).to_numpy(dtype=float), color="tab:orange")
        for i, r in enumerate(frame.itertuples(index=False)):
            note = f" {int(r.n_flagged)} flagged"
            for name, value in (("precision", _f(r.precision)), ("recall", _f(r.recall))):
                if np.isfinite(value):
                    note += f" · {name} {value:.2f}"
            ax.text(float(values.fillna(0).iloc[i]), i, note, va="center", fontsize=8)
        ax.set_yticks(y, names, fontsize=8)
        ax.set_ylim(len(frame) - 0.5, -0.5)
        ax.set_xlabel(
            "share of the target's samples flagged" if fraction.notna().any() else "flagged samples"
        )
        ax.set_xlim(0, float(values.max() or 1) * 1.9)
        ax.set_title("Label issues per target, channel set and seed")
        return _png(fig)


def _f(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def rule_cost_chart(costs: pd.DataFrame) -> bytes | None:
    """Total wall time per rule (bars) with its job count and peak memory."""
    if costs.empty:
        return None
    with rc_context(RC):
        fig = _figure(6.5, 1.0 + 0.38 * len(costs))
        ax = fig.add_subplot()
        y = np.arange(len(costs))
        total = pd.to_numeric(costs["total_seconds"], errors="coerce").fillna(0).to_numpy()
        ax.barh(y, total, color="tab:blue")
        for i, r in enumerate(costs.itertuples(index=False)):
            ax.text(
                total[i],
                i,
                f" {int(r.jobs)} jobs · peak {_f(r.peak_rss_mb):.0f} MB",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(y, [str(r) for r in costs["rule"]])
        ax.set_ylim(len(costs) - 0.5, -0.5)
        ax.set_xlim(0, max(float(total.max()), 1e-9) * 1.8)
        ax.set_xlabel("total wall time of the rule's jobs (s)")
        ax.set_title("Run cost per rule (Snakemake benchmarks)")
        return _png(fig)


def errors_by_truth_chart(per_truth: pd.DataFrame, title: str) -> bytes | None:
    """Error rate per given full truth (pooled over folds), annotated with counts."""
    if per_truth.empty:
        return None
    with rc_context(RC):
        fig = _figure(6.5, 1.0 + 0.34 * len(per_truth))
        ax = fig.add_subplot()
        y = np.arange(len(per_truth))
        rate = per_truth["error_rate"].to_numpy(dtype=float)
        cmap = matplotlib.colormaps["Reds"]
        ax.barh(y, rate, color=[cmap(0.35 + 0.6 * min(r, 1.0)) for r in rate])
        for i, r in enumerate(per_truth.itertuples(index=False)):
            note = f" {int(r.n_errors)}/{int(r.n)}"
            if isinstance(r.top_wrong, str) and r.top_wrong:
                note += f" → mostly {r.top_wrong}"
            ax.text(rate[i], i, note, va="center", fontsize=8)
        ax.set_yticks(y, [str(v) for v in per_truth["full_truth"]], fontsize=8)
        ax.set_ylim(len(per_truth) - 0.5, -0.5)
        ax.set_xlim(0, 1.45)
        ax.set_xticks(np.linspace(0, 1, 6))
        ax.set_xlabel("share of the full truth's test samples misclassified")
        ax.set_title(title)
        return _png(fig)
