"""The study a server or a script scores with: its config, and each target's served model.

Read from a study folder (the one `snakemake` runs in): config/config.yaml,
validated against the schema, and results/served/<target>/model.onnx, which
`snakemake results/served/<target>/model.onnx` makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from spectragrid.core import layout
from spectragrid.core.config import validate
from spectragrid.serve.choice import served_targets
from spectragrid.serve.image_input import ImageSpec, shared_image_spec
from spectragrid.serve.model import ServedModel, ServedModelError


class StudyError(RuntimeError):
    """A study folder that cannot serve (no config, or a served model not made yet)."""


@dataclass
class ServingStudy:
    folder: Path
    dataset: str
    columns: dict
    saturation: dict
    min_integral: dict
    max_upload_mb: float
    models: dict[str, ServedModel]
    # An image study: the images its served models take (an upload is one image).
    images: ImageSpec | None = None


def load_study(folder: Path, threads: int = 1, config_path: Path | None = None) -> ServingStudy:
    folder = Path(folder)
    path = config_path or folder / "config" / "config.yaml"
    if not path.is_file():
        raise StudyError(f"{path}: no study config here; run from the study's folder")
    config = validate(yaml.safe_load(path.read_text()) or {})
    models, missing = {}, []
    for target in served_targets(config):
        onnx_path = folder / layout.served_file(target, "onnx")
        if onnx_path.is_file():
            models[target] = ServedModel.load(onnx_path, threads)
        else:
            missing.append(layout.served_file(target, "onnx"))
    if missing:
        raise StudyError(
            "no served model yet for " + ", ".join(missing) + "; make them first with: "
            "snakemake " + " ".join(missing)
        )
    try:
        images = shared_image_spec(models)
    except ServedModelError as err:
        raise StudyError(str(err)) from None
    return ServingStudy(
        folder=folder,
        dataset=config["dataset"]["name"],
        columns=config["dataset"]["columns"],
        saturation=config["cleaning"]["saturation"],
        min_integral=config["cleaning"]["min_integral"],
        max_upload_mb=float(config["predict"]["max_upload_mb"]),
        models=models,
        images=images,
    )
