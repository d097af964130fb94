from __future__ import annotations

import math

from spectragrid.report.formatting import (
    MISSING,
    fmt_cutoff,
    fmt_num,
    fmt_pct,
    fmt_pm,
    fmt_threshold,
    wrap,
)


def test_missing_values_show_as_a_dash() -> None:
    assert fmt_pct(math.nan) == fmt_pct(math.inf) == MISSING == "–"
    assert fmt_num(None) == fmt_num("n/a") == fmt_num(math.nan) == MISSING
    assert fmt_pct(0.375) == "37.5%" and fmt_num(2 / 3) == "0.667" and fmt_num(4482, 0) == "4482"


def test_thresholds_keep_the_digits_that_tell_them_from_0_and_1() -> None:
    assert fmt_threshold(0.5) == "0.500"
    assert fmt_threshold(0.9996) == "0.9996"  # three decimals would round it onto 1
    assert fmt_threshold(0.00004) == "0.00004"
    assert fmt_cutoff(math.nan) == "none" and fmt_cutoff(math.inf) == "unreachable"
    assert fmt_cutoff(0.25) == "0.250"


def test_mean_sd_and_wrapping() -> None:
    assert fmt_pm(0.5, 0.125) == "0.500 ± 0.125"
    assert fmt_pm(0.5, math.nan) == "0.500"
    assert wrap("one two three four", 9) == "one two\nthree\nfour"
    assert wrap("", 10) == ""
