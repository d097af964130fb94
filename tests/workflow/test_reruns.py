"""Config edit -> exactly the jobs `snakemake -n` plans, on a copy of the finished tiny study.

Each case copies the study's outputs and Snakemake's metadata (timestamps
kept) into a fresh folder, applies one edit to the tiny config, and compares
the dry run's rule -> job count table exactly: an edit must rerun every job
whose output it changes and nothing else.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tiny_study import Workdir, tiny_config

from spectragrid.core import layout

pytestmark = pytest.mark.slow

Edit = Callable[[dict], None]


def _set(path: str, value: object) -> Edit:
    def edit(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def _new_model(config: dict) -> None:
    wide = yaml.safe_load(yaml.safe_dump(config["models"]["small"]))
    wide["params"]["widths"] = [6, 6, 6]
    config["models"]["wide"] = wide
    config["grid"]["models"].append("wide")


def _new_channel_set(config: dict) -> None:
    config["channel_sets"]["ex277"] = ["277"]
    config["grid"]["channel_sets"].append("ex277")


def _reversed_keys(value: object) -> object:
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


def _commented_and_reordered(work: Workdir, config: dict) -> None:
    """Every mapping's keys in reverse order, with comments between them."""
    text = yaml.safe_dump(_reversed_keys(config), sort_keys=False)
    lines = ["# the same study, keys reordered", ""]
    for line in text.splitlines():
        lines.append(line)
        if line.endswith(":"):
            lines.append(f"{' ' * (len(line) - len(line.lstrip()) + 2)}# why this section")
    (work.path / "config" / "config.yaml").write_text("\n".join(lines) + "\n")


ALL = {"summary": 1, "all": 1}
# The tiny study: models cnn (feeds cleanlab) and small, target OVA_OK,
# channel set all, seed 0, k = 3, raw and clean labels: 12 cells, 1 issues job.
# train and sheet jobs each cover one fold group: the K = 3 folds of a cell.
CASES: list[tuple[str, Edit | None, dict[str, int]]] = [
    (
        "lr of a model that does not feed cleanlab",
        _set("models.small.train.lr", 0.01),
        {"train": 2, "sheet": 2, **ALL},
    ),
    (
        "lr of the model that feeds cleanlab",
        _set("models.cnn.train.lr", 0.01),
        {"train": 3, "label_issues": 1, "sheet": 3, **ALL},
    ),
    ("a new model", _new_model, {"train": 2, "sheet": 2, **ALL}),
    (
        "the preprocessing of a model that does not feed cleanlab",
        _set("models.small.preprocessing", ["snv", "minmax"]),
        {"train": 2, "sheet": 2, **ALL},
    ),
    (
        "a new channel set",
        _new_channel_set,
        # its labels are judged by the `all` cells (label_issues.channel_sets: [all]):
        # its own raw and clean cells and issues job run; the `all` ones stay
        {"train": 4, "label_issues": 1, "sheet": 4, **ALL},
    ),
    (
        "a new seed",
        _set("splits.seeds", [0, 1]),
        {"split": 1, "train": 4, "label_issues": 1, "sheet": 4, **ALL},
    ),
    (
        "one more fold",
        _set("splits.k", 4),
        # ingest too: its report names the labels that k folds cannot spread
        {"ingest": 1, "split": 1, "train": 4, "label_issues": 1, "sheet": 4, **ALL},
    ),
    (
        "a cleaning threshold",
        _set("cleaning.saturation.277", 6400),
        {"ingest": 1, "split": 1, "train": 4, "label_issues": 1, "sheet": 4, **ALL},
    ),
    (
        "a cleanlab filter",
        _set("label_issues.filter_by", "prune_by_class"),
        {"label_issues": 1, "train": 2, "sheet": 2, **ALL},
    ),
    (
        "how the sources of evidence combine",
        _set("label_issues.combine", "mean"),
        {"label_issues": 1, "train": 2, "sheet": 2, **ALL},
    ),
    (
        "what clean cells do with flagged samples",
        _set("label_issues.action", "relabel"),
        {"train": 2, "sheet": 2, **ALL},
    ),
    (
        "each model's own veto, turned off",
        _set("label_issues.own_model_veto", False),
        # the clean cells no longer read their model's raw predictions
        {"train": 2, "sheet": 2, **ALL},
    ),
    (
        "a target's mapping",
        _set("targets.OVA_OK", {"column": "severity", "classes": {"OK": ["OK"], "VR": ["VR"]}}),
        {"train": 4, "label_issues": 1, "sheet": 4, **ALL},
    ),
    ("the cutoff rule", _set("report.cutoff", {"rule": "recall"}), {"sheet": 4, **ALL}),
    ("the cost table", _set("report.costs", {"OK0": -2, "NC*": 100}), {"sheet": 4, **ALL}),
    ("the summary's best metric", _set("report.best_metric", "test_auc"), ALL),
    ("the significance level", _set("report.significance", 0.1), ALL),
    ("comments and key order", None, {}),
]


@pytest.mark.parametrize(
    ("edit", "planned"),
    [pytest.param(edit, planned, id=name) for name, edit, planned in CASES],
)
def test_an_edit_plans_exactly_the_jobs_it_affects(
    finished_tiny_study: Workdir, tmp_path: Path, edit: Edit | None, planned: dict[str, int]
) -> None:
    work = Workdir(tmp_path)
    done = finished_tiny_study.path
    for folder in (layout.RESULTS, "resources", ".snakemake/metadata"):
        shutil.copytree(done / folder, tmp_path / folder)
    config = tiny_config()
    if edit is None:
        _commented_and_reordered(work, config)
    else:
        edit(config)
        work.write_config(config)
    assert work.planned_jobs() == planned


@pytest.mark.parametrize(("section", "name"), [("models", "../x"), ("channel_sets", "a/b")])
def test_a_name_that_would_leave_results_stops_snakemake_before_any_job(
    tmp_path: Path, section: str, name: str
) -> None:
    work = Workdir(tmp_path)
    config = tiny_config()
    config[section][name] = next(iter(config[section].values()))
    config["grid"][section].append(name)
    work.write_config(config)
    proc = work.snakemake(check=False)
    assert proc.returncode != 0
    assert f"{section}: {name!r} is not a valid name" in proc.stderr
    assert not (tmp_path / layout.RESULTS).exists()
    assert not (tmp_path / "resources").exists()
