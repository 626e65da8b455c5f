"""Type inference of dates and timestamps: ISO 8601, or the one declared format that fits
every value, day first when day and month first both fit."""

import pytest

from pipelines.type_inference import TypeInference


def inferred(*rows: list[str]) -> TypeInference:
    inference = TypeInference(len(rows[0]), null_values=("NULL",))
    for row in rows:
        inference.add(row)
    return inference


def test_day_first_dates_are_dates_declaring_day_first():
    inference = inferred(["31/12/2024"], ["05/01/2024"], [""], ["NULL"])

    assert inference.types == ["date"]
    assert inference.date_formats == ["%d/%m/%Y"]


def test_month_first_only_when_a_value_proves_it():
    inference = inferred(["05/01/2024"], ["12/31/2024"], ["1/2/2024"])

    assert inference.types == ["date"]
    assert inference.date_formats == ["%m/%d/%Y"]
    assert inference.misfit(0, "date", "%d/%m/%Y") == (2, "12/31/2024")
    assert inference.misfit(0, "date", "%m/%d/%Y") is None


def test_dates_that_fit_day_and_month_first_are_read_day_first():
    inference = inferred(["01/02/2020"], ["12/03/2020"])

    assert inference.types == ["date"]
    assert inference.date_formats == ["%d/%m/%Y"]
    assert inference.fitting_layouts(0, "date") == ["%d/%m/%Y", "%m/%d/%Y"]


@pytest.mark.parametrize(
    "values",
    [
        ["31/12/2024", "12/31/2024"],  # day first, then month first
        ["31/12/2024", "2024-12-31"],  # day first, then ISO 8601
        ["31/12/2024", "31-12-2024"],  # two separators
        ["31/12/2024", "31/12/2024 10:00"],  # a date, then a timestamp in that layout
        ["31/02/2024"],  # no such day
        ["00/01/2024"],
        ["31/12/24"],  # two-digit years are not guessed
    ],
)
def test_a_column_mixing_layouts_or_with_impossible_dates_is_text(values):
    inference = inferred(*([value] for value in values))

    assert inference.types == ["text"]
    assert inference.date_formats == [None]


@pytest.mark.parametrize(
    ("value", "kind", "date_format"),
    [
        ("2024-12-31", "date", None),
        ("31-12-2024", "date", "%d-%m-%Y"),
        ("31.12.2024", "date", "%d.%m.%Y"),
        ("2024/12/31", "date", "%Y/%m/%d"),
        ("2024-12-31 23:59:59", "timestamp", None),
        ("2024-12-31T23:59", "timestamp", None),
        ("31/12/2024 23:59", "timestamp", "%d/%m/%Y %H:%M"),
        ("31.12.2024 23:59:59", "timestamp", "%d.%m.%Y %H:%M:%S"),
        ("12/31/2024 07:05", "timestamp", "%m/%d/%Y %H:%M"),
    ],
)
def test_each_layout_an_upload_may_declare_is_recognised(value, kind, date_format):
    inference = inferred([value])

    assert inference.types == [kind]
    assert inference.date_formats == [date_format]


def test_iso_dates_among_iso_timestamps_make_a_timestamp_column():
    inference = inferred(["2024-12-31"], ["2024-12-31 10:00"])

    assert inference.types == ["timestamp"]
    assert inference.date_formats == [None]


def test_numbers_and_booleans_come_before_dates():
    inference = inferred(["2024", "20240131", "t"], ["2025", "20240201", "f"])

    assert inference.types == ["integer", "integer", "boolean"]
    assert inference.date_formats == [None, None, None]


def test_the_first_value_that_does_not_fit_each_format_is_kept():
    inference = inferred(["01/02/2024", "x"], ["13/02/2024", "y"], ["2024-02-13", "z"])

    assert inference.types == ["text", "text"]
    assert inference.misfit(0, "date", "%d/%m/%Y") == (3, "2024-02-13")
    assert inference.misfit(0, "date", "%m/%d/%Y") == (2, "13/02/2024")
    assert inference.misfit(0, "date", None) == (1, "01/02/2024")
    assert inference.misfit(0, "timestamp", "%d/%m/%Y %H:%M") == (1, "01/02/2024")
    assert inference.misfit(1, "timestamp", None) == (1, "x")
