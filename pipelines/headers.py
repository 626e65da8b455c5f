"""A file's header against the columns a dataset expects: columns are matched by name.

Names are compared after ``normalise``: case, spaces and punctuation do not count, so the
header ``Local authority district code`` names the column ``local_authority_district_code``
and ``ctyCode`` names ``cty_code``. A column may declare the header text it expects
(``Column.header``) when its name is another.
"""

import re
from dataclasses import dataclass

from pipelines.datasets import Dataset

_NOT_ALPHANUMERIC = re.compile(r"[\W_]+")


class HeaderError(ValueError):
    """The header does not name the dataset's columns; the message says which and why."""


def normalise(name: str) -> str:
    """``name`` folded to lower case with every space, punctuation mark and underscore removed."""
    return _NOT_ALPHANUMERIC.sub("", name).casefold()


@dataclass(frozen=True)
class HeaderMatch:
    """Which dataset column each of the file's columns holds, in the file's order.

    ``targets[i]`` is the dataset column of file column ``i``, or None for a column that is
    not loaded: an ignored extra column (named in ``ignored``) or a trailing column with no
    header (counted in ``unnamed``, which must hold no values).
    """

    targets: tuple[str | None, ...]
    ignored: tuple[str, ...] = ()
    unnamed: int = 0

    @property
    def width(self) -> int:
        return len(self.targets)


def expected_names(dataset: Dataset) -> dict[str, str]:
    """Normalised header text -> column name, for every column of ``dataset``."""
    expected: dict[str, str] = {}
    for column in dataset.columns:
        for text in {column.name, column.header or column.name}:
            key = normalise(text)
            other = expected.setdefault(key, column.name)
            if other != column.name:
                raise ValueError(
                    f"{dataset.schema}: columns {other!r} and {column.name!r} are both "
                    f"named {key!r} once case, spaces and punctuation are left out"
                )
    return expected


def match_header(fields: list[str], dataset: Dataset) -> HeaderMatch:
    """Match the header's ``fields`` to ``dataset``'s columns; ``HeaderError`` when they do not.

    Refused: a header naming none of the columns (a file without a header row), a column
    named twice, a missing column, an unexpected column (unless the dataset ignores extra
    columns), a column with no header before the last named one.
    """
    names = [field.strip() for field in fields]
    while names and not names[-1]:
        names.pop()
    unnamed = len(fields) - len(names)
    expected = expected_names(dataset)
    targets: list[str | None] = []
    ignored: list[str] = []
    seen: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        if not name:
            raise HeaderError(f"column {position} of the header has no name")
        column = expected.get(normalise(name))
        if column is None:
            ignored.append(name)
        elif column in seen:
            raise HeaderError(f"the header names column {column} twice: {seen[column]!r}, {name!r}")
        else:
            seen[column] = name
        targets.append(column)
    if not seen:
        shown = ",".join(fields)
        raise HeaderError(
            f"no header row: line 1 ({_shorten(shown)!r}) names none of the columns "
            f"{', '.join(dataset.column_names)}"
        )
    missing = [name for name in dataset.column_names if name not in seen]
    problems = []
    if missing:
        problems.append(f"missing column{'s' * (len(missing) > 1)} {', '.join(missing)}")
    if ignored and not dataset.file_format.ignore_extra_columns:
        quoted = ", ".join(repr(name) for name in ignored)
        problems.append(f"unexpected column{'s' * (len(ignored) > 1)} {quoted}")
    if problems:
        raise HeaderError(f"header: {'; '.join(problems)}")
    return HeaderMatch(tuple(targets) + (None,) * unnamed, tuple(ignored), unnamed)


def header_by_position(fields: list[str], dataset: Dataset) -> HeaderMatch:
    """The match of a header whose columns are the dataset's in order (whatever their text),
    followed by trailing columns with no header; ``HeaderError`` when the counts differ."""
    names = [field.strip() for field in fields]
    while names and not names[-1]:
        names.pop()
    if len(names) != len(dataset.columns):
        raise HeaderError(
            f"the header has {len(names)} named columns where {len(dataset.columns)} are expected"
        )
    unnamed = len(fields) - len(names)
    return HeaderMatch(dataset.column_names + (None,) * unnamed, (), unnamed)


def positional_match(dataset: Dataset) -> HeaderMatch:
    """The match of a file without a header: the dataset's columns in its order."""
    return HeaderMatch(dataset.column_names)


def _shorten(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
