import numpy as np
import pandas as pd
import pytest

from spectragrid.data.splits import (
    SplitError,
    assign_folds,
    fold_parts,
    given_folds,
    read_fold_parts,
    write_folds,
)


def _samples(n=600, seed=0):
    rng = np.random.default_rng(seed)
    groups = [f"g{i // 3}" for i in range(n)]  # replicates of a lot share a group
    strata = np.where(rng.random(n // 3) < 0.7, "OK0", "VR11").repeat(3)
    return pd.DataFrame(
        {"sample_id": [f"s{i:04d}" for i in range(n)], "strata": strata, "group": groups}
    )


def test_folds_are_grouped_stratified_and_cover_every_sample_once():
    df = _samples()
    folds = assign_folds(df["sample_id"], df["strata"], df["group"], k=5, seed=42)
    assert folds["sample_id"].tolist() == df["sample_id"].tolist()
    assert set(folds["fold"]) == set(range(5))
    # no group straddles two folds
    per_group = pd.Series(folds["fold"].to_numpy()).groupby(df["group"].to_numpy()).nunique()
    assert per_group.max() == 1
    # stratification: each fold's VR11 share within 5 points of the overall share
    share = (df["strata"] == "VR11").mean()
    for f in range(5):
        in_fold = folds["fold"].to_numpy() == f
        assert abs((df["strata"][in_fold] == "VR11").mean() - share) < 0.05


def test_folds_do_not_depend_on_row_order_and_change_with_seed():
    df = _samples()
    a = assign_folds(df["sample_id"], df["strata"], df["group"], k=5, seed=1)
    shuffled = df.sample(frac=1, random_state=3)
    b = assign_folds(shuffled["sample_id"], shuffled["strata"], shuffled["group"], k=5, seed=1)
    assert a.set_index("sample_id")["fold"].equals(
        b.set_index("sample_id")["fold"].loc[a["sample_id"]]
    )
    c = assign_folds(df["sample_id"], df["strata"], df["group"], k=5, seed=2)
    assert not np.array_equal(a["fold"], c["fold"])


def test_fold_parts_partition_the_rows():
    folds = np.array([0, 1, 2, 3, 4] * 4)
    parts = fold_parts(folds, 4, 5)
    assert (parts.train.astype(int) + parts.val + parts.test == 1).all()
    assert set(folds[parts.test]) == {4} and set(folds[parts.val]) == {0}
    assert set(folds[parts.train]) == {1, 2, 3}


def test_too_few_groups_is_a_clear_error():
    df = _samples(n=9)
    with pytest.raises(SplitError, match="only 3 groups"):
        assign_folds(df["sample_id"], df["strata"], df["group"], k=5, seed=0)


def test_scikit_learns_warning_on_a_rare_label_is_one_line_in_our_terms(caplog, recwarn):
    df = _samples(60)
    df.loc[:3, "strata"] = "NC4"  # 4 samples, 5 folds
    with caplog.at_level("WARNING", logger="spectragrid"):
        assign_folds(df["sample_id"], df["strata"], None, k=5, seed=0)
    assert [r.getMessage() for r in caplog.records] == [
        "the rarest label has 4 samples, fewer than splits.k = 5: not every test fold holds "
        "it, and its folds are not stratified (the cleaning report's notices name each such "
        "label)"
    ]
    assert not [w for w in recwarn if "least populated" in str(w.message)]


def test_too_few_groups_says_what_to_do():
    df = _samples(30)
    df["group"] = [f"g{i % 4}" for i in range(30)]
    with pytest.raises(SplitError) as info:
        assign_folds(df["sample_id"], df["strata"], df["group"], k=5, seed=0)
    assert str(info.value) == (
        "splits.k = 5 but the data have only 4 groups (dataset.columns.group, whose samples "
        "stay in one fold): lower splits.k to 4, or set splits.grouped: false if the "
        "replicates of a group are independent"
    )


def test_a_given_split_keeps_each_sample_in_its_given_part(tmp_path):
    ids = pd.Series([f"{part}/c/{i}.png" for i, part in enumerate(["test", "train", "val"] * 3)])
    folds = given_folds(tmp_path / "clean.parquet", ids, ids.str.split("/").str[0])
    write_folds(tmp_path / "given.parquet", folds, seed=0, k=1)
    # read back in another row order: the masks follow the ids, not the file's rows
    order = ids.iloc[::-1].reset_index(drop=True)
    parts = read_fold_parts(tmp_path / "given.parquet", order, 0, 1)
    assert order[parts.test].str.startswith("test/").all() and parts.test.sum() == 3
    assert order[parts.val].str.startswith("val/").all() and parts.val.sum() == 3
    assert order[parts.train].str.startswith("train/").all() and parts.train.sum() == 3
    with pytest.raises(SplitError, match=r"one fold \(f0of1\); cell f1of3 is not in it"):
        read_fold_parts(tmp_path / "given.parquet", order, 1, 3)


def test_a_given_split_needs_every_part_and_a_part_for_every_sample(tmp_path):
    clean = tmp_path / "clean.parquet"
    ids = pd.Series(["train/a/1.png", "test/a/2.png", "train/b/3.png"])
    with pytest.raises(SplitError, match=r"splits\.given: the given val folder\(s\) hold no kept"):
        given_folds(clean, ids, ids.str.split("/").str[0])
    with pytest.raises(SplitError, match=r"given in no train/val/test folder \(e\.g\. 'b/3.png'\)"):
        given_folds(clean, pd.Series(["a/1.png", "b/3.png"]), pd.Series(["train", None]))
