"""Where every output lives: the one place that spells a results path.

The rules take their patterns from here (the `*_KEY`/`*_DIR` templates with
Snakemake wildcards), the library builds concrete paths with the functions
below, and the summary and the tests read coordinates back with the parsers.
Imported by the Snakefile, so it stays import-light (no numpy, no pandas).

Keys are relative to results/, results/logs/ and results/benchmarks/ alike,
so a job's output folder, its log and its benchmark file line up.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

RESULTS = "results"
DEMO_DIR = "resources/demo"
DEMO_CAMPAIGNS = ("campaign_2023_SA3-01", "campaign_2024_SA3-02")

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"
# The pattern of each wildcard, in the order of a cell's coordinates.
WILDCARDS: dict[str, str] = {
    "dataset": NAME_PATTERN,
    "labels": "raw|clean",
    "target": NAME_PATTERN,
    "channels": NAME_PATTERN,
    "model": NAME_PATTERN,
    "seed": r"\d+",
    "fold": r"\d+",
    "k": r"\d+",
}
CELL_COORDINATES: tuple[str, ...] = tuple(WILDCARDS)
ISSUES_COORDINATES: tuple[str, ...] = ("dataset", "target", "channels", "seed", "k")
INT_COORDINATES: tuple[str, ...] = ("seed", "fold", "k")

DATASET_KEY = "{dataset}"
CELL_KEY = "{dataset}/cells/{labels}/{target}/{channels}/{model}/s{seed}/f{fold}of{k}"
ISSUES_KEY = "{dataset}/label_issues/{target}/{channels}/s{seed}/k{k}"
# The K folds of one model x target x channel set x seed train in one job (and
# their sheets render in another): Python's start-up and imports are paid once
# per group, not once per cell. Each fold keeps its own cell folder; the group's
# log and benchmark sit beside them.
FOLD_GROUP_KEY = "{dataset}/cells/{labels}/{target}/{channels}/{model}/s{seed}/k{k}"
SPLIT_NAME = "s{seed}_k{k}"
# The split job's log and benchmark name, beside the dataset's other jobs.
SPLIT_JOB = f"split_{SPLIT_NAME}"
# The file-name stem of one label-issues file's review sheet and CSV.
REVIEW_NAME = "issues_{target}_{channels}_s{seed}_k{k}"

DATASET_DIR = f"{RESULTS}/{DATASET_KEY}"
CELL_DIR = f"{RESULTS}/{CELL_KEY}"
ISSUES_DIR = f"{RESULTS}/{ISSUES_KEY}"
CLEAN_FILE = f"{DATASET_DIR}/clean.parquet"
CLEANING_REPORT = f"{DATASET_DIR}/cleaning_report.json"
DROPPED_FILE = f"{DATASET_DIR}/dropped.csv"
FOLDS_FILE = f"{DATASET_DIR}/splits/{SPLIT_NAME}.parquet"

# What a training cell writes, by name.
CELL_FILES: dict[str, str] = {
    "checkpoint": "model.ckpt",
    "onnx": "model.onnx",
    "predictions": "predictions.parquet",
    "metrics": "metrics.json",
    "history": "history.csv",
    "card": "card.json",
}
# The cell files Snakemake tracks as the train rule's outputs (layout.fold_output_name):
# metrics.json alone, written last, which records the sha256 of every other file of
# the cell. Other rules name a cell's metrics.json as their input and read the files
# beside it, each checked against its checksum (train.output_checksums).
# Each declared file costs Snakemake about 0.1 ms to plan: 1 s per 10,000 files.
CELL_TRACKED_FILES: tuple[str, ...] = ("metrics",)
SHEET_FILES: dict[str, str] = {"png": "sheet.png", "html": "sheet.html"}
ISSUES_FILES: dict[str, str] = {
    "issues": "issues.csv",
    "oof": "oof.parquet",
    "evidence": "evidence.json",
}

SUMMARY_HTML = f"{RESULTS}/summary.html"
SUMMARY_CSV = f"{RESULTS}/summary.csv"
SUMMARY_PARQUET = f"{RESULTS}/summary.parquet"
SUMMARY_FILES = f"{RESULTS}/summary_files"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
# A cell's per-epoch curves as Fabric's loggers write them (CSV, and TensorBoard
# event files where tensorboard is installed): `tensorboard --logdir results/`.
CURVES_DIR = f"{LOGS}/{CELL_KEY}/curves"
# One lock file per cell: a second process training the same cell waits for the first.
LOCK_FILE = f"{RESULTS}/.locks/{CELL_KEY}.lock"
# The raw files' content digests, cached under their identity and times.
RAW_DIGEST_CACHE = f"{RESULTS}/.cache/raw_sha256.json"
# A training cell's resumable state: no declared output, since Snakemake deletes
# the outputs of a failed job, and removed by the cell once it completes.
RESUME_FILE = f"{RESULTS}/.resume/{CELL_KEY}/last.ckpt"


# Serving (spectragrid.serve): the model each target is served by, and the scores
# of each batch of new raw files listed under `predict.batches`.
SERVED_KEY = "served/{target}"
SERVED_DIR = f"{RESULTS}/{SERVED_KEY}"
SERVED_FILES: dict[str, str] = {"onnx": "model.onnx", "card": "card.json"}
PREDICTIONS_DIR = f"{RESULTS}/predictions"
PREDICTION_FILES: dict[str, str] = {
    "parquet": f"{PREDICTIONS_DIR}/{{batch}}.parquet",
    "csv": f"{PREDICTIONS_DIR}/{{batch}}.csv",
}
# Batch names become file names, like the other names of the config.
BATCH_PATTERN = NAME_PATTERN


class LayoutError(ValueError):
    """A path that does not read as the results layout."""


def demo_raw_files(demo_dir: str = DEMO_DIR) -> list[str]:
    return [f"{demo_dir}/raw/{name}.pkl" for name in DEMO_CAMPAIGNS]


def demo_truth_file(demo_dir: str = DEMO_DIR) -> str:
    return f"{demo_dir}/truth.csv"


def log_file(key: str, job: str) -> str:
    """The log of `job` for the output folder `key` (a *_KEY template or its value;
    empty for a job of the whole study)."""
    return f"{LOGS}/{key}/{job}.log" if key else f"{LOGS}/{job}.log"


def benchmark_file(key: str, job: str) -> str:
    """Snakemake's benchmark file of `job`, keyed like its log."""
    return f"{BENCHMARKS}/{key}/{job}.tsv" if key else f"{BENCHMARKS}/{job}.tsv"


def job_usage_file(key: str, job: str) -> Path:
    """CPU time and peak memory of a job run by the warm interpreter (core.job_server),
    beside its benchmark file: Snakemake's own measures only the process it started."""
    return Path(benchmark_file(key, job)).with_suffix(".usage.json")


def cell_dir(
    dataset: str,
    labels: str,
    target: str,
    channels: str,
    model: str,
    seed: int,
    fold: int,
    k: int,
) -> str:
    return CELL_DIR.format(
        dataset=dataset,
        labels=labels,
        target=target,
        channels=channels,
        model=model,
        seed=seed,
        fold=fold,
        k=k,
    )


def cell_dir_of_fold(fold: int, k: int) -> str:
    """CELL_DIR with its fold and k filled in and every other wildcard kept:
    one fold's folder as an output of a fold-group job."""
    return CELL_DIR.replace("{fold}", str(int(fold))).replace("{k}", str(int(k)))


def fold_group_key(k: int) -> str:
    """FOLD_GROUP_KEY with k filled in: the key of a fold-group job's log and benchmark."""
    return FOLD_GROUP_KEY.replace("{k}", str(int(k)))


def fold_output_name(name: str, fold: int) -> str:
    """The name of fold `fold`'s file `name` among a fold-group job's outputs."""
    return f"{name}_f{int(fold)}"


def results_key(directory: str) -> str:
    """`results/<key>` -> `<key>`: the part an output folder shares with its log and benchmark."""
    prefix = f"{RESULTS}/"
    if not directory.startswith(prefix):
        raise LayoutError(f"{directory}: not under {prefix}")
    return directory[len(prefix) :]


def results_root(cell_directory: str | PurePath) -> PurePath:
    """The results folder a cell folder is in (`<root>` of `<root>/<cell key>`)."""
    parse_cell_dir(cell_directory)
    return PurePath(cell_directory).parents[len(PurePath(CELL_KEY).parts) - 1]


def served_file(target: str, name: str) -> str:
    """File `name` (a key of SERVED_FILES) of the model serving `target`."""
    return f"{SERVED_DIR.format(target=target)}/{SERVED_FILES[name]}"


def issues_dir(dataset: str, target: str, channels: str, seed: int, k: int) -> str:
    return ISSUES_DIR.format(dataset=dataset, target=target, channels=channels, seed=seed, k=k)


def clean_file(dataset: str) -> str:
    return CLEAN_FILE.format(dataset=dataset)


def cleaning_report(dataset: str) -> str:
    return CLEANING_REPORT.format(dataset=dataset)


def folds_file(dataset: str, seed: int, k: int) -> str:
    return FOLDS_FILE.format(dataset=dataset, seed=seed, k=k)


def resume_file(coordinates: dict) -> str:
    return RESUME_FILE.format(**coordinates)


def lock_file(coordinates: dict) -> str:
    return LOCK_FILE.format(**coordinates)


def curves_dir(coordinates: dict) -> str:
    return CURVES_DIR.format(**coordinates)


def _matcher(key: str) -> re.Pattern[str]:
    """A regex that reads `key`'s wildcards back from the end of a path."""
    pattern = ""
    for literal, name in re.findall(r"([^{]*)(?:\{(\w+)\})?", key):
        pattern += re.escape(literal)
        if name:
            pattern += f"(?P<{name}>{WILDCARDS[name]})"
    return re.compile(rf"(?:^|/){pattern}$")


_CELL = _matcher(CELL_KEY)
_ISSUES = _matcher(ISSUES_KEY)
_FOLD_GROUP = _matcher(FOLD_GROUP_KEY)


def _parse(path: str | PurePath, matcher: re.Pattern[str], what: str, key: str) -> dict:
    text = PurePath(path).as_posix()
    found = matcher.search(text)
    if found is None:
        raise LayoutError(f"{text}: does not read as {what} folder {RESULTS}/{key}")
    return {
        name: int(value) if name in INT_COORDINATES else value
        for name, value in found.groupdict().items()
    }


def parse_cell_dir(path: str | PurePath) -> dict:
    """The coordinates of a cell folder (`.../cells/raw/OVA_OK/all/cnn/s0/f1of5`)."""
    return _parse(path, _CELL, "a cell", CELL_KEY)


def parse_issues_dir(path: str | PurePath) -> dict:
    """The coordinates of a label-issues folder (`.../label_issues/OVA_OK/all/s0/k5`)."""
    return _parse(path, _ISSUES, "a label-issues", ISSUES_KEY)


def parse_fold_group_dir(path: str | PurePath) -> dict:
    """The coordinates of a fold group (`.../cells/raw/OVA_OK/all/cnn/s0/k5`): a cell's
    but its fold."""
    return _parse(path, _FOLD_GROUP, "a fold-group", FOLD_GROUP_KEY)
