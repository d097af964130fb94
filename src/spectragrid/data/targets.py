"""Target codes turned into explicit, ordered class lists.

A target maps each sample's full truth to a class index, or -1 when the
sample does not belong to the target. Two label layouts (docs/lab_facts.md,
"Labels and targets"):

- severity and type (the domain's): the full truth is both written together
  (`VR11`); class lists follow the severity order below, then type;
- one label column (`dataset.columns.label`): the full truth is the label
  itself; `AVA` and `OVA <label>` apply, classes in natural order (`A2`
  before `A10`).

A clean table says which layout it has by its columns: `label` for one
label column, `severity` and `type` otherwise. Every order is a sort on the
values themselves, never the iteration order of a set, so the class list is
the same in every process whatever its hash seed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

SEVERITIES: tuple[str, ...] = ("OK", "CROCHET", "VR", "NC")
SOUND = ("OK", "CROCHET")
# Sub-types fold into their parent type for the "TYs" codes.
COARSE_TYPE = {11: 1, 12: 1, 13: 1, 14: 1}

AVA_CODES = ("IN", "INs", "TY", "TYs", "INTY", "INsTYs")
# The label columns a user-defined target may name, per layout.
SEVERITY_TYPE_COLUMNS = ("severity", "type", "full_truth")
ONE_COLUMN_COLUMNS = ("label", "full_truth")


class TargetError(ValueError):
    """A target that cannot be built from the config or the data."""


@dataclass(frozen=True)
class Target:
    name: str
    code: str
    classes: tuple[str, ...]
    # class name -> full-truth values (e.g. "VR11") that belong to it
    members: tuple[tuple[str, ...], ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def is_binary(self) -> bool:
        return len(self.classes) == 2

    def encode(self, full_truth: pd.Series | np.ndarray) -> np.ndarray:
        """Class index per sample (int64), -1 where the sample is outside the target."""
        lookup = {value: i for i, values in enumerate(self.members) for value in values}
        values = pd.Series(np.asarray(full_truth, dtype=object))
        return values.map(lookup).fillna(-1).to_numpy(dtype=np.int64)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "code": self.code,
            "classes": list(self.classes),
            "members": [list(m) for m in self.members],
        }


def full_truth(severity: pd.Series, type_: pd.Series) -> pd.Series:
    """`OK0`, `VR11`, ...: severity and type, the users' stratification label."""
    return severity.astype(str) + type_.astype("int64").astype(str)


def split_combo(value: str) -> tuple[str, int]:
    """`VR11` -> ("VR", 11): a full-truth value's severity and type; TargetError otherwise."""
    match = re.fullmatch(r"(.*?\D)(\d+)", value)
    if not match:
        raise TargetError(f"not a full-truth value: {value!r}")
    return match.group(1), int(match.group(2))


def _order_key(value: str) -> tuple[int, int, str]:
    severity, type_ = split_combo(value)
    rank = SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)
    # the value itself breaks ties between severities outside the domain's four
    return rank, type_, value


def natural_key(value: str) -> tuple[tuple[tuple[int, int | str], ...], str]:
    """Sort key that reads digit runs as numbers: `A2` < `A10`, `2` < `10`."""
    parts = tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", value)
        if part
    )
    return parts, value


def sorted_labels(values: Iterable[object], one_column: bool) -> list[str]:
    """Distinct full-truth values in class order: natural for one label column, else by
    severity then type."""
    distinct = {str(v) for v in values}
    if one_column:
        return sorted(distinct, key=natural_key)
    # a value that is not severity-then-type (a hand-made table) sorts after, by text
    combos = [v for v in distinct if re.fullmatch(r".*?\D\d+", v)]
    rest = sorted(distinct - set(combos), key=natural_key)
    return sorted(combos, key=_order_key) + rest


def is_one_column(table: pd.DataFrame) -> bool:
    """Whether a clean table has one label column (`label`) rather than severity and type."""
    return "label" in table.columns


def label_columns(table: pd.DataFrame) -> tuple[str, ...]:
    """The label columns a user-defined target may name in this table's layout."""
    return ONE_COLUMN_COLUMNS if is_one_column(table) else SEVERITY_TYPE_COLUMNS


def _group(observed: list[str], key) -> tuple[list[str], list[tuple[str, ...]]]:
    """Group observed full-truth values by a class-naming function, in a stable order."""
    groups: dict[str, list[str]] = {}
    for value in sorted(observed, key=_order_key):
        groups.setdefault(key(value), []).append(value)
    return list(groups), [tuple(v) for v in groups.values()]


def _ava(code: str, observed: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    def severity(v: str) -> str:
        return split_combo(v)[0]

    def type_(v: str) -> int:
        return split_combo(v)[1]

    if code == "IN":
        return _group(observed, severity)
    if code in ("INs", "INsTYs"):
        _check_domain_severities(code, {severity(v) for v in observed})
    if code == "INs":
        return _group(observed, lambda v: "OK-CROCHET" if severity(v) in SOUND else "VR-NC")
    if code == "TY":
        by_type = sorted(observed, key=lambda v: (type_(v), _order_key(v)))
        groups: dict[str, list[str]] = {}
        for v in by_type:
            groups.setdefault(str(type_(v)), []).append(v)
        return list(groups), [tuple(g) for g in groups.values()]
    if code == "TYs":
        by_type = sorted(observed, key=lambda v: (COARSE_TYPE.get(type_(v), type_(v)), type_(v)))
        groups = {}
        for v in by_type:
            groups.setdefault(str(COARSE_TYPE.get(type_(v), type_(v))), []).append(v)
        return list(groups), [tuple(g) for g in groups.values()]
    if code == "INTY":
        return _group(observed, lambda v: v)
    if code == "INsTYs":

        def name(v: str) -> str:
            if severity(v) in SOUND:
                return severity(v)
            return f"D{COARSE_TYPE.get(type_(v), type_(v))}"

        names, members = _group(observed, name)
        # sound classes first, then defects by coarse type
        order = sorted(
            range(len(names)),
            key=lambda i: (
                SOUND.index(names[i]) if names[i] in SOUND else len(SOUND),
                int(names[i][1:]) if names[i] not in SOUND else 0,
            ),
        )
        return [names[i] for i in order], [members[i] for i in order]
    raise TargetError(f"unknown all-vs-all code 'AVA {code}'; known: {', '.join(AVA_CODES)}")


def _check_domain_severities(code: str, severities: set[str]) -> None:
    """Codes that split sound from defect only know the domain's four severities.

    Any other label would otherwise fall silently on the defect side.
    """
    uncovered = sorted(severities - set(SEVERITIES))
    if uncovered:
        raise TargetError(
            f"'AVA {code}' splits {'/'.join(SOUND)} from the defects "
            f"{'/'.join(s for s in SEVERITIES if s not in SOUND)}; the labels "
            f"{', '.join(map(repr, uncovered))} are not covered: map them onto "
            f"{', '.join(SEVERITIES)} in dataset.label_map, or define a custom target"
        )


def _ova(x: str, observed: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    if x in SEVERITIES:
        positive = [v for v in observed if split_combo(v)[0] == x]
    elif x.isdigit():
        positive = [v for v in observed if split_combo(v)[1] == int(x)]
    else:
        positive = [v for v in observed if v == x]
    if not positive:
        raise TargetError(f"'OVA {x}': no sample of the dataset is {x}")
    rest = [v for v in observed if v not in positive]
    if not rest:
        raise TargetError(f"'OVA {x}': every sample is {x}, there is no rest")
    return [x, "rest"], [
        tuple(sorted(positive, key=_order_key)),
        tuple(sorted(rest, key=_order_key)),
    ]


def _one_column(code: str, observed: list[str]) -> tuple[list[str], list[tuple[str, ...]]]:
    """`AVA` and `OVA <label>` over one label column (its values are the full truth)."""
    if code == "AVA":
        return list(observed), [(v,) for v in observed]
    kind, _, x = code.partition(" ")
    if kind != "OVA" or not x:
        raise TargetError(
            f"{code!r} is a code of data sets with a severity and a type column; this data "
            "set has one label column (dataset.columns.label): use 'AVA' (one class per "
            "label), 'OVA <label>', or a user-defined target"
        )
    if x not in observed:
        raise TargetError(
            f"'OVA {x}': no sample of the dataset is labelled {x!r}; labels: "
            + ", ".join(repr(v) for v in observed[:20])
        )
    return [x, "rest"], [(x,), tuple(v for v in observed if v != x)]


def resolve_target(
    name: str,
    code: str,
    observed_full_truth: pd.Series | list[str],
    *,
    one_column: bool = False,
) -> Target:
    """Build a target from its code and the full-truth values present in the dataset.

    `one_column`: the full truth is a single label column's value, which only
    `AVA` and `OVA <label>` apply to.
    """
    values = {str(v) for v in observed_full_truth}
    try:
        if one_column:
            classes, members = _one_column(code, sorted(values, key=natural_key))
        else:
            observed = sorted(values, key=_order_key)
            kind, _, arg = code.partition(" ")
            if code == "AVA":
                # every full-truth value its own class, as AVA INTY
                kind, arg = "AVA", "INTY"
            elif kind not in ("AVA", "OVA") or not arg:
                raise TargetError(
                    f"code {code!r} must read 'AVA', 'AVA <IN|INs|TY|TYs|INTY|INsTYs>' "
                    "or 'OVA <severity|type|full truth>'"
                )
            classes, members = _ava(arg, observed) if kind == "AVA" else _ova(arg, observed)
    except TargetError as err:
        raise TargetError(f"target {name!r}: {err}") from None
    if len(classes) < 2:
        raise TargetError(f"target {name!r}: {code!r} has a single class in this dataset")
    return Target(name=name, code=code, classes=tuple(classes), members=tuple(members))


def resolve_custom_target(name: str, spec: dict, table: pd.DataFrame) -> Target:
    """A user-defined target: values of one label column mapped to named classes.

    The mapping is translated into full-truth members, so a custom target
    travels through splits, label cleaning and the summary like a coded one.
    Values listed under no class are outside the target.
    """
    column = spec["column"]
    allowed = label_columns(table)
    if column not in allowed or column not in table.columns:
        layout = (
            "one label column (dataset.columns.label)"
            if is_one_column(table)
            else "a severity and a type column"
        )
        raise TargetError(
            f"targets.{name}.column: {column!r} is not a label column of this data set, "
            f"which has {layout}; use one of {', '.join(allowed)}"
        )
    classes: dict[str, list] = spec["classes"]
    if len(classes) < 2:
        raise TargetError(f"targets.{name}.classes: define at least two classes")
    owner: dict[str, str] = {}
    for cls, values in classes.items():
        for value in values:
            key = str(value)
            if key in owner:
                raise TargetError(
                    f"targets.{name}.classes: value {key!r} is listed under both "
                    f"{owner[key]!r} and {cls!r}"
                )
            owner[key] = cls
    pairs = table[[column, "full_truth"]].astype(str).drop_duplicates()
    members: dict[str, list[str]] = {cls: [] for cls in classes}
    for value, combo in pairs.itertuples(index=False):
        if value in owner:
            members[owner[value]].append(combo)
    empty = [cls for cls, combos in members.items() if not combos]
    if empty:
        present = sorted(table[column].astype(str).unique(), key=natural_key)
        raise TargetError(
            f"targets.{name}.classes: no sample of the dataset falls in {empty}; "
            f"values of {column!r} in the data: {present[:20]}"
        )
    order = natural_key if is_one_column(table) else _order_key
    return Target(
        name=name,
        code=f"custom {column}",
        classes=tuple(classes),
        members=tuple(tuple(sorted(m, key=order)) for m in members.values()),
    )


def resolve(name: str, spec: str | dict, table: pd.DataFrame) -> Target:
    """A target from its config entry: a code string or a custom mapping."""
    if isinstance(spec, str):
        return resolve_target(name, spec, table["full_truth"], one_column=is_one_column(table))
    return resolve_custom_target(name, spec, table)


def check_class_sizes(target: Target, y: np.ndarray, k: int) -> None:
    """Every class needs at least one sample per fold, or some cells cannot test it."""
    counts = np.bincount(y[y >= 0], minlength=target.n_classes)
    small = [f"{c} ({n})" for c, n in zip(target.classes, counts, strict=True) if n < k]
    if small:
        raise TargetError(
            f"targets.{target.name}: class(es) {', '.join(small)} have fewer samples than "
            f"splits.k = {k}; merge them into another class, choose another target, "
            "or lower splits.k"
        )


def display_code(code: str) -> str:
    """The users' `y=['OVA', 'OK']` spelling of a target code."""
    return "[" + ", ".join(repr(p) for p in code.split()) + "]"
