from __future__ import annotations

from report_cases import default_costs, default_rule
from sheet_cases import CARD, ERR_CLASSES, err_predictions, fake_predictions

from spectragrid.report.sheet_data import TOP_ERRORS, sheet_data
from spectragrid.report.sheet_text import (
    COST_HEADER,
    ERROR_HEADER,
    PER_CLASS_HEADER,
    card_rows,
    cost_rows,
    definitions,
    error_rows,
    metric_rows,
    per_class_rows,
)


def three_classes(**extra):
    return sheet_data(
        err_predictions(), ERR_CLASSES, "t", rule=default_rule(), costs=default_costs(), **extra
    )


def test_table_rows_fit_their_headers() -> None:
    data = three_classes()
    assert {len(r) for r in per_class_rows(data)} == {len(PER_CLASS_HEADER)}
    assert [r[0] for r in per_class_rows(data)] == ERR_CLASSES
    assert error_rows(data.errors_before)[0] == [
        "A1",
        "B",
        "3",
        "37.5%",
        "0.317 ± 0.104",
        "0.600 ± 0.100",
    ]
    assert {len(r) for r in error_rows(data.errors_before)} == {len(ERROR_HEADER)}
    assert cost_rows(data) == []  # three classes: no business cost


def test_error_rows_stop_at_the_top_errors() -> None:
    data = sheet_data(
        fake_predictions(["a", "b", "c", "d"], n=400),
        ["a", "b", "c", "d"],
        "t",
        rule=default_rule(),
        costs=default_costs(),
    )
    assert len(data.errors_before) > TOP_ERRORS
    assert len(error_rows(data.errors_before)) == TOP_ERRORS


def test_card_and_metric_rows() -> None:
    metrics = {
        "cell": {"labels": "clean"},
        "n_train": 80,
        "n_val": 20,
        "n_removed_flagged": 3,
        "n_spared_flagged": 2,
        "test_unflagged": {"accuracy": 0.9},
    }
    card = dict(card_rows(three_classes(card=CARD, metrics=metrics)))
    assert card["parameters"] == "4,482" and card["FLOPs / sample"] == "280,160"
    assert card["n train · val · test"] == "80 · 20 · 9"
    assert card["epochs run · best"] == "– · –" and card["removed as flagged"] == "3"
    assert card["spared by own model"] == "2"
    rows = {r[0]: r[1:] for r in metric_rows(three_classes(metrics=metrics))}
    assert rows["accuracy"] == ["0.111", "0.900"]
    assert "HTER" not in rows  # binary targets only
    assert rows["abstained"][1] == ""


def test_binary_cost_rows_end_with_the_total() -> None:
    data = sheet_data(
        fake_predictions(["OK", "rest"]),
        ["OK", "rest"],
        "t",
        rule=default_rule(),
        costs=default_costs(),
    )
    rows = cost_rows(data)
    assert {len(r) for r in rows} == {len(COST_HEADER)}
    assert rows[-1][0] == "total" and int(rows[-1][3]) == data.n
    assert float(rows[-1][-1]) == data.cost.breakdown["cost"].sum()
    assert "Exact keys win over prefix patterns" in definitions(data, 10_000)


def test_definitions_state_the_rule_and_why_there_is_no_cost() -> None:
    text = definitions(three_classes(), 10_000)
    assert text.splitlines()[0].startswith("Cutoffs: cutoff maximises (1 − FPR)·TPR")
    assert text.splitlines()[-1].startswith("Cost: Business cost applies to binary targets")
    assert max(len(line) for line in definitions(three_classes(), 60).splitlines()) <= 60
