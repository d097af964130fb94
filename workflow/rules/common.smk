import functools
import inspect
import os
from pathlib import Path

from spectragrid.core import layout
from spectragrid.core.config import ConfigError, config_hash, trained_models, validate
from spectragrid.data.clean_file import read_labels
from spectragrid.data.fingerprints import content_digests
from spectragrid.data.image_config import check_image_config, image_raw_files
from spectragrid.data.label_patch import (
    LabelPatchError,
    patch_for_target,
    read_label_patch,
)
from spectragrid.train.output_checksums import changed_since_recorded
from spectragrid.train.study_checks import check_study_models

SCHEMA = Path(workflow.basedir) / "schemas" / "config.schema.yaml"

try:
    CONFIG = validate(config, SCHEMA)
    # What the schema cannot see: the data set's kind against the models, pretrained
    # files on disk, image models' parameter budgets.
    check_image_config(CONFIG)
    check_study_models(CONFIG)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# glibc returns freed activations to the kernel and faults them back in every
# training step; raising these thresholds keeps them mapped (measured 1.45x
# faster steps). Set here so every job process inherits them at start-up.
os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "33554432")
os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", "17179869184")

DATASET = CONFIG["dataset"]["name"]
IS_DEMO = "demo" in CONFIG["dataset"]
RAW_FILES = layout.demo_raw_files() if IS_DEMO else list(CONFIG["dataset"]["raw"])
# Ingest reruns when a raw file's content changes, not its time (a copy or a
# touch replans nothing). The demo's files are outputs of the demo rule, whose
# own params say when they change.
RAW_SHA256 = (
    {} if IS_DEMO else content_digests(RAW_FILES, Path(layout.RAW_DIGEST_CACHE))
)
# An image data set (dataset.images): the ingest reads its folder (and label file),
# rerun when the content of any image or of the label file changes.
IMAGES = CONFIG["dataset"].get("images")
if IMAGES:
    RAW_FILES, _image_files = image_raw_files(IMAGES)
    RAW_SHA256 = content_digests(_image_files, Path(layout.RAW_DIGEST_CACHE))
TRUTH = CONFIG["dataset"]["truth"]
GRID = CONFIG["grid"]
SEEDS = CONFIG["splits"]["seeds"]
# A given split (splits.given: an image tree's train/val/test folders) is one fold,
# f0of1, whose parts are the given folders; splits.k applies to the K seeded folds only.
K = 1 if CONFIG["splits"]["given"] else CONFIG["splits"]["k"]
LABEL_SETS = ["raw", "clean"] if CONFIG["label_issues"]["enabled"] else ["raw"]
REPORT = CONFIG["report"]
_patch_files = CONFIG["dataset"]["label_patch"] or []
try:
    LABEL_PATCH = read_label_patch(
        [_patch_files] if isinstance(_patch_files, str) else _patch_files,
        severities=list(CONFIG["dataset"]["label_map"].values()),
        one_column=CONFIG["dataset"]["columns"].get("label") is not None,
    )
except LabelPatchError as err:
    raise WorkflowError(str(err)) from None


def rule_function(func):
    """`func`, with its signature worked out once and kept (Python's `__signature__`).
    Snakemake reads a rule function's parameters with inspect.signature two or three
    times for every job it plans: over 70,000 times for 10,000 cells."""
    func.__signature__ = inspect.signature(func)
    return func


wildcard_constraints:
    **layout.WILDCARDS,


def cell_dirs(labels=None):
    """Every cell folder of the grid, optionally for one label set."""
    return [
        layout.cell_dir(DATASET, lab, target, channels, model, seed, fold, K)
        for lab in ([labels] if labels else LABEL_SETS)
        for target in GRID["targets"]
        for channels in GRID["channel_sets"]
        for model in GRID["models"]
        for seed in SEEDS
        for fold in range(K)
    ]


def issues_dirs():
    if not CONFIG["label_issues"]["enabled"]:
        return []
    return [
        layout.issues_dir(DATASET, target, channels, seed, K)
        for target in GRID["targets"]
        for channels in GRID["channel_sets"]
        for seed in SEEDS
    ]


@rule_function
def get_cell_params(wildcards):
    """The plain values that define one cell; any edit to them retrains it."""
    model = CONFIG["models"][wildcards.model]
    issues = CONFIG["label_issues"]
    return {
        "target_spec": CONFIG["targets"][wildcards.target],
        "channels": list(CONFIG["channel_sets"][wildcards.channels]),
        "arch": model["arch"],
        "model_params": model["params"],
        "train": model["train"],
        "tabular": model["tabular"],
        "transforms": model["transforms"],
        "preprocessing": model["preprocessing"],
        # Only when set: the parameters of the cells of other models stay as they were.
        **({"pretrained": model["pretrained"]} if model.get("pretrained") else {}),
        **(
            {"budget": model["budget"]}
            if any(v is not None for v in (model.get("budget") or {}).values())
            else {}
        ),
        # what a clean cell does with the flagged samples; nothing for a raw one
        "action": issues["action"] if wildcards.labels == "clean" else None,
        "downweight": issues["downweight"] if wildcards.labels == "clean" else None,
    }


@rule_function
def get_target_spec(wildcards):
    return CONFIG["targets"][wildcards.target]


@rule_function
def get_demo_dir(wildcards, output):
    return str(Path(output.truth).parent)


@functools.cache
def _labels_of(clean_path):
    # every label column: a user-defined target may name any of them
    return read_labels(clean_path)


@rule_function
def get_label_patch(wildcards):
    """The reviewed labels that change this cell's target, as [sample id, label] pairs.

    They are a parameter rather than an input file, so Snakemake reruns only
    the cells whose data a correction changes. Reading them needs the ingested
    labels, hence the wait on the ingest checkpoint.
    """
    if not LABEL_PATCH:
        return []
    clean = checkpoints.ingest.get(dataset=wildcards.dataset).output.parquet
    try:
        return patch_for_target(
            _labels_of(clean),
            LABEL_PATCH,
            wildcards.target,
            CONFIG["targets"][wildcards.target],
        )
    except LabelPatchError as err:
        raise WorkflowError(str(err)) from None


@rule_function
def get_train_inputs(wildcards):
    if LABEL_PATCH:
        checkpoints.ingest.get(dataset=wildcards.dataset)
    inputs = {
        "clean": layout.clean_file(wildcards.dataset),
        "folds": layout.folds_file(wildcards.dataset, wildcards.seed, K),
    }
    # The weights file a model starts from: an input, so that a new file retrains.
    pretrained = CONFIG["models"][wildcards.model].get("pretrained")
    if pretrained:
        inputs["pretrained"] = pretrained
    if wildcards.labels == "clean":
        issues_dir = layout.issues_dir(
            wildcards.dataset, wildcards.target, wildcards.channels, wildcards.seed, K
        )
        inputs["issues"] = f"{issues_dir}/{layout.ISSUES_FILES['issues']}"
        if CONFIG["label_issues"]["own_model_veto"]:
            # the model's own out-of-fold opinion of the flagged labels: the test
            # predictions beside its K raw cells' metrics.json
            # (spectragrid.train.own_model_veto)
            w = wildcards
            name = layout.CELL_FILES["metrics"]
            inputs["own_metrics"] = [
                f"{layout.cell_dir(w.dataset, 'raw', w.target, w.channels, w.model, w.seed, f, K)}/{name}"
                for f in range(K)
            ]
    return inputs


def fold_group_files(names):
    """The cell files `names` (keys of layout.CELL_FILES) of every fold of a fold
    group, named by layout.fold_output_name: the outputs of one job for K cells."""
    named = {}
    for fold in range(K):
        folder = layout.cell_dir_of_fold(fold, K)
        for name in names:
            named[layout.fold_output_name(name, fold)] = (
                f"{folder}/{layout.CELL_FILES[name]}"
            )
    return named


def fold_group_dirs(wildcards):
    """The cell folder of every fold of the fold group `wildcards` names."""
    return [
        layout.cell_dir(
            wildcards.dataset,
            wildcards.labels,
            wildcards.target,
            wildcards.channels,
            wildcards.model,
            wildcards.seed,
            fold,
            K,
        )
        for fold in range(K)
    ]


@rule_function
def get_sheet_inputs(wildcards):
    """The metrics.json of the fold group's last fold, and of any other fold whose
    metrics.json is gone while the last one's is there.

    The train job writes every fold's files in one run (Snakemake removes them all
    before it reruns it), so the last fold's metrics.json ties the sheet job to it
    and dates it; get_changed_cell_files says when a file changed after its cell's
    metrics.json. A fold's metrics.json removed later (by a reader that found the
    cell's files altered, or by hand) is listed so that Snakemake trains the group
    again. Planning a large grid looks up one file per fold group, not one per cell
    (8,000 fewer lookups at 10,000 cells)."""
    metrics = [
        f"{folder}/{layout.CELL_FILES['metrics']}"
        for folder in fold_group_dirs(wildcards)
    ]
    named = {"metrics": metrics[-1]}
    if os.path.exists(metrics[-1]):
        for fold, path in enumerate(metrics[:-1]):
            if not os.path.exists(path):
                named[layout.fold_output_name("metrics", fold)] = path
    return named


@rule_function
def get_changed_cell_files(wildcards):
    """Per fold, the files missing or written after its metrics.json (file name ->
    "missing" or mtime). A parameter of the sheet: a deleted, truncated or edited
    file reruns the sheet, which checks every file against its checksum, names the
    one that differs and removes the cell's outputs, so the next run trains it."""
    return {
        str(fold): changed
        for fold, folder in enumerate(fold_group_dirs(wildcards))
        if (changed := changed_since_recorded(folder))
    }


def evidence_channel_sets(own):
    """The channel sets whose raw cells judge the labels of channel set `own`, `own`
    first where it is one of them (it wins a tie)."""
    chosen = CONFIG["label_issues"]["channel_sets"]
    if chosen == "own":
        return [own]
    pool = GRID["channel_sets"] if chosen == "all" else chosen
    return [c for c in pool if c == own] + [c for c in pool if c != own]


@rule_function
def get_evidence(wildcards):
    """The (model, channel set) pairs whose out-of-fold probabilities may judge the
    labels of one label-issues job."""
    return [
        [model, channels]
        for channels in evidence_channel_sets(wildcards.channels)
        for model in CONFIG["label_issues"]["models"]
    ]


def judge_group_keys():
    """The raw fold groups of the models that judge the labels without being in the
    grid (label_issues.models outside grid.models): trained for the evidence only."""
    issues = CONFIG["label_issues"]
    if not issues["enabled"]:
        return []
    judges = [m for m in trained_models(CONFIG) if m not in GRID["models"]]
    sets = {c for own in GRID["channel_sets"] for c in evidence_channel_sets(own)}
    return [
        layout.fold_group_key(K).format(
            dataset=DATASET,
            labels="raw",
            target=target,
            channels=channels,
            model=model,
            seed=seed,
        )
        for target in GRID["targets"]
        for channels in sorted(sets)
        for model in judges
        for seed in SEEDS
    ]


@rule_function
def get_label_issue_inputs(wildcards):
    """The metrics.json of the raw cells whose test-fold predictions (beside it) feed
    cleanlab."""
    return [
        layout.cell_dir(
            wildcards.dataset,
            "raw",
            wildcards.target,
            channels,
            model,
            wildcards.seed,
            fold,
            wildcards.k,
        )
        + "/"
        + layout.CELL_FILES["metrics"]
        for model, channels in get_evidence(wildcards)
        for fold in range(int(wildcards.k))
    ]


def get_mem_mb(base_mb):
    """A job's memory in MB, `base_mb` more for each retry of a failed attempt."""

    @rule_function
    def mem_mb(wildcards, attempt):
        return base_mb * attempt

    return mem_mb


def input_size_mb(files):
    """The MB (2**20 bytes, as Snakemake's input.size_mb) of those of `files` that
    exist. input.size_mb runs an event loop per call: about a millisecond, which
    is seconds of planning over thousands of jobs; a stat is microseconds."""
    total = 0
    for name in files:
        try:
            total += os.path.getsize(name)
        except OSError:
            pass
    return total / 2**20


def get_mem_mb_by_input(factor, minimum_mb=1000):
    """Memory in MB from the size of a job's inputs (`factor` x their MB), per attempt."""

    @rule_function
    def mem_mb(wildcards, input, attempt):
        return max(minimum_mb, factor * input_size_mb(input)) * attempt

    return mem_mb


def get_train_mem_mb(base_mb, per_data_mb):
    """A training job's memory in MB: `base_mb` (the interpreter, torch and the
    model) and `per_data_mb` MB for each MB of its input files (the spectra it
    holds, stored as float32), times the attempt. Snakemake evaluates it again
    once the inputs exist, so a cluster job asks for what its data need."""

    @rule_function
    def mem_mb(wildcards, input, attempt):
        return int(base_mb + per_data_mb * input_size_mb(input)) * attempt

    return mem_mb


def get_runtime(minutes):
    """A job's time limit in minutes, `minutes` more for each retry."""

    @rule_function
    def runtime(wildcards, attempt):
        return minutes * attempt

    return runtime


def summary_inputs(cell_dirs, name):
    """The file `name` (a key of layout.CELL_FILES) of every cell, for the summary."""
    return [f"{d}/{layout.CELL_FILES[name]}" for d in cell_dirs]


def sheet_outputs():
    """Every fold's PNG and HTML sheet, each listed in Snakemake's report."""
    outputs = {}
    for fold in range(K):
        directory = layout.cell_dir_of_fold(fold, K)
        for kind, title in (("png", "PNG"), ("html", "HTML")):
            outputs[layout.fold_output_name(kind, fold)] = report(
                f"{directory}/{layout.SHEET_FILES[kind]}",
                caption="../report/sheet.rst",
                category="{target}",
                subcategory="{channels}",
                labels={
                    "model": "{model}",
                    "labels": "{labels}",
                    "seed": "{seed}",
                    "fold": str(fold),
                    "format": title,
                },
            )
    return outputs
