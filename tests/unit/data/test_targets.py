import numpy as np
import pandas as pd
import pytest

from spectragrid.data.targets import TargetError, display_code, resolve_target

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


def _table(values):
    full = pd.Series(values)
    return pd.DataFrame({"full_truth": full, "severity": full.str.extract(r"(\D+)")[0]})


def test_custom_target_maps_a_column_to_named_classes():
    from spectragrid.data.targets import resolve

    table = _table(["OK0", "CROCHET0", "VR11", "NC4", "VR5"])
    spec = {"column": "severity", "classes": {"sound": ["OK", "CROCHET"], "defect": ["VR"]}}
    target = resolve("mine", spec, table)
    assert target.classes == ("sound", "defect")
    # NC is listed under no class: outside the target
    assert target.encode(table["full_truth"]).tolist() == [0, 0, 1, -1, 1]


def test_custom_target_errors_name_the_config_key():
    from spectragrid.data.targets import resolve

    table = _table(["OK0", "VR11"])
    with pytest.raises(
        TargetError, match=r"targets\.mine\.classes: value 'OK' is listed under both"
    ):
        resolve("mine", {"column": "severity", "classes": {"a": ["OK"], "b": ["OK", "VR"]}}, table)
    with pytest.raises(TargetError, match=r"targets\.mine\.classes: no sample .* \['b'\]"):
        resolve("mine", {"column": "severity", "classes": {"a": ["OK"], "b": ["NC"]}}, table)


def test_a_class_smaller_than_the_fold_count_is_a_config_error():
    from spectragrid.data.targets import check_class_sizes

    values = pd.Series(["OK0"] * 10 + ["NC4"] * 2)
    target = resolve_target("rare", "AVA IN", values)
    with pytest.raises(
        TargetError, match=r"targets\.rare: class\(es\) NC \(2\) have fewer .* splits.k = 5"
    ):
        check_class_sizes(target, target.encode(values), 5)
    check_class_sizes(target, target.encode(values), 2)


@pytest.mark.parametrize("code", ["AVA INs", "AVA INsTYs"])
def test_labels_a_sound_vs_defect_code_does_not_cover_are_an_error(code):
    # a label_map that maps onto the user's own classes: neither sound nor a known defect
    observed = ["OK0", "VR5", "MOLD0", "BURNT2"]
    with pytest.raises(
        TargetError,
        match=rf"target 'mine': '{code}' splits OK/CROCHET from the defects VR/NC; "
        r"the labels 'BURNT', 'MOLD' are not covered: map them onto OK, CROCHET, VR, NC "
        r"in dataset.label_map, or define a custom target",
    ):
        resolve_target("mine", code, observed)
    # codes that take every label as its own class cover them
    assert resolve_target("mine", "AVA IN", observed).classes == ("OK", "VR", "MOLD", "BURNT")
    assert resolve_target("mine", "OVA OK", observed).members[1] == ("VR5", "MOLD0", "BURNT2")


@pytest.fixture(scope="module")
def demo_table(tmp_path_factory):
    from pathlib import Path

    import yaml

    from spectragrid.data.clean_file import read_clean
    from spectragrid.data.demo import generate_demo
    from spectragrid.data.ingest import ingest_with_config

    base = tmp_path_factory.mktemp("targets")
    config = yaml.safe_load((Path(__file__).parents[3] / "config" / "config.yaml").read_text())
    demo = generate_demo(base / "demo", n_samples=1500, seed=3)
    ingest_with_config(demo["raw_files"], base, config)
    return read_clean(base / "clean.parquet", ["277"]).table


def test_every_code_on_generated_data(demo_table):
    table = demo_table
    sev, typ, full = table["severity"], table["type"], table["full_truth"]
    coarse = typ.where(~typ.isin([11, 12, 13, 14]), 1)

    def counts(code):
        target = resolve_target("t", code, full)
        return dict(
            zip(
                target.classes,
                np.bincount(target.encode(full), minlength=target.n_classes),
                strict=True,
            )
        )

    assert counts("AVA IN") == {s: int((sev == s).sum()) for s in ("OK", "CROCHET", "VR", "NC")}
    assert counts("AVA INs") == {
        "OK-CROCHET": int(sev.isin(["OK", "CROCHET"]).sum()),
        "VR-NC": int(sev.isin(["VR", "NC"]).sum()),
    }
    assert counts("AVA TY") == {str(t): int((typ == t).sum()) for t in sorted(typ.unique())}
    assert counts("AVA TYs") == {str(t): int((coarse == t).sum()) for t in sorted(coarse.unique())}
    inty = counts("AVA INTY")
    assert inty == full.value_counts().to_dict() and list(inty)[:2] == ["OK0", "CROCHET0"]
    defects = sev.isin(["VR", "NC"])
    expected = {"OK": int((sev == "OK").sum()), "CROCHET": int((sev == "CROCHET").sum())}
    expected |= {
        f"D{t}": int((coarse[defects] == t).sum()) for t in sorted(coarse[defects].unique())
    }
    assert counts("AVA INsTYs") == expected
    assert counts("OVA OK") == {"OK": int((sev == "OK").sum()), "rest": int((sev != "OK").sum())}
    assert counts("OVA 11") == {"11": int((typ == 11).sum()), "rest": int((typ != 11).sum())}
    assert counts("OVA VR5") == {
        "VR5": int((full == "VR5").sum()),
        "rest": int((full != "VR5").sum()),
    }
    # every sample belongs to every coded target: they partition the data
    assert all(sum(counts(c).values()) == len(table) for c in ("AVA IN", "AVA TYs", "OVA OK"))


def _one_column(values):
    labels = pd.Series(values, dtype=object)
    return pd.DataFrame({"sample_id": range(len(values)), "label": labels, "full_truth": labels})


def test_one_label_column_classes_are_the_labels_in_natural_order():
    from spectragrid.data.targets import resolve

    table = _one_column(["A10", "A2", "rye", "A2", "10", "9"])
    target = resolve("all", "AVA", table)
    assert target.classes == ("9", "10", "A2", "A10", "rye")
    assert target.encode(table["full_truth"]).tolist() == [3, 2, 4, 2, 1, 0]
    ova = resolve("rye", "OVA rye", table)
    assert ova.classes == ("rye", "rest")
    assert ova.members == (("rye",), ("9", "10", "A2", "A10"))


def test_codes_of_severity_and_type_are_refused_on_one_label_column():
    from spectragrid.data.targets import resolve

    table = _one_column(["a", "b"])
    with pytest.raises(
        TargetError,
        match=r"target 'x': 'AVA IN' is a code of data sets with a severity and a type column; "
        r"this data set has one label column \(dataset.columns.label\)",
    ):
        resolve("x", "AVA IN", table)
    with pytest.raises(TargetError, match=r"'OVA c': no sample of the dataset is labelled 'c'"):
        resolve("x", "OVA c", table)
    with pytest.raises(
        TargetError,
        match=r"targets.x.column: 'severity' is not a label column of this data set, which has "
        r"one label column \(dataset.columns.label\); use one of label, full_truth",
    ):
        resolve("x", {"column": "severity", "classes": {"p": ["a"], "q": ["b"]}}, table)
    custom = resolve("x", {"column": "label", "classes": {"q": ["b"], "p": ["a"]}}, table)
    assert custom.classes == ("q", "p")


def test_ava_alone_is_every_full_truth_on_severity_and_type():
    assert (
        resolve_target("t", "AVA", OBSERVED).classes
        == resolve_target("t", "AVA INTY", OBSERVED).classes
    )


_CLASS_ORDER = """
import json, sys
from spectragrid.data.targets import resolve
import pandas as pd
labels = [f"x{chr(106 - i)}" for i in range(10)] + ["OK", "NC", "VR"]
table = pd.DataFrame({"full_truth": [f"{v}{t}" for v in labels for t in (0, 3)]})
table["severity"] = table["full_truth"].str.extract(r"(\\D+)")[0]
one = pd.DataFrame({"label": labels[::-1], "full_truth": labels[::-1]})
print(json.dumps({
    code: list(resolve("t", code, table).classes) for code in ("AVA IN", "AVA INTY", "OVA 3")
} | {"one": list(resolve("t", "AVA", one).classes)}))
"""


def test_class_order_is_the_same_under_any_hash_seed():
    import json
    import os
    import subprocess
    import sys

    orders = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _CLASS_ORDER],
                env=dict(os.environ, PYTHONHASHSEED=seed),
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for seed in ("1", "2")
    ]
    assert orders[0] == orders[1]
    assert orders[0]["AVA IN"][:3] == ["OK", "VR", "NC"]
    # labels outside the domain's severities: after them, in text order
    outside = [f"x{chr(97 + i)}" for i in range(10)]
    assert orders[0]["AVA IN"][3:] == outside
    assert orders[0]["one"] == ["NC", "OK", "VR", *outside]
