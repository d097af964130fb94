"""Labels that k folds cannot spread, said in the user's terms."""

import pandas as pd

from spectragrid.data.fold_notices import MAX_NOTICES, fold_notices


def _table(counts: dict[str, int], groups_per_label: dict[str, int] | None = None) -> pd.DataFrame:
    rows = []
    for label, n in counts.items():
        g = (groups_per_label or {}).get(label, n)
        rows += [(label, f"{label}-g{i % g}") for i in range(n)]
    frame = pd.DataFrame(rows, columns=["full_truth", "group"])
    frame["label"] = frame["full_truth"]
    return frame


def test_a_label_smaller_than_k_is_one_line():
    notices = fold_notices(_table({"rye": 4, "wheat": 40}), k=5, grouped=True, group_column="lot")
    assert notices == [
        "label 'rye' has 4 samples, fewer than splits.k = 5: 1 of the 5 test folds hold none of "
        "it, and a target class with fewer than 5 samples fails its cells (merge the class "
        "into another, leave it out of the targets, or lower splits.k)"
    ]


def test_a_label_in_fewer_groups_than_k_is_one_line_unless_folds_are_not_grouped():
    table = _table({"rye": 12, "wheat": 40}, {"rye": 2})
    assert fold_notices(table, k=5, grouped=True, group_column="lot") == [
        "label 'rye': its 12 samples lie in 2 groups of 'lot' (dataset.columns.group), whose "
        "samples stay in one fold, so only 2 of the 5 test folds hold it"
    ]
    assert fold_notices(table, k=5, grouped=False, group_column="lot") == []
    assert fold_notices(table, k=5, grouped=True, group_column=None) == []


def test_severity_and_type_labels_are_named_as_full_truths_in_class_order():
    table = _table({"NC4": 2, "OK0": 50, "VR11": 1}).drop(columns="label")
    notices = fold_notices(table, k=3, grouped=False, group_column=None)
    assert [n.split(" has ")[0] for n in notices] == ["full truth 'VR11'", "full truth 'NC4'"]
    assert notices[0].startswith("full truth 'VR11' has 1 sample, fewer than splits.k = 3: 2 of")


def test_many_notices_are_cut_with_a_count():
    table = _table({f"c{i}": 1 for i in range(MAX_NOTICES + 7)})
    notices = fold_notices(table, k=3, grouped=False, group_column=None)
    assert len(notices) == MAX_NOTICES + 1
    assert notices[-1] == "and 7 more such notices"
