"""What the result sheet says in words: its tables as rows of text, and its definitions.

The PNG (`sheet_png`) draws these rows and the HTML (`sheet_html`) lays them
out as tables, so both say the same thing in the same words.
"""

from __future__ import annotations

import pandas as pd

from spectragrid.core.metrics import classification_metrics
from spectragrid.report.formatting import MISSING, fmt_cutoff, fmt_num, fmt_pct, fmt_pm, wrap
from spectragrid.report.sheet_data import TOP_ERRORS, SheetData

PER_CLASS_HEADER = [
    "class",
    "n",
    "recall",
    "precision",
    "AUC",
    "AP",
    "cutoff",
    "kept",
    "FPR at cutoff",
    "precision at cutoff",
    "abstained",
    "recall after",
]
ERROR_HEADER = [
    "full truth (given)",
    "predicted",
    "count",
    "share",
    "p(given class)",
    "p(predicted)",
]
METRIC_LABELS = (
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("macro_f1", "macro-F1"),
    ("auc", "AUC (macro OvR)"),
    ("log_loss", "log-loss"),
    ("ece", "calibration error"),
    ("hter", "HTER"),
)
COST_HEADER = [
    "full truth",
    "cost key",
    "unit cost",
    "n test",
    "accepted by argmax",
    "accepted at min-cost t",
    "cost at that t",
]


def per_class_rows(data: SheetData) -> list[list[str]]:
    rows = []
    for r in data.per_class.itertuples(index=False):
        rows.append(
            [
                str(r[0]),
                str(r.n),
                fmt_pct(r.recall),
                fmt_pct(r.precision),
                fmt_num(r.auc),
                fmt_num(r.ap),
                fmt_cutoff(r.cutoff),
                fmt_pct(r.kept),
                fmt_pct(r.fpr_at_cutoff),
                fmt_pct(r.precision_at_cutoff),
                fmt_pct(r.abstained),
                fmt_pct(r.recall_after),
            ]
        )
    return rows


def error_rows(errors: pd.DataFrame) -> list[list[str]]:
    return [
        [
            str(r.full_truth),
            str(r.predicted),
            str(int(r.count)),
            fmt_pct(r.share),
            fmt_pm(r.p_true_mean, r.p_true_sd),
            fmt_pm(r.p_pred_mean, r.p_pred_sd),
        ]
        for r in errors.head(TOP_ERRORS).itertuples(index=False)
    ]


def card_rows(data: SheetData) -> list[list[str]]:
    card, metrics = data.card, data.metrics

    def number(value: object) -> str:
        text = fmt_num(value, 0)
        return text if text == MISSING else f"{round(float(text)):,}"

    rows = [
        ["parameters", number(card.get("parameters"))],
        ["FLOPs / sample", number(card.get("flops_per_sample"))],
        ["s / epoch", fmt_num(card.get("seconds_per_epoch"), 3)],
        ["train samples / s", number(card.get("train_samples_per_second"))],
        ["wall s (train job)", fmt_num(card.get("wall_seconds"), 1)],
        ["device · threads", f"{card.get('device', MISSING)} · {card.get('threads', MISSING)}"],
        [
            "epochs run · best",
            f"{metrics.get('epochs_run', MISSING)} · {metrics.get('best_epoch', MISSING)}",
        ],
        [
            "n train · val · test",
            f"{metrics.get('n_train', MISSING)} · {metrics.get('n_val', MISSING)} · {len(data.y)}",
        ],
    ]
    if (metrics.get("cell") or {}).get("labels") == "clean":
        rows.append(["removed as flagged", str(metrics.get("n_removed_flagged", MISSING))])
        # flagged training/validation samples the cell's own raw model predicts as given
        rows.append(["spared by own model", str(metrics.get("n_spared_flagged", MISSING))])
    return rows


def metric_rows(data: SheetData) -> list[list[str]]:
    values = classification_metrics(data.y, data.proba)
    unflagged = data.metrics.get("test_unflagged") or {}
    rows = []
    for key, label in METRIC_LABELS:
        if key == "hter" and len(data.classes) != 2:
            continue
        rows.append([label, fmt_num(values.get(key)), fmt_num(unflagged.get(key))])
    rows.append(
        ["accuracy after cutoffs", fmt_pct(data.after.accuracy), ""],
    )
    rows.append(["abstained", fmt_pct(data.abstention_rate), ""])
    return rows


def cost_rows(data: SheetData) -> list[list[str]]:
    if data.cost is None:
        return []
    table = data.cost.breakdown
    total = [
        "total",
        "",
        "",
        str(int(table["n"].sum())),
        str(int(table["accepted_argmax"].sum())),
        str(int(table["accepted"].sum())),
        f"{table['cost'].sum():g}",
    ]
    return [
        [
            str(r.full_truth),
            str(r.key),
            f"{r.unit_cost:g}",
            str(int(r.n)),
            str(int(r.accepted_argmax)),
            str(int(r.accepted)),
            f"{r.cost:g}",
        ]
        for r in data.cost.breakdown.itertuples(index=False)
    ] + [total]


def definitions(data: SheetData, width: int = 110) -> str:
    lines = [
        f"Cutoffs: {data.rule.describe()}, per class on p(class), one vs all. Chosen on this "
        "test fold: descriptive, not a tuned deployment threshold.",
        "kept = share of the class's samples (given label) with p(class) ≥ cutoff. After "
        "cutoffs a sample abstains when p(predicted class) < that class's cutoff; the matrix "
        "after cutoffs leaves abstentions out.",
        "cutoff 'none': the class is absent from the fold (or its only class), nothing "
        "abstains; 'unreachable': the precision target is never met, every prediction of the "
        "class abstains.",
        "Errors: grouped by (given full truth, predicted class); share = of all errors (after "
        "cutoffs: of the remaining errors); p(given class), p(predicted): mean ± sd (n − 1) "
        "over the group.",
    ]
    if data.cost is not None:
        first = data.classes[0]
        lines.append(
            f"Cost: accepting = predicting {first} with p({first}) ≥ t; cost(t) = sum of "
            "cost[full truth] over accepted samples. Exact keys win over prefix patterns "
            "(key*); unmatched full truths cost 0"
            + (f": {', '.join(data.cost.unmatched)}." if data.cost.unmatched else " (none here).")
        )
    else:
        lines.append("Cost: " + data.cost_note)
    return "\n".join(wrap(line, width) for line in lines)
