"""Build the file that serves a target: one cell's model, or a grid point's K folds as one.

`best` is the grid point (labels x channel set x model x seed) with the best
mean over folds of `report.best_metric` in the summary table, across both
label sets; its K fold models become one ensemble (spectragrid.serve.ensemble).
The served file carries the members' metadata, the per-class cutoffs and its
provenance (what was chosen, how, from which cells and files) in its ONNX
metadata; card.json beside it says the same for people and the page.

An image target is served the same way: its cells' files take uint8 images,
and the served file carries their data bands and image size.

Cutoffs follow the result sheet's rule (`report.cutoff`): for one cell they
are its sheet's, from its test fold; for an ensemble they are chosen on the
pooled out-of-fold test predictions of its folds, each sample scored by the
one fold model that never trained on it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pandas as pd

from spectragrid.core import layout
from spectragrid.core.atomic import atomic_path, write_atomic
from spectragrid.data.clean_file import read_clean
from spectragrid.data.image_clean import ImageData, read_images
from spectragrid.report.cutoffs import CutoffRule, class_cutoffs
from spectragrid.report.summary_tables import GROUP_KEYS, aggregate, lower_is_better
from spectragrid.serve.ensemble import merge_members
from spectragrid.serve.model import ServedModel, sha256_of
from spectragrid.train.output_checksums import MANIFEST_KEY, verify_cell

# The served file must score as its members do (mean of members, or the cell's own
# test predictions), to this tolerance.
PARITY_TOLERANCE = 1e-5
# Clean rows an ensemble is checked on against the mean of its members.
PARITY_ROWS = 512
_CARRIED = (
    "classes",
    "channels",
    "wavelengths",
    "target",
    "tabular",
    "data_bands",
    "image_size",
)


class ServeError(RuntimeError):
    """No model can be served as configured, or the served file disagrees with its cells."""


def best_point(summary: pd.DataFrame, dataset: str, target: str, metric: str) -> dict[str, Any]:
    """The grid point of `target` with the best mean `metric` over folds, and its figures."""
    cells = summary[(summary["dataset"] == dataset) & (summary["target"] == target)]
    if cells.empty:
        raise ServeError(f"the summary has no cell of target {target!r}")
    agg = aggregate(cells)
    column = f"{metric}_mean"
    if column not in agg:
        raise ServeError(f"the summary has no {metric!r} to choose the best model by")
    scores = pd.to_numeric(agg[column], errors="coerce")
    if scores.isna().all():
        raise ServeError(f"no grid point of target {target!r} has a {metric}")
    # ties go to the first point in the summary's order (coordinates sorted)
    order = scores.sort_values(ascending=lower_is_better(metric), kind="stable")
    row = agg.loc[order.index[0]]
    point = {
        key: (int(row[key]) if key in layout.INT_COORDINATES else str(row[key]))
        for key in GROUP_KEYS
    }
    return {
        "point": point,
        "metric": metric,
        "mean": float(row[column]),
        "sd": None if math.isnan(float(row[f"{metric}_sd"])) else float(row[f"{metric}_sd"]),
        "n_points": len(agg),
    }


def _member_dirs(choice: dict, cell_dirs: list[str], selection: dict | None) -> list[Path]:
    """The cell folders of the served model, fold by fold."""
    if selection is not None:
        point = selection["point"]
        wanted = {key: point[key] for key in GROUP_KEYS}
        fold = None
    else:
        wanted = {key: choice[key] for key in ("labels", "channels", "model", "seed")}
        fold = choice.get("fold")
    members = []
    for folder in cell_dirs:
        coords = layout.parse_cell_dir(folder)
        if all(coords[key] == value for key, value in wanted.items() if key in coords) and (
            fold is None or coords["fold"] == fold
        ):
            members.append((coords["fold"], Path(folder)))
    if not members:
        raise ServeError(f"no cell of the study matches the served choice {wanted}")
    return [path for _, path in sorted(members)]


def _metadata(proto: onnx.ModelProto) -> dict[str, Any]:
    out = {}
    for entry in proto.metadata_props:
        try:
            out[entry.key] = json.loads(entry.value)
        except ValueError:
            out[entry.key] = entry.value
    return out


def _ensemble_name(display_name: str, k: int) -> str:
    """`cnn y=... t=() 2-5 s=0` -> `cnn y=... t=() all-5 s=0`: every fold of the point."""
    return re.sub(r" \d+-(\d+) s=", lambda m: f" all-{m.group(1)} s=", display_name, count=1)


def _pooled(member_dirs: list[Path], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    parts = [pd.read_parquet(d / layout.CELL_FILES["predictions"]) for d in member_dirs]
    pooled = pd.concat(parts, ignore_index=True)
    proba = pooled[[f"prob_{c}" for c in classes]].to_numpy(dtype=np.float64)
    return pooled["label_index"].to_numpy(dtype=np.int64), proba


def _cutoff_text(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    return "inf" if math.isinf(value) else float(value)


def build_served_model(
    target: str,
    choice: dict,
    cell_dirs: list[str],
    clean_path: Path,
    summary_path: Path | None,
    dataset: str,
    best_metric: str,
    cutoff: dict,
    out_onnx: Path,
    out_card: Path,
) -> dict[str, Any]:
    """Write the served model of `target` and its card; return the card."""
    selection = None
    if choice.get("best"):
        if summary_path is None:
            raise ServeError("choosing the best model needs the summary table")
        selection = best_point(pd.read_parquet(summary_path), dataset, target, best_metric)
    members = _member_dirs(choice, cell_dirs, selection)
    # Snakemake tracks the cells' metrics.json; what is read beside it must be what the
    # cell wrote, and the ONNX file's checksum is then the one recorded there
    onnx_sha256 = {
        d: verify_cell(d, names=[layout.CELL_FILES[name] for name in ("onnx", "predictions")])[
            MANIFEST_KEY
        ][layout.CELL_FILES["onnx"]]
        for d in members
    }
    protos = [onnx.load(str(d / layout.CELL_FILES["onnx"])) for d in members]
    first = _metadata(protos[0])
    for d, proto in zip(members[1:], protos[1:], strict=True):
        meta = _metadata(proto)
        if any(meta.get(key) != first.get(key) for key in _CARRIED):
            raise ServeError(
                f"{d}: its classes, channels, axes or image size differ from {members[0]}"
            )
    classes = [str(c) for c in first["classes"]]
    y, pooled = _pooled(members, classes)
    cutoffs = class_cutoffs(y, pooled, classes, CutoffRule.from_config(cutoff))
    k = len(members)
    display = first["display_name"] if k == 1 else _ensemble_name(first["display_name"], k)
    serving = {
        "kind": "cell" if k == 1 else "ensemble",
        "chosen_by": (
            {"rule": "best", **selection}
            if selection is not None
            else {"rule": "configured", "choice": choice}
        ),
        "members": [
            {
                "cell": layout.results_key(str(d)) if str(d).startswith(layout.RESULTS) else str(d),
                "display_name": _metadata(p).get("display_name"),
                "config_hash": _metadata(p).get("config_hash"),
                "onnx_sha256": onnx_sha256[d],
            }
            for d, p in zip(members, protos, strict=True)
        ],
        "cutoff_rule": CutoffRule.from_config(cutoff).describe(),
        "cutoffs_from": "the cell's test fold" if k == 1 else "the folds' pooled test predictions",
    }
    metadata = {
        **{key: first[key] for key in _CARRIED if key in first},
        "display_name": display,
        "cutoffs": {c.name: _cutoff_text(c.cutoff) for c in cutoffs},
        "serving": serving,
    }
    merged = protos[0] if k == 1 else merge_members(protos)
    del merged.metadata_props[:]
    for key, value in metadata.items():
        entry = merged.metadata_props.add()
        entry.key = key
        entry.value = value if isinstance(value, str) else json.dumps(value)
    with atomic_path(out_onnx) as tmp:
        onnx.save(merged, str(tmp))
        parity = check_served(tmp, members, Path(clean_path))
    card = {
        **{key: value for key, value in metadata.items() if key != "wavelengths"},
        # each channel's axis in brief: the ONNX metadata holds every point
        "axes": {
            channel: {"first": axis[0], "last": axis[-1], "points": len(axis)}
            # an image model has no axes
            for channel, axis in zip(
                metadata["channels"], metadata.get("wavelengths") or [], strict=False
            )
            if len(axis)
        },
        "sha256": sha256_of(Path(out_onnx)),
        "parity": parity,
        "cutoff_table": [
            {
                "class": c.name,
                "cutoff": _cutoff_text(c.cutoff),
                "kept": None if math.isnan(c.kept) else c.kept,
                "status": c.status,
            }
            for c in cutoffs
        ],
    }
    write_atomic(out_card, json.dumps(card, indent=2) + "\n")
    return card


Scorer = Callable[[ServedModel], np.ndarray]


def _clean_rows(
    model: ServedModel, clean_path: Path, ids: np.ndarray | None
) -> tuple[np.ndarray, Scorer]:
    """The ids of the clean rows a parity check uses (`ids`, or the first PARITY_ROWS),
    and what scores a model on those rows."""
    data = read_images(clean_path) if model.takes_images else read_clean(clean_path, model.channels)
    table = data.table
    rows = (
        np.arange(min(len(table), PARITY_ROWS))
        if ids is None
        else table.index[table["sample_id"].astype(str).isin(set(ids))].to_numpy()
    )
    chosen = table["sample_id"].astype(str).to_numpy()[rows]
    if isinstance(data, ImageData):
        pixels = data.pixels[rows]
        return chosen, lambda m: m.image_probabilities(pixels)
    spectra = data.stack(model.channels)[rows]
    tabular = (
        table[model.tabular].to_numpy(dtype=np.float32)[rows]
        if model.tabular
        else np.zeros((len(rows), 0), dtype=np.float32)
    )
    return chosen, lambda m: m.probabilities(spectra, tabular)


def check_served(path: Path, members: list[Path], clean_path: Path) -> dict[str, float]:
    """Fail unless the served file scores as its cells: one cell on its own test
    predictions, an ensemble as the mean of its members on clean rows."""
    served = ServedModel.load(path)
    if len(members) == 1:
        expected = pd.read_parquet(members[0] / layout.CELL_FILES["predictions"])
        ids, score = _clean_rows(served, clean_path, expected["sample_id"].astype(str).to_numpy())
        got = score(served)
        want = (
            expected.set_index(expected["sample_id"].astype(str))
            .loc[ids, [f"prob_{c}" for c in served.classes]]
            .to_numpy(dtype=np.float64)
        )
    else:
        ids, score = _clean_rows(served, clean_path, None)
        got = score(served)
        want = np.mean(
            [score(ServedModel.load(d / layout.CELL_FILES["onnx"])) for d in members], axis=0
        )
    diff = float(np.max(np.abs(got - want))) if len(got) else 0.0
    if diff > PARITY_TOLERANCE:
        raise ServeError(
            f"{path}: the served model disagrees with its cells "
            f"(max |diff| = {diff:.2e} > {PARITY_TOLERANCE:g} on {len(got)} rows)"
        )
    return {"max_abs_diff": diff, "n": len(got)}
