"""The column type that fits every value seen: integer, numeric, boolean, date, timestamp or
text (``pipelines.column_types`` names). Used on an upload's verify page, over its first rows.

A value is checked the way the loader will load it: PostgreSQL's ``integer`` (4 bytes, else
``numeric``), ``true``/``false``/``yes``/``no``/``t``/``f``/``y``/``n`` booleans, and numbers
with a decimal comma (``1.234,56``) when the file uses one. Empty values, and the null
spellings given, fit every type; a column with no value is text, and so is one with a code
written with leading zeros (``007``), which a number would lose.

Dates and timestamps are ISO 8601 (``2024-12-31``, ``2024-12-31 23:59:59``; a timestamp
column may hold dates too) or one of the formats an upload may declare
(``pipelines.date_formats.UPLOAD_FORMATS``): a column is a date or timestamp with the first
format, in that order, that fits every value. ISO 8601 comes first and needs no declared
format; day first (``%d/%m/%Y``) comes before month first (``%m/%d/%Y``), so a column
whose values fit both (``01/02/2024``) is read day first, and month first only when some
value proves it (``12/31/2024``). For every format the first value that does not fit it is
kept (``misfit``), so that a format a person chooses can be checked against the same rows.
"""

import re
from collections.abc import Iterable
from datetime import date, datetime

from pipelines.copying import DECIMAL_COMMA, WHOLE_NUMBER
from pipelines.date_formats import (
    UPLOAD_DATE_FORMATS,
    UPLOAD_FORMATS,
    UPLOAD_TIMESTAMP_FORMATS,
    fits,
)

# In the order a column's type is chosen: the first that fits every value.
PREFERENCE = ("boolean", "integer", "numeric", "date", "timestamp", "text")
TEMPORAL = ("date", "timestamp")
INTEGER_MAX = 2**31 - 1
BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n"})
# The keys under which the ISO 8601 layouts are followed beside the declared formats.
ISO_DATE = "ISO 8601 date"
ISO_TIMESTAMP = "ISO 8601 timestamp"
# Each kind's layouts, in the order they are preferred.
LAYOUTS = {
    "date": (ISO_DATE, *UPLOAD_DATE_FORMATS),
    "timestamp": (ISO_TIMESTAMP, *UPLOAD_TIMESTAMP_FORMATS),
}

_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*")
_NUMERIC = re.compile(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*")
_WHOLE_COMMA = re.compile(WHOLE_NUMBER.strip("^$"))
_NUMERIC_COMMA = re.compile(DECIMAL_COMMA.strip("^$"))
# A code such as ``007`` or ``01234`` (its zeros would be lost as a number).
_LEADING_ZERO = re.compile(r"\s*[-+]?0[0-9]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")


def layout_key(kind: str, date_format: str | None) -> str:
    """The key a column's ``kind`` (date or timestamp) read with ``date_format`` (None or
    empty: ISO 8601) is followed under."""
    if date_format:
        return date_format
    return ISO_TIMESTAMP if kind == "timestamp" else ISO_DATE


class TypeInference:
    """Follows the values of ``width`` columns row by row; ``types`` gives each column's type
    and ``date_formats`` the format of its dates.

    ``decimal_comma``: numbers are written ``1.234,56``. ``null_values``: spellings of "no
    value" besides the empty string.
    """

    def __init__(self, width: int, decimal_comma: bool = False, null_values: Iterable[str] = ()):
        self.decimal_comma = decimal_comma
        self.empty = frozenset({"", *null_values})
        self.candidates = [list(PREFERENCE[:3]) for _ in range(width)]
        self.layouts = [[ISO_DATE, ISO_TIMESTAMP, *UPLOAD_FORMATS] for _ in range(width)]
        self.misfits: list[dict[str, tuple[int, str]]] = [{} for _ in range(width)]
        self.seen = [False] * width
        self.rows = 0

    def add(self, row: list[str]) -> None:
        """Take one row's values (as many as there are columns)."""
        self.rows += 1
        for index, value in enumerate(row):
            kinds, layouts = self.candidates[index], self.layouts[index]
            if (not kinds and not layouts) or value in self.empty:
                continue
            self.seen[index] = True
            if kinds and not (len(kinds) == 1 and self._fits(kinds[0], value)):
                kinds[:] = [kind for kind in kinds if self._fits(kind, value)]
            if layouts:
                fitting = _fitting_layouts(layouts, value)
                if len(fitting) < len(layouts):
                    for layout in layouts:
                        if layout not in fitting:
                            self.misfits[index][layout] = (self.rows, value)
                    layouts[:] = fitting

    @property
    def types(self) -> list[str]:
        return [self._type(index) for index in range(len(self.seen))]

    @property
    def date_formats(self) -> list[str | None]:
        """Each column's declared format: the first that fits a date or timestamp column's
        values; None for ISO 8601 and for the other types."""
        formats = []
        for index, kind in enumerate(self.types):
            fitting = self.fitting_layouts(index, kind)
            formats.append(fitting[0] if fitting and fitting[0] in UPLOAD_FORMATS else None)
        return formats

    def fitting_layouts(self, index: int, kind: str) -> list[str]:
        """The layouts of ``kind`` that fit every value of column ``index``, preferred first
        (``ISO_DATE``/``ISO_TIMESTAMP`` or a format); none for a type that is not temporal."""
        return [layout for layout in LAYOUTS.get(kind, ()) if layout in self.layouts[index]]

    def misfit(self, index: int, kind: str, date_format: str | None) -> tuple[int, str] | None:
        """The first value of column ``index`` that does not fit ``kind`` read with
        ``date_format`` (None or empty: ISO 8601), and its data row number (1-based); None
        when every value fits. ``date_format`` is one of ``UPLOAD_FORMATS``."""
        return self.misfits[index].get(layout_key(kind, date_format))

    def _type(self, index: int) -> str:
        if not self.seen[index]:
            return "text"
        if self.candidates[index]:
            return self.candidates[index][0]
        for kind in TEMPORAL:
            if self.fitting_layouts(index, kind):
                return kind
        return "text"

    def _fits(self, kind: str, value: str) -> bool:
        if kind == "integer":
            return self._integer(value)
        if kind == "numeric":
            pattern = _NUMERIC_COMMA if self.decimal_comma else _NUMERIC
            return pattern.fullmatch(value) is not None and not _LEADING_ZERO.match(value)
        if kind == "boolean":
            return value.strip().lower() in BOOLEANS
        return True

    def _integer(self, value: str) -> bool:
        pattern = _WHOLE_COMMA if self.decimal_comma else _INTEGER
        if pattern.fullmatch(value) is None or _LEADING_ZERO.match(value):
            return False
        digits = value.strip().lstrip("+-").replace(".", "")
        return len(digits) < 10 or int(digits) <= INTEGER_MAX


def _fitting_layouts(layouts: list[str], value: str) -> list[str]:
    fitting: list[str] = []
    for layout in layouts:
        # A value that is an ISO date is an ISO timestamp too: no need to look twice.
        if (layout == ISO_TIMESTAMP and ISO_DATE in fitting) or _fits_layout(layout, value):
            fitting.append(layout)
    return fitting


def _fits_layout(layout: str, value: str) -> bool:
    if layout == ISO_DATE:
        return _iso_date(value)
    if layout == ISO_TIMESTAMP:
        # PostgreSQL reads an ISO date as a timestamp at midnight.
        return _iso_date(value) or (
            _TIMESTAMP.fullmatch(value) is not None and _valid(datetime.fromisoformat, value)
        )
    return fits(layout, value)


def _iso_date(value: str) -> bool:
    return _DATE.fullmatch(value) is not None and _valid(date.fromisoformat, value)


def _valid(parse, value: str) -> bool:
    try:
        parse(value)
    except ValueError:
        return False
    return True


def looks_decimal_comma(values: Iterable[str]) -> bool:
    """Whether numbers among ``values`` are written with a decimal comma: some value has a
    comma decimal part, and every number-like value fits ``1.234,56``."""
    comma = False
    for value in values:
        if not value or not value.strip()[:1].lstrip("+-").isdigit():
            continue
        if _NUMERIC_COMMA.fullmatch(value) is None:
            return False
        comma = comma or "," in value
    return comma
