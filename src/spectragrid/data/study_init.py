"""Write a commented starting config for your raw files (`spectragrid init PATH...`).

The raw files are surveyed (`spectragrid.data.raw_survey`): channels and
wavelength axes, the id, the label column(s), group candidates and class
counts. The config written from the survey runs as it is: it is checked by
the config schema and by reading and cleaning the files exactly as the
ingest job will, and its choices follow the data:

- one target over the labels found (`AVA`, or `AVA IN` for severity and
  type), leaving out labels with fewer than 3 samples, which no 3 folds can
  spread;
- `splits.k` at most 5 and at most what the smallest class (and the number
  of groups) allows;
- cleaning thresholds off, with each channel's measured range in a comment;
- one CNN sized to the spectrum length, with modest training.

An existing config is replaced only with `--force`, and then kept beside
the new one with the suffix `.bak`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from spectragrid.core.config import ConfigError, validate
from spectragrid.data.clean_file import common_axis
from spectragrid.data.cleaning import clean
from spectragrid.data.raw import RawDataError, read_raw_file
from spectragrid.data.raw_survey import Survey, survey_raw_files
from spectragrid.data.targets import SEVERITIES, natural_key, sorted_labels

__all__ = ["InitError", "init_config", "main"]

DEFAULT_CONFIG = Path("config/config.yaml")
# Folds need at least 3 parts (train, validation, test); 5 is the shipped choice.
MIN_K, MAX_K = 3, 5
# A class needs a sample in each of the folds it is tested and validated on.
MIN_CLASS = MIN_K
# The CNN's stages each pool by this factor: the spectrum must survive them.
POOL = 4
MAX_STAGES = 3


class InitError(ValueError):
    """Raw files a starting config cannot be written for; the message says why."""


def _q(value: object) -> str:
    """A YAML scalar for any text: a JSON string is a valid YAML double-quoted one."""
    return json.dumps(str(value), ensure_ascii=False)


def _list(values: Sequence[object]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def _name(text: str) -> str:
    """A dataset name (a folder name under results/) from a file or folder name."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-")
    return name or "mine"


def _severity_of(spelling: str) -> str:
    """The domain's severity a field spelling starts with (`OK - Inspecteur` -> `OK`)."""
    match = re.match(r"(OK|CROCHET|VR|NC)\b", spelling)
    return match[1] if match else spelling


def _label_map(survey: Survey) -> dict[str, str]:
    spellings = sorted(survey.label_values, key=natural_key)
    if survey.one_column:
        return {s: s for s in spellings}
    return {s: _severity_of(s) for s in spellings}


def _columns(survey: Survey) -> dict:
    columns: dict = {"id": survey.id_column}
    if survey.one_column:
        columns["label"] = survey.label
    else:
        columns["severity"], columns["type"] = survey.severity, survey.type
    columns.update(group=survey.group, tabular=[], provenance=[])
    columns["drop_prefixes"] = list(survey.drop_prefixes)
    return columns


def _cnn(length: int) -> tuple[str, dict]:
    """The CNN's stages for a spectrum of `length` points: each pools by 4."""
    stages = min(MAX_STAGES, int(math.log(length, POOL) + 1e-9)) if length >= POOL else 0
    if stages == 0:
        return "mlp", {}
    return "cnn", {"widths": [16, 32, 64][:stages], "pool": POOL}


def init_config(paths: Sequence[Path], name: str | None = None) -> tuple[str, list[str]]:
    """The config text for `paths`, and what was found, one line per finding."""
    paths = [Path(p) for p in paths]
    survey = survey_raw_files(paths)
    columns = _columns(survey)
    label_map = _label_map(survey)
    tables = [read_raw_file(path, columns, survey.channels) for path in paths]
    try:
        cleaned = clean(tables, label_map, {}, {})
    except RawDataError as err:
        if survey.id_column is None or "sample id" not in str(err):
            raise
        # the id repeats with other content: name rows by file and row instead
        survey.id_repeats, survey.id_column, columns["id"] = survey.id_column, None, None
        tables = [read_raw_file(path, columns, survey.channels) for path in paths]
        cleaned = clean(tables, label_map, {}, {})
    table = cleaned.table
    counts = table["full_truth" if survey.one_column else "severity"].value_counts()
    classes = sorted_labels(counts.index, one_column=True)
    if not survey.one_column:
        classes = sorted(counts.index, key=_severity_rank)
    kept = [c for c in classes if counts[c] >= MIN_CLASS]
    left_out = [c for c in classes if counts[c] < MIN_CLASS]
    if len(kept) < 2:
        raise InitError(
            f"{paths[0]}: the labels of {_label_column(survey)!r} give fewer than 2 classes of "
            f"at least {MIN_CLASS} samples ({_counts(counts, classes)}); a classifier needs two"
        )
    smallest = int(min(counts[c] for c in kept))
    n_groups = int(table["group"].nunique()) if survey.group else len(table)
    if survey.group and n_groups < MIN_K:
        survey.group_candidates.pop(survey.group, None)
        survey.group, columns["group"] = None, None
        n_groups = len(table)
    k = max(MIN_K, min(MAX_K, smallest, n_groups))
    axis_length, channel_sets = _channel_sets(cleaned.wavelengths, survey.channels)
    arch, params = _cnn(axis_length)
    found = _findings(survey, counts, classes, left_out, k, n_groups)
    text = _render(
        name=name or _name(paths[0].parent.name if len(paths) > 1 else paths[0].stem),
        paths=paths,
        survey=survey,
        columns=columns,
        label_map=label_map,
        cleaned_spectra={ch: cleaned.channel(ch) for ch in cleaned.spectra},
        counts=counts,
        kept=kept,
        left_out=left_out,
        k=k,
        channel_sets=channel_sets,
        model=(arch, params),
        batch_size=32 if len(table) < 2000 else 64,
        found=found,
    )
    # what snakemake will check before any job: the schema and the cross-references
    validate(yaml.safe_load(text))
    return text, found


def _severity_rank(severity: str) -> tuple[int, tuple]:
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    return rank, natural_key(severity)


def _label_column(survey: Survey) -> str:
    return str(survey.label if survey.one_column else survey.severity)


def _counts(counts: pd.Series, classes: list[str]) -> str:
    return ", ".join(f"{c} ({int(counts[c])})" for c in classes)


def _channel_sets(wavelengths: dict[str, np.ndarray], channels: list[str]) -> tuple[int, dict]:
    """`all` channels on one axis when they share a grid, else one set per channel."""
    try:
        axis, _ = common_axis({c: wavelengths[c] for c in channels})
        return len(axis), {"all": channels}
    except ValueError:
        sets = {f"ch_{_name(c)}": [c] for c in channels}
        return min(len(wavelengths[c]) for c in channels), sets


def _findings(
    survey: Survey,
    counts: pd.Series,
    classes: list[str],
    left_out: list[str],
    k: int,
    n_groups: int,
) -> list[str]:
    found = [f"{survey.rows} rows in {len(survey.files)} file(s)"]
    for ch in survey.channels:
        wl = survey.axes[ch]
        step = f", step {wl[1] - wl[0]:g}" if len(wl) > 1 else ""
        found.append(f"channel {ch!r}: {len(wl)} points, {wl[0]:g} to {wl[-1]:g}{step}")
    if survey.id_column:
        found.append(f"id: {survey.id_column!r}")
    elif survey.id_repeats:
        found.append(
            f"id: {survey.id_repeats!r} names different measurements alike, so rows are "
            "named <file>:<row>"
        )
    else:
        found.append("id: none found (rows are named <file>:<row>)")
    if survey.one_column:
        found.append(f"labels: column {survey.label!r}, {len(classes)} classes")
    else:
        found.append(f"labels: severity {survey.severity!r} and type {survey.type!r}")
    found.append(f"class counts after cleaning: {_counts(counts, classes)}")
    if left_out:
        found.append(f"left out of the target (fewer than {MIN_CLASS} samples): {left_out}")
    if survey.other_labels:
        found.append(f"other label-like columns: {survey.other_labels}")
    if survey.group:
        found.append(f"group: {survey.group!r} ({n_groups} groups)")
    elif survey.group_candidates:
        found.append(f"group: none chosen; candidates {list(survey.group_candidates)}")
    else:
        found.append("group: none (every sample its own group)")
    if survey.numeric:
        found.append(f"numeric columns (possible tabular features): {survey.numeric}")
    found.append(f"splits.k = {k}")
    return found


def _render(
    *,
    name: str,
    paths: list[Path],
    survey: Survey,
    columns: dict,
    label_map: dict[str, str],
    cleaned_spectra: dict[str, np.ndarray],
    counts: pd.Series,
    kept: list[str],
    left_out: list[str],
    k: int,
    channel_sets: dict[str, list[str]],
    model: tuple[str, dict],
    batch_size: int,
    found: list[str],
) -> str:
    lines = [
        "# A study of your own raw files, written by `spectragrid init`.",
        "# Every key is documented in config/README.md. What was found:",
        *(f"#   {line}" for line in found),
        "# Next: `snakemake -n` lists the jobs, `snakemake --profile cpu` runs them.",
        "",
        "dataset:",
        f"  name: {_q(name)}",
        "  raw:",
        *(f"    - {_q(p)}" for p in paths),
        "  # a CSV of audited labels (the id and label columns), or null",
        "  truth: null",
        "  columns:",
    ]
    id_note = "" if columns["id"] else "  # no id column: rows are named <file>:<row>"
    lines.append(f"    id: {_q(columns['id']) if columns['id'] else 'null'}{id_note}")
    if survey.one_column:
        lines.append(f"    label: {_q(columns['label'])}")
    else:
        lines += [f"    severity: {_q(columns['severity'])}", f"    type: {_q(columns['type'])}"]
    candidates = [f"{c} ({n} values)" for c, n in survey.group_candidates.items()]
    lines.append(
        "    # rows that share a group value (replicates of one lot) stay in one fold"
        + (f"; candidates: {', '.join(candidates)}" if candidates else "")
    )
    lines.append(f"    group: {_q(columns['group']) if columns['group'] else 'null'}")
    if survey.numeric:
        lines.append(
            f"    # numeric columns a model could use as tabular features: {survey.numeric}"
        )
    lines += [
        "    tabular: []",
        "    provenance: []",
        f"    drop_prefixes: {_list(columns['drop_prefixes'])}",
        f"  channels: {_list(survey.channels)}",
        "  # raw label -> label; a raw label not listed drops its rows as unknown_label",
        "  label_map:",
        *(f"    {_q(raw)}: {_q(label)}" for raw, label in label_map.items()),
        "",
        "cleaning:",
        "  # Off: no sample is dropped for its signal level. Per channel, as measured:",
        *(
            f"  #   {ch}: highest point {float(v.max()):.6g}, spectrum sums "
            f"{float(v.sum(axis=1).min()):.6g} to {float(v.sum(axis=1).max()):.6g}"
            for ch, v in cleaned_spectra.items()
        ),
        "  saturation: {}",
        "  min_integral: {}",
        "",
        "splits:",
        f"  # each class needs k samples; the smallest one here has {int(min(counts[kept]))}",
        f"  k: {k}",
        "  seeds: [0]",
        "  grouped: true",
        "",
        "targets:",
    ]
    lines += _targets(survey, counts, kept, left_out)
    arch, params = model
    lines += [
        "",
        "channel_sets:",
        *(f"  {set_name}: {_list(members)}" for set_name, members in channel_sets.items()),
        "",
        "models:",
        "  cnn:" if arch == "cnn" else "  mlp:",
        f"    arch: {arch}",
    ]
    if params:
        lines += [
            "    # sized to the spectrum: each stage pools by 4",
            "    params:",
            f"      widths: {params['widths']}",
            f"      pool: {params['pool']}",
        ]
    lines += [
        "    train:",
        "      epochs: 20",
        f"      batch_size: {batch_size}",
        "      patience: 5",
        "",
        "grid:",
        f"  models: [{arch}]",
        "  targets: [classes]",
        f"  channel_sets: [{', '.join(channel_sets)}]",
        "",
        "label_issues:",
        "  # cleanlab on the out-of-fold predictions, then the grid again on cleaned labels",
        "  enabled: true",
        f"  models: [{arch}]",
        "",
    ]
    return "\n".join(lines)


def _targets(survey: Survey, counts: pd.Series, kept: list[str], left_out: list[str]) -> list[str]:
    column = "label" if survey.one_column else "severity"
    example = kept[0]
    if left_out:
        return [
            f"  # one class per label; left out (fewer than {MIN_CLASS} samples): "
            + ", ".join(f"{c} ({int(counts[c])})" for c in left_out),
            "  classes:",
            f"    column: {column}",
            "    classes:",
            *(f"      {_q(c)}: [{_q(c)}]" for c in kept),
            "  # more: one label against the rest, e.g.",
            f"  # first_vs_rest: OVA {example}",
        ]
    code = "AVA" if survey.one_column else "AVA IN"
    return [
        f"  # one class per {column}: " + ", ".join(kept),
        f"  classes: {code}",
        "  # more: one label against the rest, e.g.",
        f"  # first_vs_rest: OVA {example}",
    ]


def _write(path: Path, text: str, force: bool) -> Path | None:
    """Write `path`; an existing one is kept as `<path>.bak` (only with `force`)."""
    backup = None
    if path.exists() or path.is_symlink():
        if not force:
            raise InitError(
                f"{path} exists; pass --force to replace it (the old one is then kept as "
                f"{path}.bak), or --config to write elsewhere"
            )
        backup = path.with_name(path.name + ".bak")
        path.replace(backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return backup


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spectragrid init",
        description=(
            "Write a commented starting config (config/config.yaml) for your raw files: "
            "pickles, CSV tables or Parquet files with one row per measurement and spectral "
            "columns named <channel>_<wavelength>."
        ),
    )
    parser.add_argument("paths", nargs="+", type=Path, help="the raw files of the study")
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="where to write (%(default)s)"
    )
    parser.add_argument("--name", help="dataset name, the folder under results/")
    parser.add_argument(
        "--force", action="store_true", help="replace an existing config (kept as .bak)"
    )
    args = parser.parse_args(argv)
    try:
        if args.name is not None and _name(args.name) != args.name:
            raise InitError(f"--name {args.name!r}: use letters, digits, '_' and '-' only")
        text, found = init_config(args.paths, args.name)
        backup = _write(args.config, text, args.force)
    except (InitError, RawDataError, ConfigError, OSError) as err:
        message = " ".join(str(err).split())
        print(f"spectragrid init: error: {message}", file=sys.stderr)
        return 2
    print("Found:")
    for line in found:
        print(f"  {line}")
    print(f"Wrote {args.config}" + (f" (the previous one is now {backup})" if backup else ""))
    print("Next: `snakemake -n` lists the jobs, `snakemake --profile cpu` runs them.")
    return 0
