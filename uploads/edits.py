"""The verify page's column choices across a re-read: what the person changed is kept.

The page carries what inspection detected for each column (``Choice``: header, name, type,
date format; as JSON in a hidden field) beside the fields the person edits. When the file is
read again another way (delimiter, quote, encoding, decimal separator, sheet), a column whose
header is still there keeps each choice the person changed, and takes what the new read
detected for the rest; a column that is new takes what was detected. Columns are matched by
header text; a header that repeats matches in order (its first column the first, ...).
"""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import orjson

from uploads.inspection import InspectedColumn


@dataclass(frozen=True)
class Choice:
    """One column's choices: the name it loads as, its type and its date format ("": none
    declared, ISO 8601 or not a date), under the file's ``header``."""

    header: str
    name: str
    type: str
    date_format: str = ""


@dataclass
class Carried:
    """The choices after a re-read, one per column of the new read; ``kept`` counts the
    columns that kept an edit, ``lost`` the edited columns whose header is gone;
    ``unchecked``: the person asked to load the file, but this read's columns are not the
    ones they saw."""

    choices: list[Choice] = field(default_factory=list)
    kept: int = 0
    lost: int = 0
    unchecked: bool = False


def detected(columns: Sequence[InspectedColumn]) -> list[Choice]:
    """What inspection detected for ``columns``."""
    return [
        Choice(column.header, column.name, column.type, column.date_format or "")
        for column in columns
    ]


def to_json(choices: Sequence[Choice]) -> str:
    return orjson.dumps(
        [[choice.header, choice.name, choice.type, choice.date_format] for choice in choices]
    ).decode()


def from_json(text: str) -> list[Choice]:
    """The choices ``to_json`` wrote; none for text that is not such a list (a page from
    before the field existed, or one altered by hand)."""
    try:
        rows = orjson.loads(text or "[]")
    except orjson.JSONDecodeError:
        return []
    if not isinstance(rows, list) or not all(
        isinstance(row, list) and len(row) == 4 and all(isinstance(value, str) for value in row)
        for row in rows
    ):
        return []
    return [Choice(*row) for row in rows]


def carry_edits(
    previous: Sequence[Choice], posted: Sequence[Choice], now: Sequence[Choice]
) -> Carried:
    """The choices to show after a re-read: ``now`` (what the new read detected), with the
    person's edits (where ``posted``, the page's values, differs from ``previous``, what the
    page had detected) carried to the column of the same header."""
    edits = [_edits(before, after) for before, after in zip(previous, posted, strict=True)]
    by_header: dict[str, list[int]] = defaultdict(list)
    for index, choice in enumerate(previous):
        by_header[choice.header].append(index)
    carried = Carried()
    matched: set[int] = set()
    occurrences: dict[str, int] = defaultdict(int)
    for choice in now:
        candidates = by_header.get(choice.header, [])
        occurrence = occurrences[choice.header]
        occurrences[choice.header] += 1
        if occurrence >= len(candidates):
            carried.choices.append(choice)
            continue
        index = candidates[occurrence]
        matched.add(index)
        carried.choices.append(replace(choice, **edits[index]))
        carried.kept += bool(edits[index])
    carried.lost = sum(1 for index, changed in enumerate(edits) if changed and index not in matched)
    return carried


def _edits(before: Choice, after: Choice) -> dict[str, str]:
    """The fields the person changed, with their new values."""
    return {
        name: getattr(after, name)
        for name in ("name", "type", "date_format")
        if getattr(after, name) != getattr(before, name)
    }
