import functools
import os
from pathlib import Path

from spectragrid.core import layout
from spectragrid.core.config import ConfigError, config_hash, validate
from spectragrid.data.label_patch import LabelPatchError, patch_for_target, read_label_patch

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

try:
    CONFIG = validate(config, SCHEMA)
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
TRUTH = CONFIG["dataset"].get("truth")
GRID = CONFIG["grid"]
SEEDS = CONFIG["splits"]["seeds"]
K = CONFIG["splits"]["k"]
LABEL_SETS = ["raw", "clean"] if CONFIG["label_issues"]["enabled"] else ["raw"]
_patch_files = CONFIG["dataset"]["label_patch"] or []
try:
    LABEL_PATCH = read_label_patch(
        [_patch_files] if isinstance(_patch_files, str) else _patch_files,
        severities=list(CONFIG["dataset"]["label_map"].values()),
    )
except LabelPatchError as err:
    raise WorkflowError(str(err)) from None


wildcard_constraints:
    dataset=layout.NAME_PATTERN,
    labels="raw|clean",
    target=layout.NAME_PATTERN,
    channels=layout.NAME_PATTERN,
    model=layout.NAME_PATTERN,
    seed=r"\d+",
    fold=r"\d+",
    k=r"\d+",


def cell_dirs(labels=None):
    """Every cell folder of the grid, optionally for one label set."""
    return [
        layout.CELL_DIR.format(
            dataset=DATASET,
            labels=lab,
            target=target,
            channels=channels,
            model=model,
            seed=seed,
            fold=fold,
            k=K,
        )
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
        layout.ISSUES_DIR.format(
            dataset=DATASET, target=target, channels=channels, seed=seed, k=K
        )
        for target in GRID["targets"]
        for channels in GRID["channel_sets"]
        for seed in SEEDS
    ]


def cell_params(wildcards):
    """The plain values that define one cell; any edit to them retrains it."""
    model = CONFIG["models"][wildcards.model]
    cleaning = (
        {
            "action": CONFIG["label_issues"]["action"],
            "downweight": CONFIG["label_issues"]["downweight"],
        }
        if wildcards.labels == "clean"
        else {}
    )
    return cleaning | {
        "target_spec": CONFIG["targets"][wildcards.target],
        "channels": list(CONFIG["channel_sets"][wildcards.channels]),
        "arch": model["arch"],
        "model_params": dict(model.get("params", {})),
        "train": dict(model.get("train", {})),
        "tabular": list(model.get("tabular", CONFIG["tabular"])),
        "transforms": dict(model.get("transforms", {})),
    }


@functools.cache
def _labels_of(clean_path):
    import pandas as pd

    return pd.read_parquet(
        clean_path, columns=["sample_id", "severity", "type", "full_truth"]
    )


def label_patch_params(wildcards):
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


def train_inputs(wildcards):
    if LABEL_PATCH:
        checkpoints.ingest.get(dataset=wildcards.dataset)
    inputs = {
        "clean": f"results/{wildcards.dataset}/clean.parquet",
        "folds": f"results/{wildcards.dataset}/splits/s{wildcards.seed}_k{wildcards.k}.parquet",
    }
    if wildcards.labels == "clean":
        issues_dir = layout.ISSUES_DIR.format(**wildcards)
        inputs["issues"] = f"{issues_dir}/issues.csv"
    return inputs


def label_issue_inputs(wildcards):
    """Test-fold predictions of the raw cells whose probabilities feed cleanlab."""
    cell = layout.CELL_DIR.format(
        dataset=wildcards.dataset,
        labels="raw",
        target=wildcards.target,
        channels=wildcards.channels,
        model="{model}",
        seed=wildcards.seed,
        fold="{fold}",
        k=wildcards.k,
    )
    return [
        f"{cell}/predictions.parquet".format(model=model, fold=fold)
        for model in CONFIG["label_issues"]["models"]
        for fold in range(int(wildcards.k))
    ]
