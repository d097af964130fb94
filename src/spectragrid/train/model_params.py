"""Model hyper-parameters: defaults and checks, importable without torch.

The Snakefile validates the config at start-up through this module, so it
must stay light: every snakemake call (a dry run included) pays its import.
"""

from __future__ import annotations

import copy
import difflib


class ModelError(ValueError):
    """A model name or hyper-parameter the registry cannot build."""


# Used by SpectraClassifier's head; `dropout` also drives the dropout inside the
# trunks that have any (transformer, mlp), so one knob regularises the model.
HEAD_DEFAULTS: dict[str, object] = {"head_hidden": 64, "dropout": 0.1}

ARCH_DEFAULTS: dict[str, dict[str, object]] = {
    "cnn": {"widths": [16, 32, 64], "kernel": 7, "pool": 4},
    "vgg11": {"batch_norm": True, "width": 0.125, "pooled_length": 7},
    "vgg16": {"batch_norm": True, "width": 0.125, "pooled_length": 7},
    "resnetv2": {"depth": "1_1_1_1", "width": 1, "base_width": 16},
    "transformer": {
        "patch": 16,
        "dim": 64,
        "depth": 2,
        "heads": 4,
        "mlp_ratio": 2.0,
        "pool": "cls",
    },
    "mlp": {"hidden": [256, 64], "batch_norm": False},
}


def _check_arch(arch: str) -> None:
    if arch not in ARCH_DEFAULTS:
        close = difflib.get_close_matches(arch, list(ARCH_DEFAULTS), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ModelError(f"unknown architecture {arch!r}{hint}; known: {', '.join(ARCH_DEFAULTS)}")


def default_params(arch: str) -> dict[str, object]:
    """Every parameter `arch` accepts, with its default (a fresh copy)."""
    _check_arch(arch)
    return copy.deepcopy({**HEAD_DEFAULTS, **ARCH_DEFAULTS[arch]})


def allowed_params(arch: str) -> list[str]:
    return sorted(default_params(arch))


def _type_error(default: object, value: object) -> str | None:
    """What `value` should be, judged by the type of the default; None when it fits."""
    if isinstance(default, bool):
        fits, kind = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        fits, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        fits, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        fits, kind = isinstance(value, str), "a string"
    elif isinstance(default, list):
        fits, kind = isinstance(value, list | tuple), "a list"
    else:
        return None
    return None if fits else kind


def resolve_params(arch: str, params: dict) -> dict[str, object]:
    """Defaults overlaid with `params`; unknown keys and wrong types raise ModelError.

    Cheap (builds nothing), so a config can be checked before any job runs.
    """
    merged = default_params(arch)
    unknown = [key for key in params if key not in merged]
    if unknown:
        hints = "; ".join(
            f"unknown parameter {key!r}"
            + (
                f" (did you mean {close[0]!r}?)"
                if (close := difflib.get_close_matches(str(key), list(merged), n=1, cutoff=0.6))
                else ""
            )
            for key in unknown
        )
        raise ModelError(
            f"architecture {arch!r}: {hints}; allowed: {', '.join(allowed_params(arch))}"
        )
    for key, value in params.items():
        expected = _type_error(merged[key], value)
        if expected:
            raise ModelError(
                f"architecture {arch!r}: parameter {key!r} must be {expected}, got {value!r}"
            )
        merged[key] = copy.deepcopy(value)
    return merged
