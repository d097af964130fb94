"""How the result sheet writes its numbers, the same in the PNG and in the HTML.

A value that does not exist (NaN, or infinite where a share is meant) shows
as an en dash rather than as `nan`, so an empty class reads as "no value".
"""

from __future__ import annotations

import math

import numpy as np

MISSING = "–"


def fmt_pct(x: float) -> str:
    return MISSING if not np.isfinite(x) else f"{100 * x:.1f}%"


def fmt_num(x: object, digits: int = 3) -> str:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return MISSING
    return f"{value:.{digits}f}" if math.isfinite(value) else MISSING


def fmt_threshold(x: float) -> str:
    """Three decimals, more when three would round a score next to 0 or 1 onto it."""
    for digits in range(3, 8):
        text = f"{x:.{digits}f}"
        if float(text) == x or 0 < float(text) < 1:
            return text
    return text


def fmt_cutoff(x: float) -> str:
    if math.isnan(x):
        return "none"
    return "unreachable" if math.isinf(x) else fmt_threshold(x)


def fmt_pm(mean: float, sd: float) -> str:
    """`mean ± sd`, the sd left out where it does not exist (a group of one)."""
    return f"{mean:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{mean:.3f}"


def wrap(text: str, width: int) -> str:
    """`text` broken into lines of at most `width` characters, at spaces."""
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        lines.append(line)
    return "\n".join(lines)
