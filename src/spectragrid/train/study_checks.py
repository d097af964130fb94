"""Checks of a study's models that need more than the schema, before any job runs.

- `models.<name>.pretrained` must name an existing regular file (a weights file
  is never downloaded: a missing one is an error naming the key);
- `models.<name>.budget.max_parameters` of an image family is checked on the
  model built for the config's image size, band count and the grid's largest
  target, on the meta device (shapes only, no memory). A spectral model's
  length depends on its raw files, so its budget is checked when its cell
  builds it (spectragrid.train.models.build_model), before training.

torch is imported only when some model has a parameter budget: a plan of a
study without budgets stays as fast as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from spectragrid.core.config import ConfigError, trained_models
from spectragrid.data.image_clean import MODE_BANDS
from spectragrid.data.targets import TargetError, resolve

__all__ = ["check_study_models"]


def _pretrained_problems(config: Mapping) -> list[str]:
    problems = []
    for name in trained_models(config):
        path = config["models"][name].get("pretrained")
        if path is not None and not Path(path).is_file():
            problems.append(
                f"models.{name}.pretrained: {path!r} is no file (weights are never downloaded: "
                "put the file there, or remove the key to start from random weights)"
            )
    return problems


def _n_classes(config: Mapping) -> int:
    """The most classes a grid target of this image study has (its labels are the
    label map's values)."""
    labels = sorted({str(v) for v in config["dataset"]["label_map"].values()})
    table = pd.DataFrame({"sample_id": labels, "label": labels, "full_truth": labels})
    counts = [2]
    for target in config["grid"]["targets"]:
        try:
            counts.append(resolve(target, config["targets"][target], table).n_classes)
        except TargetError:
            continue  # the target's own check names the problem
    return max(counts)


def _budget_problems(config: Mapping) -> list[str]:
    images = config["dataset"].get("images")
    budgeted = {
        name: config["models"][name]
        for name in trained_models(config)
        if (config["models"][name].get("budget") or {}).get("max_parameters") is not None
        and str(config["models"][name]["arch"]).startswith("img_")
    }
    if not images or not budgeted:
        return []
    from spectragrid.train.budget import BudgetError, check_model_budgets
    from spectragrid.train.image_models import build_image_model

    bands = max(len(config["channel_sets"][c]) for c in config["grid"]["channel_sets"])
    bands = min(bands, len(MODE_BANDS[images["mode"]]))
    size = (int(images["size"][0]), int(images["size"][1]))
    n_classes = _n_classes(config)

    def build(name: str, entry: Mapping):
        return build_image_model(
            entry["arch"], dict(entry.get("params") or {}), bands, size, n_classes, name=name
        )

    try:
        check_model_budgets(budgeted, build)
    except BudgetError as error:
        return [line.strip().removeprefix("- ") for line in str(error).splitlines()[1:]]
    return []


def check_study_models(config: Mapping) -> None:
    """ConfigError listing every missing pretrained file and every image model over its
    parameter budget."""
    problems = _pretrained_problems(config) + _budget_problems(config)
    if problems:
        raise ConfigError("config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))
