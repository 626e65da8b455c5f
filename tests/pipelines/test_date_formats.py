"""Declared date formats checked in Python (``fits``), as the loader's CHECK checks them in
PostgreSQL, and written the way a person reads them."""

import psycopg
import pytest
from psycopg import sql

from pipelines.date_formats import (
    UPLOAD_DATE_FORMATS,
    UPLOAD_FORMATS,
    describe,
    fits,
    parse_date_format,
)

VALUES = [
    "31/12/2024",
    "12/31/2024",
    "1/2/2024",
    "29/02/2024",
    "29/02/2023",
    "31/04/2024",
    "00/01/2024",
    "01/00/2024",
    "01/01/0000",
    "01/02/24",
    " 01/02/2024",
    "01/02/2024\n",
    "31-12-2024",
    "31.12.2024",
    "2024/12/31",
    "2024-12-31",
    "31/12/2024 23:59",
    "31/12/2024 23:59:59",
    "31/12/2024 24:30",
    "12/31/2024 7:05",
    "31/12/2024 10:61",
    "x",
]


def test_formats_are_written_as_people_read_them():
    assert describe("%d/%m/%Y") == "DD/MM/YYYY"
    assert describe("%m/%d/%Y %H:%M:%S") == "MM/DD/YYYY HH:MM:SS"
    assert describe("%d %b %Y") == "DD Mon YYYY"
    assert [describe(text) for text in UPLOAD_DATE_FORMATS] == [
        "DD/MM/YYYY",
        "MM/DD/YYYY",
        "DD-MM-YYYY",
        "DD.MM.YYYY",
        "YYYY/MM/DD",
    ]


@pytest.mark.parametrize(
    ("text", "value", "expected"),
    [
        ("%d/%m/%Y", "31/12/2024", True),
        ("%d/%m/%Y", "5/1/2024", True),
        ("%d/%m/%Y", "12/31/2024", False),
        ("%d/%m/%Y", "31/02/2024", False),
        ("%d/%m/%Y", "1/2/24", False),
        ("%d/%m/%Y", "01/02/2024 ", False),
        ("%m/%d/%Y", "12/31/2024", True),
        ("%d/%m/%Y %H:%M", "31/12/2024 23:59", True),
        ("%d/%m/%Y %H:%M", "31/12/2024 25:00", False),
        ("%d %b %Y", "01 Feb 2024", True),
        ("%d %b %Y", "01 Fex 2024", False),
    ],
)
def test_a_value_fits_a_format_when_it_is_written_so_and_is_a_real_date(text, value, expected):
    assert fits(text, value) is expected


def test_an_unsupported_format_is_refused():
    with pytest.raises(ValueError, match="%Q is not one of"):
        fits("%d/%m/%Q", "01/02/2024")


@pytest.mark.parametrize("text", UPLOAD_FORMATS)
def test_fits_agrees_with_the_check_postgresql_makes_while_loading(pg, text):
    date_format = parse_date_format(text)
    parse = "to_timestamp" if date_format.has_time else "to_date"
    check = sql.SQL("SELECT %s ~ {pattern} AND {parse}(%s, {template}) IS NOT NULL").format(
        pattern=sql.Literal(date_format.pattern),
        parse=sql.SQL(parse),
        template=sql.Literal(date_format.template),
    )
    values = VALUES + [value.replace("/", text[2]) for value in VALUES]
    for value in values:
        try:
            with pg.transaction():
                accepted = pg.execute(check, (value, value)).fetchone()[0]
        except psycopg.errors.DataError:
            accepted = False
        assert fits(text, value) is bool(accepted), (text, value)
