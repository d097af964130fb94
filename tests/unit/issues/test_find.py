import numpy as np
import pandas as pd
import pytest

from spectragrid.issues.find import (
    OOFError,
    assemble_oof,
    check_out_of_fold,
    find_issues,
    mean_oof,
    run_label_issues,
)

CLASSES = ["OK", "rest"]


def _cells(tmp_path, n=300, k=3, seed=0, wrong=()):
    """Test-fold predictions of k cells; samples in `wrong` carry a flipped given label."""
    rng = np.random.default_rng(seed)
    ids = [f"s{i:03d}" for i in range(n)]
    truth = (rng.random(n) < 0.3).astype(int)
    given = truth.copy()
    for i in wrong:
        given[i] = 1 - given[i]
    # a model that learned the truth: confident on the true class
    p_rest = np.clip(truth * 0.85 + (1 - truth) * 0.1 + rng.normal(0, 0.05, n), 0.01, 0.99)
    # the model is sure of the truth where the given label is plainly wrong
    p_rest[list(wrong)] = np.where(truth[list(wrong)] == 1, 0.98, 0.02)
    folds = np.arange(n) % k
    files = []
    for f in range(k):
        rows = folds == f
        frame = pd.DataFrame(
            {
                "sample_id": np.array(ids)[rows],
                "full_truth": np.where(given[rows] == 0, "OK0", "VR11"),
                "label": np.array(CLASSES)[given[rows]],
                "label_index": given[rows],
                "pred_index": (p_rest[rows] > 0.5).astype(int),
                "prob_OK": 1 - p_rest[rows],
                "prob_rest": p_rest[rows],
            }
        )
        path = tmp_path / f"f{f}.parquet"
        frame.to_parquet(path, index=False)
        files.append(path)
    clean = pd.DataFrame({"sample_id": ids, "full_truth": np.where(given == 0, "OK0", "VR11")})
    clean.to_parquet(tmp_path / "clean.parquet", index=False)
    pd.DataFrame({"sample_id": ids, "fold": folds}).to_parquet(tmp_path / "folds.parquet")
    return files, ids


def test_oof_covers_every_sample_once(tmp_path):
    files, ids = _cells(tmp_path)
    oof = assemble_oof(files, CLASSES, pd.Series(ids))
    assert len(oof) == len(ids) and oof["sample_id"].is_unique


def test_a_sample_predicted_twice_fails(tmp_path):
    files, ids = _cells(tmp_path)
    with pytest.raises(OOFError, match="more than one out-of-fold prediction"):
        assemble_oof([*files, files[0]], CLASSES, pd.Series(ids))


def test_a_missing_fold_fails(tmp_path):
    files, ids = _cells(tmp_path)
    with pytest.raises(OOFError, match="no out-of-fold prediction"):
        assemble_oof(files[:-1], CLASSES, pd.Series(ids))


def test_a_leaked_prediction_is_caught(tmp_path):
    files, _ = _cells(tmp_path)
    folds = pd.read_parquet(tmp_path / "folds.parquet")
    oof = assemble_oof(files, CLASSES)
    oof["cell_fold"] = oof["source"].map({str(f): i for i, f in enumerate(files)})
    check_out_of_fold(oof, folds)  # genuine: passes
    # the cell of fold 1 "predicts" a sample of fold 0, i.e. one it trained on
    leaked = oof.copy()
    leaked.loc[leaked["cell_fold"] == 0, "cell_fold"] = 1
    with pytest.raises(OOFError, match="not out-of-fold"):
        check_out_of_fold(leaked, folds)


def test_run_label_issues_refuses_swapped_fold_files(tmp_path):
    files, _ = _cells(tmp_path)
    kwargs = dict(
        models=["m"],
        k=3,
        target_spec="OVA OK",
        clean_path=tmp_path / "clean.parquet",
        folds_path=tmp_path / "folds.parquet",
        out_issues=tmp_path / "issues.csv",
        out_oof=tmp_path / "oof.parquet",
    )
    with pytest.raises(OOFError, match="not out-of-fold"):
        run_label_issues([files[1], files[0], files[2]], **kwargs)
    assert not (tmp_path / "issues.csv").exists()


def test_cleanlab_finds_the_flipped_labels(tmp_path):
    wrong = list(range(0, 300, 25))  # 12 flipped labels
    files, _ = _cells(tmp_path, wrong=wrong)
    issues = run_label_issues(
        files,
        ["m"],
        3,
        "OVA OK",
        tmp_path / "clean.parquet",
        tmp_path / "folds.parquet",
        tmp_path / "issues.csv",
        tmp_path / "oof.parquet",
    )
    flagged = set(issues["sample_id"])
    planted = {f"s{i:03d}" for i in wrong}
    assert len(flagged & planted) >= 11
    assert len(flagged - planted) <= 3
    assert issues["rank"].tolist() == list(range(1, len(issues) + 1))
    # ranked by self-confidence: label quality ascending
    assert issues["label_quality"].is_monotonic_increasing
    on_disk = pd.read_csv(tmp_path / "issues.csv", dtype={"sample_id": str})
    assert set(on_disk.columns) == {
        "sample_id",
        "given_label",
        "suggested_label",
        "label_quality",
        "rank",
        "flagged_by",
    }
    assert (on_disk["flagged_by"] == "m").sum() >= 11
    row = on_disk.iloc[0]
    assert row["given_label"] != row["suggested_label"]


def test_mean_of_models_averages_probabilities(tmp_path):
    files, _ = _cells(tmp_path)
    a = assemble_oof(files, CLASSES)
    b = a.copy()
    b["prob_OK"], b["prob_rest"] = 0.5, 0.5
    mean = mean_oof([a, b], CLASSES)
    assert np.allclose(mean["prob_OK"], (a["prob_OK"] + 0.5) / 2)
    assert len(find_issues(mean, CLASSES)) >= 0


@pytest.mark.parametrize("action", ["drop", "relabel", "downweight"])
def test_each_action_changes_only_training_and_validation_rows(action):
    from spectragrid.train.label_action import apply_action

    ids = pd.Series([f"s{i}" for i in range(8)])
    labels = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    editable = np.array([True, True, True, True, True, False, False, False])  # 5-7: test fold
    issues = pd.DataFrame(
        {"sample_id": ["s1", "s2", "s6", "s7"], "suggested_label": ["rest", "OK", "rest", "OK"]}
    )
    out = apply_action(action, issues, ids, labels, CLASSES, editable, weight=0.25)
    assert out.flagged.tolist() == [False, True, True, False, False, False, True, True]
    # test rows 5-7 are untouched whatever the action
    assert out.labels[5:].tolist() == labels[5:].tolist()
    assert out.keep[5:].all() and (out.weights[5:] == 1).all()
    changed = (out.labels != labels) | ~out.keep | (out.weights != 1)
    assert np.flatnonzero(changed).tolist() == [1, 2]
    if action == "drop":
        assert out.keep.tolist() == [True, False, False, True, True, True, True, True]
    elif action == "relabel":
        assert out.labels[[1, 2]].tolist() == [1, 0]
    else:
        assert out.weights[[1, 2]].tolist() == [0.25, 0.25]


def test_downweighted_samples_count_less_in_the_loss():
    import torch

    from spectragrid.train.losses import build_loss

    loss = build_loss({}, np.array([5, 5]))
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    targets = torch.tensor([1, 1])
    plain = loss(logits, targets)
    weighted = loss(logits, targets, torch.tensor([0.1, 1.0]))
    per_sample = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    assert torch.isclose(weighted, (0.1 * per_sample[0] + per_sample[1]) / 2)
    assert weighted < plain
