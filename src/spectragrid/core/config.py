"""Study configuration: JSON Schema validation plus the cross-references a schema cannot see.

Errors name the offending key as a dotted path and, for a misspelt key or an
unknown name, suggest the closest valid one. An offending value is shown cut
to about 200 characters, and a config that expands to more than
`MAX_CONFIG_VALUES` values or `MAX_CONFIG_CHARS` characters, or nests deeper
than `MAX_CONFIG_DEPTH` (YAML anchors nested in aliases: a kilobyte can stand
for billions of values) is refused before the schema looks at it.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
import re
import reprlib
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from spectragrid.core.layout import NAME_PATTERN

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config that must be fixed before any job runs."""


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _did_you_mean(word: str, choices) -> str:
    if len(word) > _SHOWN_CHARS:
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# How much of an offending value a message shows.
_SHOWN_CHARS = 200
_SHORT = reprlib.Repr()
_SHORT.maxstring = 120
_SHORT.maxother = 120
_SHORT.maxlevel = 3
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 8


def _shown(value: Any) -> str:
    """repr(value) for a message, cut to about 200 characters (depth and length bounded)."""
    text = _SHORT.repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message, with the offending value in it cut to about 200 characters."""
    text = error.message
    full = repr(error.instance)
    if len(full) > _SHOWN_CHARS and full in text:
        text = text.replace(full, _shown(error.instance))
    if len(text) > 2 * _SHOWN_CHARS:
        text = text[: 2 * _SHOWN_CHARS - 1] + "…"
    return text


# A study config holds a few hundred values, nested six deep. Past these bounds it is
# not a study config, and jsonschema and the messages would expand it value by value.
MAX_CONFIG_VALUES = 100_000
MAX_CONFIG_DEPTH = 32
# Text, keys included; a long list of raw file paths is a few hundred kilobytes.
MAX_CONFIG_CHARS = 10_000_000


def check_size(config: Any, what: str = "config") -> None:
    """Refuse a config whose expanded size or depth is out of bounds, quickly.

    YAML aliases (`*name`) refer to one object many times; nested, a few of
    them stand for billions of values that every walk over the config
    (validation, messages, copies, hashes) would visit one by one. The walk
    here stops as soon as a bound is passed, naming the key where it was.
    """
    seen = chars = 0
    stack: list[tuple[Any, tuple[Any, ...]]] = [(config, ())]
    while stack:
        value, path = stack.pop()
        seen += 1
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, dict):
            chars += sum(len(k) for k in value if isinstance(k, str))
        if chars > MAX_CONFIG_CHARS:
            raise ConfigError(
                f"{what} is invalid:\n  - {_key_path(path[:3])}: the {what} holds more than "
                f"{MAX_CONFIG_CHARS:,} characters of text, counting each YAML alias (*name) "
                "as a copy of its anchor; a study config holds a few thousand"
            )
        if seen > MAX_CONFIG_VALUES:
            raise ConfigError(
                f"{what} is invalid:\n  - {_key_path(path[:3])}: the {what} holds more than "
                f"{MAX_CONFIG_VALUES:,} values, counting each YAML alias (*name) as a copy of "
                "its anchor; a study config holds a few hundred. Look for a huge list, or for "
                "anchors (&name) whose aliases repeat them inside one another"
            )
        if len(path) > MAX_CONFIG_DEPTH:
            raise ConfigError(
                f"{what} is invalid:\n  - {_key_path(path[:3])}: nested more than "
                f"{MAX_CONFIG_DEPTH} levels deep (a study config is about six); a YAML alias "
                "that refers to its own anchor nests for ever"
            )
        if isinstance(value, dict):
            stack.extend((v, (*path, _clip(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(value))


def _clip(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 60 else text[:59] + "…"


NAME_RULE = (
    "names become folder names under results/ and wildcard values: letters, digits, "
    "'_' and '-', starting with a letter or digit"
)


def _describe(error: jsonschema.ValidationError) -> str:
    where = _key_path(error.absolute_path)
    if error.validator == "pattern" and error.validator_value == f"^{NAME_PATTERN}$":
        return f"{where}: {_shown(error.instance)} is not a valid name; {NAME_RULE}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extra = [k for k in error.instance if k not in allowed]
        hints = "; ".join(
            f"unknown key {_shown(k)}{_did_you_mean(str(k), allowed)}" for k in extra[:10]
        ) + (f"; and {len(extra) - 10} more" if len(extra) > 10 else "")
        return f"{where}: {hints}; allowed keys: {', '.join(sorted(allowed))}"
    if error.validator in ("oneOf", "anyOf") and error.context:
        # "is not valid under any of the given schemas" hides what was expected: say
        # what is wrong with the alternative of the value's own type, or list the types
        own_type = [e for e in error.context if e.validator != "type"]
        if own_type:
            return _describe(min(own_type, key=lambda e: len(e.absolute_path)))
        types = sorted({str(t) for e in error.context for t in _as_list(e.validator_value)})
        return f"{where}: {_shown(error.instance)} is not of type {' or '.join(types)}"
    if error.validator == "type" and error.instance is None:
        # `key:` with nothing after it, or `null`: quoting "None" is not what was meant
        return f"{where}: is empty (null); give it a value, or remove the key"
    if error.validator == "type" and error.validator_value == "string":
        hint = f' (quote it in the YAML: "{error.instance}")' if _is_scalar(error.instance) else ""
        return f"{where}: {_message(error)}{hint}"
    if error.validator in (
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "pattern",
    ):
        why = error.schema.get("description")
        return f"{where}: {_message(error)}" + (f" ({why})" if why else "")
    if error.validator == "enum":
        return (
            f"{where}: {_shown(error.instance)} is not allowed"
            f"{_did_you_mean(str(error.instance), error.validator_value)}; "
            f"allowed: {', '.join(map(str, error.validator_value))}"
        )
    return f"{where}: {_message(error)}"


def _is_scalar(value: Any) -> bool:
    """A value short enough to be quoted back whole (a number, a boolean, a short text)."""
    return not isinstance(value, dict | list) and len(str(value)) <= _SHOWN_CHARS


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _resolve(schema: dict, root: dict) -> dict:
    while "$ref" in schema:
        ref = schema["$ref"]
        resolved = root["$defs"][ref.split("/")[-1]]
        # keywords beside a $ref (a default, a description) apply too
        schema = {**resolved, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _object_branch(schema: dict, root: dict) -> dict | None:
    """The object alternative of a `oneOf` (as in `da: true` or `da: {gain_sd: ...}`)."""
    for branch in schema.get("oneOf", []):
        branch = _resolve(branch, root)
        if branch.get("type") == "object" and "properties" in branch:
            return branch
    return None


def _fill_defaults(schema: dict, instance: Any, root: dict) -> Any:
    """`instance` with every schema default filled in, so code never needs a fallback.

    Follows `$ref`, `allOf` and `if`/`then` (a model's parameters depend on its
    `arch`), and expands the boolean shorthand of an option that is either
    `true` or an object of settings: `true` becomes the object with its
    defaults, so the settings a cell trains with are written out in its params.
    """
    schema = _resolve(schema, root)
    branch = _object_branch(schema, root)
    if instance is True and branch is not None:
        return _fill_defaults(branch, {}, root)
    if not isinstance(instance, dict):
        return instance
    if branch is not None:
        schema = branch
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if key in instance:
            instance[key] = _fill_defaults(sub, instance[key], root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, value in instance.items():
            if key not in schema.get("properties", {}):
                instance[key] = _fill_defaults(extra, value, root)
    for part in schema.get("allOf", []):
        condition = part.get("if")
        if condition is None or jsonschema.Draft202012Validator(condition).is_valid(instance):
            instance = _fill_defaults(part.get("then", part), instance, root)
    return instance


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    """The schema, parsed once per process (a job completes the settings of each of its
    K cells); a copy, so no caller changes another's."""
    return copy.deepcopy(_parsed_schema(str(path)))


@functools.lru_cache(maxsize=4)
def _parsed_schema(path: str) -> dict:
    # The safe loader on libyaml's parser where PyYAML has it (what yaml.safe_load does,
    # in a quarter of the time of the pure-Python parser): every Snakemake start and
    # every job parses the schema.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(Path(path).read_text())
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def validate(config: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """Return a validated, canonical copy of `config` with defaults filled in.

    Raises ConfigError naming every offending key.
    """
    check_size(config)
    schema = load_schema(schema_path)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"config is invalid:\n{lines}")
    config = _fill_defaults(schema, copy.deepcopy(config), schema)
    for model in config["models"].values():
        # a model without its own list takes the study's tabular columns
        model.setdefault("tabular", list(config["tabular"]))
    _check_names(config)
    _check_references(config)
    return canonical(config)


def _check_names(config: dict) -> None:
    """Names become path components: the schema's pattern, checked as a whole string.

    JSON Schema patterns are searched with `$`, which also matches before a
    trailing newline; the wildcard constraints match the whole value, so the
    same pattern is applied here with fullmatch.
    """
    named = [("dataset.name", config["dataset"]["name"])]
    for section in ("targets", "channel_sets", "models"):
        named += [(section, name) for name in config[section]]
    bad = [
        f"{key}: {_shown(name)} is not a valid name; {NAME_RULE}"
        for key, name in named
        if not re.fullmatch(NAME_PATTERN, name)
    ]
    if bad:
        raise ConfigError("config is invalid:\n" + "\n".join(f"  - {p}" for p in bad))


def canonical(value: Any, path: tuple[str, ...] = ()) -> Any:
    """`value` with mapping keys sorted, except where their order means something.

    Snakemake compares a rule's params by their repr, and a dict's repr follows
    insertion order: without this, moving a key in the YAML would rerun jobs.
    The classes of a user-defined target keep their order: it is the class
    order of every model trained on that target.
    """
    if isinstance(value, dict):
        ordered = len(path) == 3 and path[0] == "targets" and path[2] == "classes"
        keys = list(value) if ordered else sorted(value, key=str)
        return {key: canonical(value[key], (*path, str(key))) for key in keys}
    if isinstance(value, list):
        return [canonical(item, path) for item in value]
    return value


def _check_references(config: dict) -> None:
    problems: list[str] = []

    def require(key: str, names: list[str], known) -> None:
        for name in names:
            if name not in known:
                problems.append(
                    f"{key}: {_shown(name)} is not defined{_did_you_mean(str(name), known)}; "
                    f"defined: {', '.join(sorted(known))}"
                )

    grid = config["grid"]
    require("grid.models", grid["models"], config["models"])
    require("grid.targets", grid["targets"], config["targets"])
    require("grid.channel_sets", grid["channel_sets"], config["channel_sets"])
    channels = config["dataset"]["channels"]
    for set_name, members in config["channel_sets"].items():
        require(f"channel_sets.{set_name}", members, channels)
    issues = config["label_issues"]
    # Every model by default: which is the strongest evidence is decided per job, from
    # the out-of-fold log-loss (label_issues.combine).
    issues["models"] = issues.get("models") or list(grid["models"])
    if issues["enabled"]:
        # A model outside the grid is a judge: its raw cells are trained for the evidence only.
        require("label_issues.models", issues["models"], config["models"])
        if isinstance(issues["channel_sets"], list):
            require("label_issues.channel_sets", issues["channel_sets"], grid["channel_sets"])
    for section in ("saturation", "min_integral"):
        thresholds = [str(ch) for ch in config["cleaning"].get(section, {})]
        require(f"cleaning.{section}", thresholds, channels)
    for name, model in config["models"].items():
        fluorimeter = model["transforms"].get("new_fluorimeter")
        if isinstance(fluorimeter, dict):
            points = [str(ch) for ch in fluorimeter["points"]]
            require(f"models.{name}.transforms.new_fluorimeter.points", points, channels)
    dataset = config["dataset"]
    columns = dataset["columns"]
    kept_tabular = columns["tabular"]
    for name, model in config["models"].items():
        missing = [c for c in model["tabular"] if c not in kept_tabular]
        if missing:
            problems.append(
                f"models.{name}.tabular: {missing} must also be listed in "
                f"dataset.columns.tabular so ingest keeps them"
                f"{_did_you_mean(missing[0], kept_tabular)}; listed: {kept_tabular}"
            )
    prefixes = tuple(columns["drop_prefixes"])
    for key in ("id", "label", "severity", "type", "group", "tabular", "provenance"):
        named = columns.get(key)
        for column in named if isinstance(named, list) else [named]:
            if prefixes and isinstance(column, str) and column.startswith(prefixes):
                problems.append(
                    f"dataset.columns.{key}: {column!r} starts with one of "
                    f"dataset.columns.drop_prefixes {list(prefixes)}, whose columns are "
                    "dropped as leakage"
                )
    # An image data set reads dataset.images instead (spectragrid.data.image_config).
    if "demo" not in dataset and not dataset.get("raw") and not dataset.get("images"):
        problems.append(
            "dataset.raw: list the raw files, or add a dataset.demo (or dataset.images) block"
        )
    if dataset.get("images") and dataset.get("raw"):
        problems.append("dataset.raw: an image data set (dataset.images) has no raw files")
    if "demo" in dataset and dataset.get("raw"):
        problems.append(
            "dataset.demo and dataset.raw are both set: with dataset.demo the demo data are "
            "generated and studied, and the files of dataset.raw are never read. Remove the "
            "dataset.demo block to study your files, or empty dataset.raw to run the demo"
        )
    problems += _check_labels(config)
    missing_tab = [c for c in config["tabular"] if c not in kept_tabular]
    if missing_tab:
        problems.append(
            f"tabular: {missing_tab} must also be listed in dataset.columns.tabular "
            "so ingest keeps them"
        )
    if problems:
        raise ConfigError("config is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


def _check_labels(config: dict) -> list[str]:
    """The label layout the columns name, and targets that fit it (docs/lab_facts.md,
    "Labels and targets")."""
    columns = config["dataset"]["columns"]
    label, severity, type_ = (columns.get(k) for k in ("label", "severity", "type"))
    if label is not None and (severity is not None or type_ is not None):
        named = ", ".join(f"dataset.columns.{k}" for k in ("severity", "type") if columns.get(k))
        return [
            f"dataset.columns: both label and {named} are named; name label for a data set "
            "with one label column, or severity and type (and no label)"
        ]
    if label is None and (severity is None or type_ is None):
        if severity is None and type_ is None:
            return [
                "dataset.columns: no label column named; name label (a data set with one "
                "label column) or severity and type"
            ]
        given, lacking = ("severity", "type") if type_ is None else ("type", "severity")
        return [
            f"dataset.columns.{lacking}: not named, beside dataset.columns.{given}; a data set "
            f"with one label column names it as dataset.columns.label: "
            f"{columns[given]!r}, and leaves out severity and type"
        ]
    labels = sorted(set(config["dataset"]["label_map"].values()))
    one_column = label is not None
    problems = []
    if columns.get("id") is None and config["dataset"].get("truth"):
        problems.append(
            "dataset.truth: a truth file names samples by id, and dataset.columns.id is null "
            "(rows named by file and row); name the id column, or set dataset.truth: null"
        )
    for name, spec in config["targets"].items():
        if isinstance(spec, str):
            problems += _check_code(f"targets.{name}", spec, labels, one_column)
        else:
            problems += _check_custom(f"targets.{name}", spec, labels, one_column)
    return problems


def _labels_text(labels: list[str]) -> str:
    shown = ", ".join(_shown(v) for v in labels[:12])
    return shown + (f" and {len(labels) - 12} more" if len(labels) > 12 else "")


def _check_code(key: str, code: str, labels: list[str], one_column: bool) -> list[str]:
    kind, _, x = code.partition(" ")
    if one_column and kind == "AVA" and x:
        return [
            f"{key}: {code!r} is a code of data sets with a severity and a type column; this "
            "data set has one label column (dataset.columns.label): use 'AVA' (one class per "
            "label), 'OVA <label>', or a user-defined target"
        ]
    if kind != "OVA":
        return []
    combo = re.fullmatch(r"(.*?\D)(\d+)", x)
    if x in labels or (not one_column and (x.isdigit() or (combo and combo[1] in labels))):
        return []
    what = "a label" if one_column else "a label, a type number or a label and a type number"
    return [
        f"{key}: {code!r}: {_shown(x)} is not {what} of dataset.label_map"
        f"{_did_you_mean(x, labels)}; its labels: {_labels_text(labels)}"
    ]


def _check_custom(key: str, spec: dict, labels: list[str], one_column: bool) -> list[str]:
    column = spec["column"]
    allowed = ("label", "full_truth") if one_column else ("severity", "type", "full_truth")
    if column not in allowed:
        layout = (
            "one label column (dataset.columns.label)"
            if one_column
            else "a severity and a type column"
        )
        return [
            f"{key}.column: {column!r} is not a label column of this data set, which has "
            f"{layout}; use {' or '.join(allowed)}"
        ]
    if column == "type" or (column == "full_truth" and not one_column):
        return []
    problems = []
    for cls, values in spec["classes"].items():
        for value in values:
            if str(value) not in labels:
                problems.append(
                    f"{key}.classes.{cls}: {_shown(value)} is not a label of dataset.label_map"
                    f"{_did_you_mean(str(value), labels)}; its labels: {_labels_text(labels)}"
                )
    return problems


def complete_model(entry: dict, schema_path: Path = SCHEMA_PATH) -> dict:
    """One `models.<name>` entry, checked and with every default filled in.

    For code that builds a model outside a study (tests, benchmarks, a
    notebook): the same schema, hence the same defaults, as the workflow.
    """
    check_size(entry, "model")
    # The parsed schema itself, not a copy: nothing here writes to it (_fill_defaults
    # copies each default it takes), and a train job completes every cell's model.
    schema = _parsed_schema(str(schema_path))
    validator = _model_validator(str(schema_path))
    errors = sorted(validator.iter_errors(entry), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n".join(f"  - {_describe(e)}" for e in errors)
        raise ConfigError(f"model is invalid:\n{lines}")
    return canonical(_fill_defaults(validator.schema, copy.deepcopy(entry), schema))


@functools.lru_cache(maxsize=4)
def _model_validator(path: str) -> jsonschema.Draft202012Validator:
    schema = _parsed_schema(path)
    return jsonschema.Draft202012Validator({**schema["$defs"]["model"], "$defs": schema["$defs"]})


def config_hash(config: dict) -> str:
    """Hash of the semantic content: key order and comments do not change it."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# Sections that change no output of the study itself (the summary, the cells): the
# serving choices and batches are read after the study, so editing them reruns no
# study job and leaves the summary's config hash as it was.
SERVING_SECTIONS: tuple[str, ...] = ("predict",)


def study_hash(config: dict) -> str:
    """`config_hash` of the config without its serving sections."""
    return config_hash({k: v for k, v in config.items() if k not in SERVING_SECTIONS})


def trained_models(config: dict[str, Any]) -> list[str]:
    """Every model the study trains: the grid's, then the judges (label_issues.models
    outside the grid, whose raw cells judge the labels only)."""
    grid = list(config["grid"]["models"])
    issues = config.get("label_issues") or {}
    if not issues.get("enabled", True):
        return grid
    return grid + [m for m in issues.get("models") or [] if m not in grid]
