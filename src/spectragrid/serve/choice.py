"""Which model serves each target (`predict.models`), read against the grid.

Imported by the workflow's rule file while it plans: no numpy, no pandas.
A choice is `best` (the grid point with the best `report.best_metric`, its K
fold models averaged as one ensemble) or a grid point, with `fold` for one
cell. The rules receive a choice as plain values (`choice_params`).
"""

from __future__ import annotations

from dataclasses import dataclass

from spectragrid.core import layout
from spectragrid.serve.image_paths import tracked_files


class PredictConfigError(ValueError):
    """A `predict` section that names something the study does not have."""


@dataclass(frozen=True)
class ServedChoice:
    target: str
    best: bool
    labels: str = "raw"
    channels: str = ""
    model: str = ""
    seed: int = 0
    fold: int | None = None  # None: the K folds as one ensemble


def _folds(config: dict) -> int:
    """The folds of each grid point: one (f0of1) under a given split, else splits.k."""
    return 1 if config["splits"].get("given") else int(config["splits"]["k"])


def served_targets(config: dict) -> list[str]:
    """The targets batches are scored for and the page shows, in order."""
    targets = config["predict"]["targets"]
    return list(config["grid"]["targets"] if targets is None else targets)


def served_choices(config: dict) -> dict[str, ServedChoice]:
    """target -> choice for every served target; a bad reference raises PredictConfigError."""
    predict = config["predict"]
    grid = config["grid"]
    problems: list[str] = []
    named = dict(predict["models"])
    for target in [*named, *(predict["targets"] or [])]:
        if target not in grid["targets"]:
            problems.append(f"predict: target {target!r} is not in grid.targets {grid['targets']}")
    choices: dict[str, ServedChoice] = {}
    for target in served_targets(config):
        spec = named.get(target, "best")
        if spec == "best":
            choices[target] = ServedChoice(target, best=True)
            continue
        choice = ServedChoice(
            target,
            best=False,
            labels=str(spec.get("labels") or "raw"),
            channels=str(spec["channels"]),
            model=str(spec["model"]),
            seed=int(
                spec["seed"] if spec.get("seed") is not None else config["splits"]["seeds"][0]
            ),
            fold=None if spec.get("fold") is None else int(spec["fold"]),
        )
        problems += _check_point(config, f"predict.models.{target}", choice)
        choices[target] = choice
    if problems:
        raise PredictConfigError("config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
    return choices


def _check_point(config: dict, key: str, choice: ServedChoice) -> list[str]:
    grid, problems = config["grid"], []
    if choice.model not in grid["models"]:
        problems.append(f"{key}.model: {choice.model!r} is not in grid.models {grid['models']}")
    if choice.channels not in grid["channel_sets"]:
        problems.append(
            f"{key}.channels: {choice.channels!r} is not in grid.channel_sets "
            f"{grid['channel_sets']}"
        )
    if choice.seed not in config["splits"]["seeds"]:
        problems.append(f"{key}.seed: {choice.seed} is not in splits.seeds")
    if choice.fold is not None and choice.fold >= _folds(config):
        where = "splits.given: one fold, 0" if config["splits"].get("given") else "splits.k"
        problems.append(f"{key}.fold: {choice.fold} is not below {where}")
    if choice.labels == "clean" and not config["label_issues"]["enabled"]:
        problems.append(f"{key}.labels: clean cells need label_issues.enabled")
    return problems


def choice_params(choice: ServedChoice) -> dict:
    """The choice as the plain values a rule's params hold."""
    if choice.best:
        return {"best": True}
    return {
        "best": False,
        "labels": choice.labels,
        "channels": choice.channels,
        "model": choice.model,
        "seed": choice.seed,
        "fold": choice.fold,
    }


def candidate_cells(config: dict, choice: ServedChoice) -> list[str]:
    """The cell folders the served model is made of, or chosen among (`best`)."""
    dataset, k = config["dataset"]["name"], _folds(config)
    if not choice.best:
        folds = range(k) if choice.fold is None else [choice.fold]
        return [
            layout.cell_dir(
                dataset,
                choice.labels,
                choice.target,
                choice.channels,
                choice.model,
                choice.seed,
                fold,
                k,
            )
            for fold in folds
        ]
    labels = ["raw", "clean"] if config["label_issues"]["enabled"] else ["raw"]
    grid = config["grid"]
    return [
        layout.cell_dir(dataset, lab, choice.target, channels, model, seed, fold, k)
        for lab in labels
        for channels in grid["channel_sets"]
        for model in grid["models"]
        for seed in config["splits"]["seeds"]
        for fold in range(k)
    ]


def served_model_inputs(config: dict, choice: ServedChoice) -> dict[str, list[str]]:
    """The serve_model rule's inputs: the cells' metrics.json (their ONNX and predictions
    lie beside it, checked against its checksums), the summary table for `best`, and
    the clean file, on which an ensemble is checked against its members."""
    cells = candidate_cells(config, choice)
    inputs = {"metrics": [f"{d}/{layout.CELL_FILES['metrics']}" for d in cells]}
    inputs["clean"] = [layout.clean_file(config["dataset"]["name"])]
    inputs["summary"] = [layout.SUMMARY_PARQUET] if choice.best else []
    return inputs


def batch_files(config: dict, batch: str) -> list[str]:
    """The raw files of `predict.batches.<batch>` (an image study: image files and folders)."""
    files = config["predict"]["batches"][batch]
    return [files] if isinstance(files, str) else list(files)


def batch_tracked_files(config: dict, batch: str) -> list[str]:
    """The files whose content the scores of `batch` depend on: an image study's folders
    stand for every image file under them."""
    files = batch_files(config, batch)
    return tracked_files(files) if config["dataset"].get("images") else files
