import numpy as np
import pandas as pd
import pytest

from spectragrid.targets import TargetError, display_code, resolve_target

OBSERVED = ["OK0", "CROCHET0", "VR2", "VR5", "VR11", "VR12", "NC4", "NC11", "NC14"]


@pytest.mark.parametrize(
    ("code", "classes"),
    [
        ("AVA IN", ("OK", "CROCHET", "VR", "NC")),
        ("AVA INs", ("OK-CROCHET", "VR-NC")),
        ("AVA TY", ("0", "2", "4", "5", "11", "12", "14")),
        ("AVA TYs", ("0", "1", "2", "4", "5")),
        ("AVA INTY", ("OK0", "CROCHET0", "VR2", "VR5", "VR11", "VR12", "NC4", "NC11", "NC14")),
        ("AVA INsTYs", ("OK", "CROCHET", "D1", "D2", "D4", "D5")),
        ("OVA OK", ("OK", "rest")),
        ("OVA CROCHET", ("CROCHET", "rest")),
        ("OVA 11", ("11", "rest")),
        ("OVA VR11", ("VR11", "rest")),
    ],
)
def test_class_lists_are_explicit_and_ordered(code, classes):
    assert resolve_target("t", code, OBSERVED).classes == classes


def test_encode_counts_on_a_labelled_series():
    values = pd.Series(["OK0"] * 5 + ["CROCHET0"] * 3 + ["VR11"] * 2 + ["NC4"])
    ova = resolve_target("t", "OVA OK", values)
    assert np.bincount(ova.encode(values)).tolist() == [5, 6]
    tys = resolve_target("t", "AVA TYs", values)
    assert tys.classes == ("0", "1", "4")
    assert np.bincount(tys.encode(values)).tolist() == [8, 2, 1]
    ins = resolve_target("t", "AVA INs", values)
    assert np.bincount(ins.encode(values)).tolist() == [8, 3]


def test_values_outside_the_target_encode_to_minus_one():
    target = resolve_target("t", "AVA IN", ["OK0", "NC4"])
    assert target.encode(pd.Series(["OK0", "XX9"])).tolist() == [0, -1]


@pytest.mark.parametrize("code", ["AVA XX", "OVA ZZ", "ALL IN", "OVA"])
def test_bad_codes_are_clear_errors(code):
    with pytest.raises(TargetError, match="target 'mine'"):
        resolve_target("mine", code, OBSERVED)


def test_display_code_is_the_users_spelling():
    assert display_code("OVA OK") == "['OVA', 'OK']"
