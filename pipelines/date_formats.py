"""Declared date formats: a ``strptime`` format turned into what PostgreSQL checks and parses.

A column whose values are not ISO 8601 declares its format (``%d/%m/%Y``). The loader copies
such a column as text, checks every value against ``pattern`` while copying (so a value that
does not fit is refused naming its line), and converts it with ``to_date``/``to_timestamp``
and ``template``. Nothing depends on the server's or the session's DateStyle.
"""

import re
from dataclasses import dataclass

# strptime directive -> (to_date template, regular expression of the text it accepts).
DIRECTIVES = {
    "d": ("DD", "[0-9]{1,2}"),
    "m": ("MM", "[0-9]{1,2}"),
    "Y": ("YYYY", "[0-9]{4}"),
    "y": ("YY", "[0-9]{2}"),
    "b": ("Mon", "[A-Za-z]{3}"),
    "B": ("FMMonth", "[A-Za-z]{3,9}"),
    "H": ("HH24", "[0-9]{1,2}"),
    "M": ("MI", "[0-9]{1,2}"),
    "S": ("SS", "[0-9]{1,2}"),
    "j": ("DDD", "[0-9]{1,3}"),
}
TIME_DIRECTIVES = frozenset("HMS")


@dataclass(frozen=True)
class DateFormat:
    """A declared format: ``text`` as declared, its ``template`` for PostgreSQL's to_date /
    to_timestamp and the ``pattern`` (a POSIX regular expression) every value must match."""

    text: str
    template: str
    pattern: str
    has_time: bool


def parse_date_format(text: str) -> DateFormat:
    """The ``DateFormat`` of a ``strptime`` format; ``ValueError`` names an unsupported part."""
    template, pattern, has_time = [], ["^"], False
    parts = re.split(r"(%.)", text)
    for part in parts:
        if part.startswith("%") and len(part) == 2:
            directive = part[1]
            if directive == "%":
                template.append("%")
                pattern.append("%")
                continue
            if directive not in DIRECTIVES:
                known = " ".join(f"%{name}" for name in DIRECTIVES)
                raise ValueError(f"date format {text!r}: %{directive} is not one of {known}")
            template.append(DIRECTIVES[directive][0])
            pattern.append(DIRECTIVES[directive][1])
            has_time = has_time or directive in TIME_DIRECTIVES
        elif part:
            if "%" in part or '"' in part or "\\" in part:
                raise ValueError(f"date format {text!r}: {part!r} is not a directive")
            # Literal text: quoted for to_date, escaped for the regular expression.
            template.append(f'"{part}"')
            pattern.append(re.escape(part))
    if not any(part.startswith("%") for part in parts):
        raise ValueError(f"date format {text!r} has no directive")
    pattern.append("$")
    return DateFormat(text, "".join(template), "".join(pattern), has_time)


def check_date_format(column: str, column_type: str, text: str) -> None:
    """``ValueError`` unless ``text`` is a format a column of ``column_type`` can declare."""
    if column_type not in ("date", "timestamp"):
        raise ValueError(f"column {column!r}: only date and timestamp columns take a date format")
    if parse_date_format(text).has_time and column_type == "date":
        raise ValueError(
            f"column {column!r}: date format {text!r} has a time; the column is a date"
        )
