"""The column type that fits every value seen: integer, numeric, boolean, date, timestamp or
text (``pipelines.column_types`` names). Used on an upload's verify page, over its first rows.

A value is checked the way the loader will load it: PostgreSQL's ``integer`` (4 bytes, else
``numeric``), ISO 8601 dates and timestamps, ``true``/``false``/``yes``/``no``/``t``/``f``/
``y``/``n`` booleans, and numbers with a decimal comma (``1.234,56``) when the file uses one.
Empty values, and the null spellings given, fit every type; a column with no value is text,
and so is one with a code written with leading zeros (``007``), which a number would lose.
"""

import re
from collections.abc import Iterable
from datetime import date, datetime

from pipelines.copying import DECIMAL_COMMA, WHOLE_NUMBER

# In the order a column's type is chosen: the first that fits every value.
PREFERENCE = ("boolean", "integer", "numeric", "date", "timestamp", "text")
INTEGER_MAX = 2**31 - 1
BOOLEANS = frozenset({"true", "false", "t", "f", "yes", "no", "y", "n"})

_INTEGER = re.compile(r"\s*[-+]?[0-9]+\s*")
_NUMERIC = re.compile(r"\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*")
_WHOLE_COMMA = re.compile(WHOLE_NUMBER.strip("^$"))
_NUMERIC_COMMA = re.compile(DECIMAL_COMMA.strip("^$"))
# A code such as ``007`` or ``01234`` (its zeros would be lost as a number).
_LEADING_ZERO = re.compile(r"\s*[-+]?0[0-9]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?")


class TypeInference:
    """Follows the values of ``width`` columns row by row; ``types`` gives each column's type.

    ``decimal_comma``: numbers are written ``1.234,56``. ``null_values``: spellings of "no
    value" besides the empty string.
    """

    def __init__(self, width: int, decimal_comma: bool = False, null_values: Iterable[str] = ()):
        self.decimal_comma = decimal_comma
        self.empty = frozenset({"", *null_values})
        self.candidates = [list(PREFERENCE[:-1]) for _ in range(width)]
        self.seen = [False] * width

    def add(self, row: list[str]) -> None:
        """Take one row's values (as many as there are columns)."""
        for index, value in enumerate(row):
            kinds = self.candidates[index]
            if not kinds or value in self.empty:
                continue
            self.seen[index] = True
            if len(kinds) == 1 and self._fits(kinds[0], value):
                continue
            kinds[:] = [kind for kind in kinds if self._fits(kind, value)]

    @property
    def types(self) -> list[str]:
        return [
            kinds[0] if kinds and seen else "text"
            for kinds, seen in zip(self.candidates, self.seen, strict=True)
        ]

    def _fits(self, kind: str, value: str) -> bool:
        if kind == "integer":
            return self._integer(value)
        if kind == "numeric":
            pattern = _NUMERIC_COMMA if self.decimal_comma else _NUMERIC
            return pattern.fullmatch(value) is not None and not _LEADING_ZERO.match(value)
        if kind == "boolean":
            return value.strip().lower() in BOOLEANS
        if kind == "date":
            return _DATE.fullmatch(value) is not None and _valid(date.fromisoformat, value)
        if kind == "timestamp":
            return _TIMESTAMP.fullmatch(value) is not None and _valid(datetime.fromisoformat, value)
        return True

    def _integer(self, value: str) -> bool:
        pattern = _WHOLE_COMMA if self.decimal_comma else _INTEGER
        if pattern.fullmatch(value) is None or _LEADING_ZERO.match(value):
            return False
        digits = value.strip().lstrip("+-").replace(".", "")
        return len(digits) < 10 or int(digits) <= INTEGER_MAX


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
