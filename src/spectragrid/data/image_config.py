"""What `dataset.images` requires of the rest of a config, beyond the schema.

An image study names its channels after the bands of its mode (L, or R G B),
uses one label column, trains img_* families only, and has no spectral
cleaning thresholds; a spectral study trains no img_* family. A generated
demo (`dataset.images.demo`) writes the layout its kind stands for, and its
truth file where `dataset.truth` says. A given split (`splits.given`) needs
an image tree in train/val/test folders and no label-issue search: cleanlab
judges a label by a model that never trained on it, which only the K folds
give for every sample (the given split's one model is tested on the test
folder only, and test samples are never cleaned). Each broken rule is one
line of the ConfigError, naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from spectragrid.core.config import ConfigError, trained_models
from spectragrid.data.image_clean import MODE_BANDS

__all__ = ["check_image_config", "image_raw_files"]

# What each demo kind writes.
DEMO_LAYOUTS = {
    "binary": {"layout": "label_file", "mode": "RGB", "split_folders": False},
    "multiclass": {"layout": "class_folders", "mode": "L", "split_folders": True},
}


def _image_problems(config: Mapping, images: Mapping) -> list[str]:
    dataset = config["dataset"]
    problems = []
    bands = list(MODE_BANDS[images["mode"]])
    if sorted(map(str, dataset["channels"])) != sorted(bands):
        problems.append(
            f"dataset.channels: {dataset['channels']} are not the bands of mode "
            f"{images['mode']} ({bands}); channel sets pick among those"
        )
    if dataset["columns"].get("label") is None:
        problems.append("dataset.columns.label: an image data set has one label column; name it")
    for key in ("severity", "type"):
        if dataset["columns"].get(key) is not None:
            problems.append(f"dataset.columns.{key}: images have one label column (label)")
    if images["layout"] == "label_file" and not images.get("labels"):
        problems.append("dataset.images.labels: the label_file layout needs a label file")
    if images["layout"] == "class_folders" and images.get("labels"):
        problems.append("dataset.images.labels: class folders name the labels; remove it")
    if images.get("split_folders") and images["layout"] != "class_folders":
        problems.append("dataset.images.split_folders: only the class_folders layout has them")
    for key in ("saturation", "min_integral"):
        if config.get("cleaning", {}).get(key):
            problems.append(f"cleaning.{key}: spectral thresholds do not apply to images")
    if "demo" in dataset:
        problems.append("dataset.demo: the spectra demo; an image study uses dataset.images.demo")
    demo = images.get("demo")
    if demo:
        for key, value in DEMO_LAYOUTS[demo["kind"]].items():
            if images.get(key, False) != value:
                problems.append(
                    f"dataset.images.{key}: the {demo['kind']} demo writes {key} {value!r}"
                )
        if not dataset.get("truth"):
            problems.append("dataset.truth: the image demo writes its truth file there; name it")
    problems += _given_split_problems(config, images)
    for name in trained_models(config):
        arch = str(config["models"][name]["arch"])
        if not arch.startswith("img_"):
            problems.append(
                f"models.{name}.arch: {arch!r} takes spectra; an image study trains img_* families"
            )
    return problems


def _given_split_problems(config: Mapping, images: Mapping | None) -> list[str]:
    if not config.get("splits", {}).get("given"):
        return []
    problems = []
    if not images or not images.get("split_folders"):
        problems.append(
            "splits.given: a given split is an image tree's train/val/test folders; it needs "
            "dataset.images with layout class_folders and split_folders: true"
        )
    if config.get("label_issues", {}).get("enabled", True):
        problems.append(
            "label_issues.enabled: finding label issues needs out-of-fold probabilities of every "
            "image, which only splits.k seeded folds give; with splits.given: true set "
            "label_issues.enabled: false, or set splits.given: false to cross-validate every image"
        )
    return problems


def check_image_config(config: Mapping) -> None:
    """ConfigError listing what the data set's kind (images or spectra) rules out."""
    images = config["dataset"].get("images")
    if images:
        problems = _image_problems(config, images)
    else:
        problems = [
            f"models.{name}.arch: {config['models'][name]['arch']!r} takes images; "
            "this data set is spectra (dataset.images is not set)"
            for name in trained_models(config)
            if str(config["models"][name]["arch"]).startswith("img_")
        ] + _given_split_problems(config, None)
    if problems:
        raise ConfigError("config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


def image_raw_files(images: Mapping) -> tuple[list[str], list[str]]:
    """(the ingest's inputs: the folder and the label file; every file whose content the
    ingest depends on, for content tracking). A generated demo's files are outputs of
    its rule, so only the inputs are listed for it."""
    inputs = [str(images["folder"])] + ([str(images["labels"])] if images.get("labels") else [])
    if images.get("demo"):
        return inputs, []
    folder = Path(images["folder"])
    files = sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return inputs, files + inputs[1:]
