import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oof_cases import clean_file, folds_file, issue_settings, issues_outputs, write_cells

from spectragrid.issues.find import chosen_sources, find_issues, run_label_issues
from spectragrid.issues.out_of_fold import OOFError, assemble_oof, mean_oof, oof_log_loss
from spectragrid.train.label_action import read_issues


def job_paths(work):
    outputs = issues_outputs(work)
    return {
        "clean_path": clean_file(work),
        "folds_path": folds_file(work),
        "out_issues": outputs["issues"],
        "out_oof": outputs["oof"],
        # the cells here are written by the test, without checksums
        "check_outputs": False,
        **issue_settings(),
    }


def test_run_label_issues_refuses_swapped_fold_files(tmp_path):
    files, _ = write_cells(tmp_path)
    kwargs = dict(models=["m"], k=3, target_spec="OVA OK", **job_paths(tmp_path))
    with pytest.raises(OOFError, match="not out-of-fold"):
        run_label_issues([files[1], files[0], files[2]], **kwargs)
    assert not issues_outputs(tmp_path)["issues"].exists()


def test_run_label_issues_refuses_a_missing_cell(tmp_path):
    files, _ = write_cells(tmp_path)
    with pytest.raises(OOFError, match="expected 6 prediction files, got 3"):
        run_label_issues(files, ["m", "n"], 3, "OVA OK", **job_paths(tmp_path))


def test_cleanlab_finds_the_flipped_labels(tmp_path):
    wrong = list(range(0, 300, 25))  # 12 flipped labels
    files, _ = write_cells(tmp_path, wrong=wrong)
    paths = job_paths(tmp_path)
    issues = run_label_issues(files, ["m"], 3, "OVA OK", **paths)
    flagged = set(issues["sample_id"])
    planted = {f"s{i:03d}" for i in wrong}
    assert len(flagged & planted) >= 11
    assert len(flagged - planted) <= 3
    assert issues["rank"].tolist() == list(range(1, len(issues) + 1))
    # ranked by self-confidence: label quality ascending
    assert issues["label_quality"].is_monotonic_increasing
    on_disk = pd.read_csv(paths["out_issues"], dtype={"sample_id": str})
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


def test_the_issues_file_reads_back_through_the_one_reader(tmp_path):
    files, _ = write_cells(tmp_path, wrong=[0, 25, 50])
    paths = job_paths(tmp_path)
    issues = run_label_issues(files, ["m"], 3, "OVA OK", **paths)
    back = read_issues(paths["out_issues"])
    assert back["sample_id"].tolist() == issues["sample_id"].tolist()
    assert back["label_quality"].to_numpy() == pytest.approx(issues["label_quality"], rel=1e-5)
    oof = pd.read_parquet(paths["out_oof"])
    assert list(oof.columns) == ["sample_id", "label_index", "label", "prob_OK", "prob_rest"]
    assert len(oof) == 300


def test_find_issues_ranks_the_given_labels_the_model_doubts_most(tmp_path):
    files, _ = write_cells(tmp_path, wrong=[0, 25, 50])
    oof = assemble_oof(files, ["OK", "rest"])
    issues = find_issues(oof, ["OK", "rest"], **issue_settings())
    assert set(issues["sample_id"]) >= {"s000", "s025", "s050"}
    given = oof.set_index("sample_id")["label"]
    assert (issues["given_label"].to_numpy() == given[issues["sample_id"]].to_numpy()).all()
    assert (issues["given_label"] != issues["suggested_label"]).all()


def _weak_copy(files, seed=1):
    """The same cells as another model that barely learned: probabilities near 0.5."""
    rng = np.random.default_rng(seed)
    copies = []
    for path in files:
        frame = pd.read_parquet(path)
        p_rest = np.clip(0.5 + rng.normal(0, 0.1, len(frame)), 0.01, 0.99)
        frame["prob_rest"], frame["prob_OK"] = p_rest, 1 - p_rest
        frame["pred_index"] = (p_rest > 0.5).astype(int)
        out = Path(str(path).replace("/m/", "/weak/"))
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(out, index=False)
        copies.append(out)
    return copies


@pytest.mark.parametrize("weak_first", [False, True])
def test_best_log_loss_keeps_the_strongest_source_whatever_its_place(tmp_path, weak_first):
    wrong = list(range(0, 300, 25))
    files, _ = write_cells(tmp_path, wrong=wrong)
    weak = _weak_copy(files)
    paths = job_paths(tmp_path)
    evidence_path = tmp_path / "evidence.json"
    order = [("weak", weak), ("m", files)] if weak_first else [("m", files), ("weak", weak)]
    issues = run_label_issues(
        [f for _, group in order for f in group],
        [name for name, _ in order],
        3,
        "OVA OK",
        combine="best_log_loss",
        out_evidence=evidence_path,
        **paths,
    )
    evidence = json.loads(evidence_path.read_text())
    assert evidence["combine"] == "best_log_loss" and evidence["used"] == ["m"]
    assert evidence["log_loss"]["m"] < evidence["log_loss"]["weak"]
    assert evidence["used_log_loss"] == pytest.approx(evidence["log_loss"]["m"])
    # the same issues as the strong source alone
    alone = find_issues(assemble_oof(files, ["OK", "rest"]), ["OK", "rest"], **issue_settings())
    assert issues["sample_id"].tolist() == alone["sample_id"].tolist()
    assert len(set(issues["sample_id"]) & {f"s{i:03d}" for i in wrong}) >= 11


def test_mean_averages_every_source_and_records_it(tmp_path):
    files, _ = write_cells(tmp_path, wrong=[0, 25, 50])
    weak = _weak_copy(files)
    paths = job_paths(tmp_path)
    evidence_path = tmp_path / "evidence.json"
    run_label_issues(
        files + weak,
        ["m", "weak"],
        3,
        "OVA OK",
        combine="mean",
        out_evidence=evidence_path,
        **paths,
    )
    evidence = json.loads(evidence_path.read_text())
    assert evidence["used"] == ["m", "weak"]
    oof = pd.read_parquet(paths["out_oof"]).set_index("sample_id")
    strong = assemble_oof(files, ["OK", "rest"]).set_index("sample_id")
    faint = assemble_oof(weak, ["OK", "rest"]).set_index("sample_id")
    expected = (strong["prob_rest"] + faint["prob_rest"]) / 2
    assert oof["prob_rest"].to_numpy() == pytest.approx(expected.reindex(oof.index).to_numpy())


def test_an_unknown_combine_is_refused(tmp_path):
    files, _ = write_cells(tmp_path)
    with pytest.raises(ValueError, match=r"label_issues\.combine: 'vote'"):
        run_label_issues(files, ["m"], 3, "OVA OK", combine="vote", **job_paths(tmp_path))


def _oof(given: np.ndarray, p_rest: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sample_id": [f"s{i:03d}" for i in range(len(given))],
            "label_index": given,
            "label": np.where(given == 0, "OK", "rest"),
            "prob_OK": 1 - p_rest,
            "prob_rest": p_rest,
        }
    )


def test_greedy_log_loss_averages_the_sources_that_help_and_leaves_the_weak_one_out():
    given = np.tile([0, 1], 200)
    first_half = np.arange(400) < 200

    def sure_on(rows: np.ndarray, p_right: float) -> np.ndarray:
        # right with confidence p_right on `rows`, undecided elsewhere
        p_given = np.where(rows, p_right, 0.5)
        return np.where(given == 1, p_given, 1 - p_given)

    sources = [
        _oof(given, np.full(400, 0.5)),  # weak: no opinion anywhere
        _oof(given, sure_on(~first_half, 0.94)),
        _oof(given, sure_on(first_half, 0.96)),
    ]
    classes = ["OK", "rest"]
    losses = [oof_log_loss(o, classes) for o in sources]
    assert chosen_sources(sources, losses, classes, "best_log_loss") == [2]
    assert chosen_sources(sources, losses, classes, "mean") == [0, 1, 2]
    used = chosen_sources(sources, losses, classes, "greedy_log_loss")
    assert used == [2, 1]
    pair = oof_log_loss(mean_oof([sources[2], sources[1]], classes), classes)
    trio = oof_log_loss(mean_oof(sources, classes), classes)
    # the average of the two complementary sources beats either; the weak one would not help
    assert pair < losses[2] < losses[1] and trio > pair


def test_model_mean_takes_each_model_on_its_best_channel_set():
    rng = np.random.default_rng(7)
    given = rng.integers(0, 2, 300)
    classes = ["OK", "rest"]

    def right_with(p: float) -> pd.DataFrame:
        return _oof(given, np.where(given == 1, p, 1 - p))

    # cnn is best on its own channel set, svm on another; a third model has one source
    sources = [right_with(0.9), right_with(0.7), right_with(0.6), right_with(0.8), right_with(0.55)]
    names = ["cnn", "svm", "cnn/ex277", "svm/ex277", "pls_da/ex277"]
    losses = [oof_log_loss(o, classes) for o in sources]
    assert chosen_sources(sources, losses, classes, "model_mean", names) == [0, 3, 4]
    with pytest.raises(ValueError, match="model_mean"):
        chosen_sources(sources, losses, classes, "model_mean")


def test_greedy_log_loss_keeps_one_source_when_no_average_beats_it():
    rng = np.random.default_rng(4)
    given = (rng.random(300) < 0.5).astype(int)
    sharp = np.clip(given * 0.9 + 0.05 + rng.normal(0, 0.02, 300), 0.01, 0.99)
    flat = np.full(300, 0.5)
    sources = [_oof(given, flat), _oof(given, sharp)]
    losses = [oof_log_loss(o, ["OK", "rest"]) for o in sources]
    assert chosen_sources(sources, losses, ["OK", "rest"], "greedy_log_loss") == [1]
