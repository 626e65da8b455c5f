"""An upload's problems in the words of the person who uploaded it.

The engine's messages name the stored file (its key) and COPY's line. The person knows the
file by the name they uploaded (for a workbook, that name and the sheet) and its rows as the
verify page counts them: row 1 is the first row under the header, every row counted, blank
ones too. COPY's line counts the file's lines from the header's, every line break included
(one inside a quoted value too), up to the line on which the failing row ends; so the row
is found by reading the stored file again, through the reader the verify page uses, up to
that line (``find_row``). That reading also gives the row's values exactly (COPY shows at
most 100 bytes of them), and the row holding bytes that cannot be decoded.

``failure_message`` words a failed load: the file, the row (and its line, or for a workbook
its row in the sheet), the column and the value, why in plain words, and what to do. The
verify page's refusals use the same words (``Place``, ``wrong_count``,
``value_without_header``, ``undecodable``).
"""

import logging
import posixpath
import re
from dataclasses import dataclass

from pipelines import storage
from pipelines.copying import ENCODING_ERRORS, WHOLE_NUMBER, CopyProblem
from pipelines.datasets import FileFormat
from pipelines.date_formats import describe
from pipelines.encodings import codec_name
from pipelines.loading import LoadError
from pipelines.reading import NoDataRows, ReadError, TextRows, UndecodableBytes, read_rows
from uploads.models import PipelineDataFile

logger = logging.getLogger(__name__)

BAD_FORMAT = "22P04"  # COPY: extra or missing values, a quoted value never closed
OUT_OF_RANGE = "22003"
CHECK_VIOLATION = "23514"
UNCLOSED_QUOTE = "unterminated CSV quoted field"
SHOWN_VALUE_CHARS = 100

# Why a value does not fit its column's type; with a decimal comma where numbers differ.
NOT_A = {
    "integer": "is not a whole number",
    "numeric": "is not a number written with a decimal point, such as 1234.56",
    "boolean": "is not true or false",
    "date": "is not a valid date: dates are written year first, such as 2024-01-31",
    "timestamp": (
        "is not a valid date and time: they are written year first, such as 2024-01-31 14:30:00"
    ),
}
NOT_A_WITH_DECIMAL_COMMA = {
    "integer": "is not a whole number, such as 1234 or 1.234",
    "numeric": "is not a number written with a decimal comma, such as 1.234,56",
}
TOO_LARGE = {
    "integer": (
        "is too large for the type integer (whole numbers from -2,147,483,648 to 2,147,483,647)"
    ),
    "numeric": "is too large for the type numeric",
}
CHOOSE_TEXT = "Fix the value, or choose the type text for this column, then upload the file again."
CHOOSE_DATE_FORMAT = (
    "Fix the value, or upload the file again and choose the date format its dates are "
    "written in (or the type text) for this column."
)
CHOOSE_NUMERIC = (
    "Fix the value, or choose the type numeric (or text) for this column, then upload the "
    "file again."
)
ASK_FOR_HELP = "Upload the file again; if it fails the same way, ask the service's support team."


@dataclass(frozen=True)
class Place:
    """The uploaded file as its uploader knows it: its name, and a workbook's sheet."""

    name: str
    sheet: str = ""

    @classmethod
    def of(cls, data_file: PipelineDataFile) -> "Place":
        name = data_file.original_name or posixpath.basename(data_file.data_key)
        return cls(name, data_file.sheet if data_file.is_workbook else "")

    @property
    def file(self) -> str:
        """``budget.csv``; ``budget.xlsx, sheet "Data"``."""
        return f'{self.name}, sheet "{self.sheet}"' if self.sheet else self.name

    def row(self, row: int, line: int | None = None) -> str:
        """``budget.csv: row 3 (line 5)``; a workbook's ``budget.xlsx, sheet "Data": row 3
        (row 4 of the sheet)`` (its header is the sheet's first row)."""
        if self.sheet:
            return f"{self.file}: row {row} (row {row + 1} of the sheet)"
        return f"{self.file}: row {row}" + (f" (line {line})" if line else "")


def wrong_count(place: Place, row: int, line: int | None, values: int, columns: int) -> str:
    return (
        f"{place.row(row, line)} has {_count(values, 'value')} where the header has "
        f"{_count(columns, 'column')}"
    )


def value_without_header(
    place: Place, row: int, line: int | None, value: str, position: int
) -> str:
    return (
        f'{place.row(row, line)} has the value "{_shown(value)}" in column {position + 1}, '
        "which has no header"
    )


def undecodable(place: Place, error: UndecodableBytes) -> str:
    """Where the bytes are (the row when known, else the line) and the encoding tried."""
    if error.row is not None:
        where = place.row(error.row, error.line)
    else:
        where = f"{place.file}: line {error.line}"
    return f"{where} cannot be read as {encoding_name(error.encoding)} ({error.reason})"


def encoding_name(encoding: str) -> str:
    """The name the verify page gives ``encoding`` (a Python codec name), else the codec's."""
    from uploads.forms import ENCODING_CHOICES  # the forms import this module's importers

    names = {codec_name(value): label for value, label in ENCODING_CHOICES}
    codec = codec_name(encoding)
    # A byte-order mark names UTF-16's byte order; the page names only UTF-16.
    return names.get(codec) or names.get(re.sub(r"-(le|be)$", "", codec), encoding)


@dataclass(frozen=True)
class FoundRow:
    """A data row of a stored upload: its ``number`` (1: the first under the header), the
    ``line`` it ends on, its ``values`` (None when its bytes cannot be decoded: ``error``
    says which), and the file's ``header`` fields."""

    number: int
    line: int
    values: list[str] | None
    header: list[str]
    error: UndecodableBytes | None = None


def find_row(
    data_file: PipelineDataFile, file_format: FileFormat, line: int | None
) -> FoundRow | None:
    """Read the stored upload again, as ``file_format`` says, up to the data row that ends on
    ``line`` (COPY's line number), or with ``line`` None up to the row whose bytes cannot be
    decoded. A row whose quoted value is never closed runs to the end of the file, where
    COPY counts a line more: the last row is the one for a ``line`` past the end. None when
    the file has no such row (or cannot be read at all)."""
    try:
        with storage.open_file(data_file.data_key) as stream:
            return _find_row(read_rows(stream, file_format, Place.of(data_file).file), line)
    except (ReadError, OSError):
        return None
    except Exception:  # a storage error (S3's own) must not leave the upload unmarked
        logger.exception("upload %s: could not read the file again to find its row", data_file.pk)
        return None


def _find_row(text_rows: TextRows, line: int | None) -> FoundRow | None:
    found = None
    try:
        for number, (end, values) in enumerate(text_rows.rows, start=1):
            found = FoundRow(number, end, values, text_rows.header)
            if line is not None and end >= line:
                return found
    except UndecodableBytes as error:
        number = error.row or (found.number + 1 if found else 1)
        return FoundRow(number, error.line, None, text_rows.header, error)
    return found if line is not None else None


def failure_message(
    data_file: PipelineDataFile, file_format: FileFormat | None, error: Exception
) -> str:
    """What went wrong when ``data_file`` (read as ``file_format``; None: it could not be
    made) was loaded, and what to do, for the person who uploaded it. ``error`` is what the
    load raised."""
    place = Place.of(data_file)
    cause = error.__cause__ if isinstance(error, LoadError) else error
    if isinstance(cause, NoDataRows):
        if cause.empty:
            return f"{place.file} is empty. Upload a file with a header row and data rows."
        return (
            f"{place.file} has no data rows: there is nothing under the header, or only rows "
            "with no values. Add the data under the header, then upload the file again."
        )
    if isinstance(cause, UndecodableBytes):
        found = find_row(data_file, file_format, None) if file_format else None
        if found is not None and found.error is not None:
            cause = found.error
        return f"{undecodable(place, cause)}. {_choose_encoding()}"
    problem = error.problem if isinstance(error, LoadError) else None
    if file_format is not None and problem is not None and problem.line is not None:
        found = find_row(data_file, file_format, problem.line)
        if found is not None:
            return _row_message(data_file, file_format, place, problem, found)
    return f"{(str(error) or type(error).__name__).rstrip('.')}. {ASK_FOR_HELP}"


def _row_message(
    data_file: PipelineDataFile,
    file_format: FileFormat,
    place: Place,
    problem: CopyProblem,
    found: FoundRow,
) -> str:
    """The message for a COPY error on the row ``found``."""
    if found.values is None or problem.sqlstate in ENCODING_ERRORS:
        if found.error is not None:
            return f"{undecodable(place, found.error)}. {_choose_encoding()}"
        encoding = encoding_name(data_file.encoding)
        return f"{place.row(found.number, found.line)} cannot be read as {encoding}. " + (
            _choose_encoding()
        )
    where = place.row(found.number, found.line)
    values = found.values
    if problem.position is not None:
        value = values[problem.position] if problem.position < len(values) else ""
        return (
            f"{value_without_header(place, found.number, found.line, value, problem.position)}. "
            "Give the column a header, or delete the value, then upload the file again."
        )
    names = data_file.column_names
    if problem.column in names:
        position = names.index(problem.column)
        value = values[position] if position < len(values) else (problem.value or "")
        return _value_message(data_file, file_format, where, position, value, problem)
    if problem.sqlstate == BAD_FORMAT and len(values) != len(found.header):
        return (
            f"{wrong_count(place, found.number, found.line, len(values), len(found.header))}. "
            "Give every row one value per column (a value that holds the delimiter goes in "
            "quotes), then upload the file again."
        )
    if problem.sqlstate == BAD_FORMAT and problem.reason.startswith(UNCLOSED_QUOTE):
        return (
            f"{where}: a quoted value has no closing quote ({file_format.quote}), so the rest "
            "of the file was read as part of it. Close the quote, then upload the file again."
        )
    return f"{where}: {problem.reason}. {ASK_FOR_HELP}"


def _value_message(
    data_file: PipelineDataFile,
    file_format: FileFormat,
    where: str,
    position: int,
    value: str,
    problem: CopyProblem,
) -> str:
    """A value that does not fit its column's type: the column, the value, why, what to do."""
    name, kind = data_file.column_types[position]
    headers = data_file.headers
    header = headers[position] if position < len(headers) else name
    column = f"column {name}" if header == name else f'column "{header}" (loaded as {name})'
    out_of_range = problem.sqlstate == OUT_OF_RANGE or (
        problem.sqlstate == CHECK_VIOLATION
        and kind == "integer"
        and re.match(WHOLE_NUMBER, value) is not None
    )
    date_format = data_file.date_format_of(name)
    if out_of_range and kind in TOO_LARGE:
        why, todo = TOO_LARGE[kind], CHOOSE_NUMERIC if kind == "integer" else CHOOSE_TEXT
    elif file_format.decimal_comma and kind in NOT_A_WITH_DECIMAL_COMMA:
        why, todo = NOT_A_WITH_DECIMAL_COMMA[kind], CHOOSE_TEXT
    elif date_format:
        why, todo = f"does not fit the date format {describe(date_format)}", CHOOSE_DATE_FORMAT
    elif kind in ("date", "timestamp"):
        why, todo = NOT_A[kind], CHOOSE_DATE_FORMAT
    else:
        why, todo = NOT_A.get(kind, problem.reason), CHOOSE_TEXT
    return f'{where}, {column}: the value "{_shown(value)}" {why}. {todo}'


def _shown(value: str) -> str:
    return value if len(value) <= SHOWN_VALUE_CHARS else value[:SHOWN_VALUE_CHARS] + "…"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _choose_encoding() -> str:
    return "Save the file as UTF-8, or upload it again and choose its encoding on the check page."
