import math

import pandas as pd
import pytest

from spectragrid.data.targets import Target, resolve_target
from spectragrid.issues.flagged_set_scores import (
    agreement_matrix,
    detection_scores,
    jaccard,
    truly_mislabelled,
)

OBSERVED = ["OK0", "CROCHET0", "VR5", "VR11", "NC4"]


def _series(values: dict[str, str]) -> pd.Series:
    return pd.Series(list(values.values()), index=list(values))


def test_ova_ok_a_defect_recorded_as_another_defect_is_not_mislabelled():
    target = resolve_target("t", "OVA OK", OBSERVED)
    given = _series({"a": "OK0", "b": "VR5", "c": "VR11", "d": "CROCHET0", "e": "OK0"})
    true = _series({"a": "VR11", "b": "VR11", "c": "VR11", "d": "OK0", "e": "OK0"})
    truly = truly_mislabelled(given, true, target)
    assert truly.index.tolist() == ["a", "b", "c", "d", "e"]
    assert truly.tolist() == [True, False, False, True, False]
    assert truly.dtype == bool


def test_ava_in_distinguishes_severities():
    target = resolve_target("t", "AVA IN", OBSERVED)
    given = _series({"a": "VR5", "b": "NC4", "c": "OK0"})
    true = _series({"a": "VR11", "b": "VR5", "c": "OK0"})
    assert truly_mislabelled(given, true, target).tolist() == [False, True, False]


def test_samples_outside_the_target_or_without_truth_are_dropped():
    target = Target(
        name="t",
        code="custom severity",
        classes=("sound", "defect"),
        members=(("OK0",), ("VR5", "VR11")),
    )
    # CROCHET0 belongs to neither class; "z" has no truth; "y" has truth only
    given = _series({"a": "OK0", "b": "CROCHET0", "c": "VR5", "z": "OK0"})
    true = _series({"a": "VR5", "b": "OK0", "c": "CROCHET0", "y": "OK0"})
    truly = truly_mislabelled(given, true, target)
    assert truly.to_dict() == {"a": True}


def test_repeated_ids_are_refused():
    target = resolve_target("t", "OVA OK", OBSERVED)
    given = pd.Series(["OK0", "VR5"], index=["a", "a"])
    with pytest.raises(ValueError, match="repeats sample_id 'a'"):
        truly_mislabelled(given, _series({"a": "OK0"}), target)


def test_scores_hand_computed():
    # 6 judged samples, 3 truly mislabelled (a, b, c); flagged a, b, d, e + x (unknown)
    truly = pd.Series([True, True, True, False, False, False], index=["a", "b", "c", "d", "e", "f"])
    scores = detection_scores({"a", "b", "d", "e", "x"}, truly)
    assert scores["n_flagged"] == 4
    assert scores["n_truly_mislabelled"] == 3
    assert scores["true_positives"] == 2
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_scores_with_nothing_flagged_are_nan_not_an_error():
    truly = pd.Series([True, False], index=["a", "b"])
    scores = detection_scores(set(), truly)
    assert math.isnan(scores["precision"]) and math.isnan(scores["f1"])
    assert scores["recall"] == 0.0
    assert scores["n_flagged"] == 0 and scores["true_positives"] == 0


def test_scores_all_wrong_give_f1_zero_and_no_mislabelled_gives_nan_recall():
    truly = pd.Series([True, False], index=["a", "b"])
    wrong = detection_scores({"b"}, truly)
    assert (wrong["precision"], wrong["recall"], wrong["f1"]) == (0.0, 0.0, 0.0)
    clean = detection_scores({"a"}, pd.Series([False, False], index=["a", "b"]))
    assert clean["precision"] == 0.0
    assert math.isnan(clean["recall"]) and math.isnan(clean["f1"])


def test_jaccard():
    assert jaccard(set(), set()) == 1.0
    assert jaccard({"a"}, set()) == 0.0
    assert jaccard({"a", "b", "c"}, {"b", "c", "d"}) == pytest.approx(2 / 4)
    assert jaccard({"a"}, {"a"}) == 1.0


def test_agreement_matrix_is_symmetric_with_unit_diagonal():
    sets = {"m2": {"a", "b"}, "m1": {"b", "c", "d"}, "none": set()}
    matrix = agreement_matrix(sets)
    assert matrix.index.tolist() == ["m2", "m1", "none"]
    assert matrix.columns.tolist() == ["m2", "m1", "none"]
    assert matrix.loc["m2", "m1"] == pytest.approx(1 / 4)
    assert matrix.loc["m1", "m2"] == pytest.approx(1 / 4)
    assert matrix.loc["none", "none"] == 1.0
    assert matrix.loc["m2", "none"] == 0.0
    assert agreement_matrix({}).shape == (0, 0)
