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
