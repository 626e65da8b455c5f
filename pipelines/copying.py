"""COPY of one ``ReadFile`` into a table, and what its errors mean.

A file whose columns all belong to the dataset is copied straight into the table, its
columns named in the file's order (a moved column needs no rewriting). Otherwise it goes
through a stage table (``Stage``): columns a dataset ignores or that have no header land in
spare text columns; a column with a declared date format, or numbers written with a decimal
comma, lands as text that a CHECK constraint tests as it is copied (so a bad value, or a
whole number out of its type's range, is refused naming its line) and ``Stage.expressions``
convert. ``copy_problem`` reads PostgreSQL's errors into their parts (``CopyProblem``),
``describe_error`` into a message.
"""

import csv
import queue
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from pipelines.datasets import Column, Dataset
from pipelines.date_formats import parse_date_format
from pipelines.reading import ReadError, ReadFile
from pipelines.row_ids import RowIds

NUMERIC_TYPES = frozenset({"numeric", "double precision", "integer", "bigint"})
# Numbers written 1.234,56 or 87,5 (a point groups thousands, a comma starts the decimals);
# whole numbers without the decimals.
DECIMAL_COMMA = r"^\s*[-+]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?\s*$"
WHOLE_NUMBER = r"^\s*[-+]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)\s*$"
WHOLE_TYPES = frozenset({"integer", "bigint"})
WHOLE_RANGES = {"integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
CHECK_PREFIX = "dss_check_"
UNNAMED_PREFIX = "dss_unnamed_"
EXTRA_PREFIX = "dss_extra_"
ENCODING_ERRORS = frozenset({"22021", "22P05"})  # invalid byte sequence, no equivalent
DATE_ERRORS = frozenset({"22007", "22008"})  # invalid datetime format, field out of range
DATE_HINT = "dates are read year first (ISO 8601); a column with other dates declares its format"
_MAX_QUOTED = 200
# Pieces of at most 128 KiB the COPY writer thread holds (see _BoundedQueuedWriter).
QUEUE_PIECES = 32


def converted(dataset: Dataset, column: Column) -> bool:
    """True when the column is copied as text and converted: a declared date format, or a
    number with a decimal comma."""
    return column.date_format is not None or (
        dataset.file_format.decimal_comma and column.type in NUMERIC_TYPES
    )


def copies_directly(dataset: Dataset, read_file: ReadFile) -> bool:
    """True when ``read_file`` can be copied straight into the dataset's L0."""
    return None not in read_file.match.targets and not any(
        converted(dataset, column) for column in dataset.columns
    )


@dataclass
class Stage:
    """A load's stage table: the data columns (converted ones as text) and spare columns."""

    dataset: Dataset
    table: sql.Identifier
    spare: int = 0
    checks: list[str] = field(default_factory=list)

    def column_definitions(self) -> list[sql.Composable]:
        definitions = []
        for column in self.dataset.columns:
            kind = "text" if converted(self.dataset, column) else column.type
            definitions.append(sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(kind)))
        return definitions

    def add_checks(self, cursor: psycopg.Cursor) -> None:
        """The CHECK constraints that test converted columns' text as it is copied."""
        for index, column in enumerate(self.dataset.columns):
            if not converted(self.dataset, column):
                continue
            name = sql.Identifier(column.name)
            if column.date_format is not None:
                date_format = parse_date_format(column.date_format)
                test = sql.SQL("{name} ~ {pattern} AND {parse}({name}, {template}) IS NOT NULL")
                parse = "to_timestamp" if column.type == "timestamp" else "to_date"
                test = test.format(
                    name=name,
                    pattern=sql.Literal(date_format.pattern),
                    parse=sql.SQL(parse),
                    template=sql.Literal(date_format.template),
                )
            elif column.type in WHOLE_TYPES:
                # In range too: out of range, the conversion after COPY would fail naming
                # no line. CASE: the number is read only once it is known to be one.
                low, high = WHOLE_RANGES[column.type]
                test = sql.SQL(
                    "CASE WHEN {name} ~ {pattern} THEN replace({name}, '.', '')::numeric "
                    "BETWEEN {low} AND {high} ELSE false END"
                ).format(
                    name=name,
                    pattern=sql.Literal(WHOLE_NUMBER),
                    low=sql.Literal(low),
                    high=sql.Literal(high),
                )
            else:
                test = sql.SQL("{} ~ {}").format(name, sql.Literal(DECIMAL_COMMA))
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NULL OR ({}))").format(
                    self.table, sql.Identifier(f"{CHECK_PREFIX}{index}"), name, test
                )
            )

    def expressions(self, qualifier: str | None = None) -> list[sql.Composable]:
        """Each data column's value from the stage, converted where needed."""
        out = []
        for column in self.dataset.columns:
            ref = sql.Identifier(*([qualifier] if qualifier else []), column.name)
            if column.date_format is not None:
                template = sql.Literal(parse_date_format(column.date_format).template)
                if column.type == "timestamp":
                    # to_timestamp answers in the session's time zone, pinned to UTC.
                    expression = sql.SQL("to_timestamp({}, {})::timestamp").format(ref, template)
                else:
                    expression = sql.SQL("to_date({}, {})").format(ref, template)
            elif converted(self.dataset, column):
                expression = sql.SQL("replace(replace({}, '.', ''), ',', '.')::{}").format(
                    ref, sql.SQL(column.type)
                )
            else:
                expression = ref
            out.append(expression)
        return out

    def spare_columns(self, cursor: psycopg.Cursor, read_file: ReadFile, number: int) -> list[str]:
        """Spare text columns for the file's columns that are not loaded; the ones with no
        header get a CHECK that they hold no value. Returns the COPY's column names."""
        names = []
        unnamed_from = read_file.match.width - read_file.match.unnamed
        for position, target in enumerate(read_file.match.targets):
            if target is not None:
                names.append(target)
                continue
            name = f"{EXTRA_PREFIX}{number}_{position}"
            cursor.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(
                    self.table, sql.Identifier(name)
                )
            )
            if position >= unnamed_from:
                cursor.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK ({} IS NULL)").format(
                        self.table,
                        sql.Identifier(f"{UNNAMED_PREFIX}{number}_{position}"),
                        sql.Identifier(name),
                    )
                )
            names.append(name)
        return names


def copy_file(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    table: sql.Composable,
    read_file: ReadFile,
    columns: list[str],
    *,
    first_id: int | None = None,
    freeze: bool = False,
) -> int:
    """COPY ``read_file`` into ``columns`` of ``table`` (in the file's order); the row count.

    ``first_id``: each row is given its ``id`` with its values, ``first_id``, ``first_id + 1``,
    ... in file order (``pipelines.row_ids``); else ``table`` draws them itself.

    ``freeze``: ``table`` was made in this transaction, so its rows are written frozen
    (COPY FREEZE): the scan that builds its keys then sets no hint bits, rewriting no page.
    Raises ``ReadError`` (nothing copied) should COPY read another number of rows than were
    given ids.
    """
    if first_id is None:
        statement = copy_statement(dataset, table, read_file, columns, freeze=freeze)
        return send_chunks(cursor, statement, read_file.chunks)
    ids = row_ids_of(dataset, read_file, first_id)
    statement = copy_statement(dataset, table, read_file, ["id", *columns], freeze=freeze)
    rows = send_chunks(cursor, statement, ids.apply(read_file.chunks))
    check_row_count(read_file, rows, ids)
    return rows


def row_ids_of(dataset: Dataset, read_file: ReadFile, first_id: int) -> RowIds:
    """The ``RowIds`` that number ``read_file``'s rows from ``first_id`` on."""
    file_format = dataset.file_format
    eol = read_file.line_breaks.eol
    return RowIds(
        first_id,
        eol,
        file_format.delimiter,
        file_format.quote,
        header=read_file.has_header,
        label=read_file.label,
    )


def check_row_count(read_file: ReadFile, rows: int, ids: RowIds) -> None:
    """``ReadError`` unless COPY read as many rows as ``ids`` numbered (else ids and rows
    would not match: nothing of such a load may stay)."""
    if rows != ids.count:
        raise ReadError(
            f"{read_file.label}: COPY read {rows} rows where {ids.count} rows were counted; "
            "nothing was loaded"
        )


def copy_statement(
    dataset: Dataset,
    table: sql.Composable,
    read_file: ReadFile,
    columns: list[str],
    *,
    header: bool | None = None,
    freeze: bool = False,
) -> sql.Composable:
    """The COPY statement that reads ``read_file``'s chunks into ``columns`` of ``table``
    (``header``: whether the chunks start with the header line; the file's, by default)."""
    file_format = dataset.file_format
    header = read_file.has_header if header is None else header
    options = [
        sql.SQL("FORMAT csv"),
        sql.SQL("HEADER {}").format(sql.SQL("true" if header else "false")),
        sql.SQL("DELIMITER {}").format(sql.Literal(file_format.delimiter)),
        sql.SQL("QUOTE {}").format(sql.Literal(file_format.quote)),
        sql.SQL("ENCODING {}").format(sql.Literal(read_file.copy_encoding)),
    ]
    if freeze:
        options.append(sql.SQL("FREEZE"))
    forced = [name for name in dataset.force_null_columns if name in columns]
    if forced:
        options.append(
            sql.SQL("FORCE_NULL ({})").format(sql.SQL(", ").join(map(sql.Identifier, forced)))
        )
    return sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(options),
    )


def send_chunks(cursor: psycopg.Cursor, statement: sql.Composable, chunks: Iterable[bytes]) -> int:
    """Run the COPY ``statement`` with ``chunks`` as its data; the rows it copied."""
    # A writer thread sends each chunk while this thread reads and rewrites the next one:
    # the reading layer's work overlaps PostgreSQL's parsing instead of adding to it.
    with cursor.copy(statement, writer=_BoundedQueuedWriter(cursor)) as copy:
        for chunk in chunks:
            copy.write(chunk)
    return cursor.rowcount


class _BoundedQueuedWriter(QueuedLibpqWriter):
    """psycopg's queued writer with a short queue.

    psycopg queues up to 1,024 pieces of 128 KiB: reading outruns PostgreSQL's parsing, so a
    large file filled the queue and a load's memory grew by 128 MB. ``QUEUE_PIECES`` pieces
    keep the reader far enough ahead to overlap the two and the memory flat.
    """

    def __init__(self, cursor: psycopg.Cursor) -> None:
        super().__init__(cursor)
        self._queue = queue.Queue(maxsize=QUEUE_PIECES)


_COPY_CONTEXT = re.compile(
    r"^COPY .+?, line (?P<line>\d+)(?:, column (?P<column>.+?): (?P<value>.*)|: (?P<text>.*))?$",
    re.DOTALL,
)
_QUOTED_VALUE = re.compile(r'"(?P<value>.*)"\s*$', re.DOTALL)


@dataclass(frozen=True)
class CopyProblem:
    """Why a load failed, in parts: what ``describe_error`` says, for callers that word it
    their own way.

    ``label`` names the file; ``reason`` is PostgreSQL's message (with hints) or the stage
    check's; ``sqlstate`` PostgreSQL's code. For an error while COPY read the file, ``line``
    is COPY's line number: lines counted from 1, the header's included, every line break
    counted (quoted ones too), to the line on which the failing row ends; else None.
    ``column`` names the dataset column that refused a value, or ``position`` (0-based) the
    file's column with no header that holds one; ``value`` is that value as read (None: empty,
    NULL). ``text``: COPY's text of the line (at most 100 bytes) when it names no column.
    """

    label: str
    reason: str
    sqlstate: str | None = None
    line: int | None = None
    column: str | None = None
    position: int | None = None
    value: str | None = None
    text: str | None = None

    @property
    def message(self) -> str:
        """A message naming the file, and for COPY errors the line, column and value."""
        if self.line is None:
            return f"{self.label}: {self.reason}"
        where = f"line {self.line}"
        if self.column is not None or self.position is not None:
            column = self.column if self.column is not None else f"{self.position + 1} (no header)"
            value = "empty (NULL)" if self.value is None else _truncate(f'"{self.value}"')
            return f"{self.label}: {where}, column {column}, value {value}: {self.reason}"
        if self.text:
            where += f" ({_truncate(self.text)})"
        return f"{self.label}: {where}: {self.reason}"


def describe_error(
    error: psycopg.Error,
    label: str,
    dataset: Dataset | None = None,
    read_file: ReadFile | None = None,
) -> str:
    """A message naming the file, and for COPY errors the line, column and value."""
    return copy_problem(error, label, dataset, read_file).message


def copy_problem(
    error: psycopg.Error,
    label: str,
    dataset: Dataset | None = None,
    read_file: ReadFile | None = None,
    *,
    numbered: bool = False,
    line_in_file: Callable[[int], int] | None = None,
) -> CopyProblem:
    """What ``error`` says went wrong with the file ``label``, in parts (``CopyProblem``).

    ``numbered``: the COPY was given each row's id before its values (``copy_file``'s
    ``first_id``); the text of a line is given without it, as the file has it.
    ``line_in_file``: the file's line for the line COPY names, when COPY was given a part of
    the file (``pipelines.copy_streams``).
    """
    diag = error.diag
    primary = diag.message_primary or str(error).strip()
    if diag.sqlstate in ENCODING_ERRORS and read_file is not None:
        primary += f"; encodings tried: {', '.join(read_file.tried)}"
        guess = read_file.guessed_encoding
        if guess is not None:
            primary += f"; it looks like {guess}"
    match = _copy_context(error)
    if match is None:
        return CopyProblem(label, primary, diag.sqlstate)
    line = int(match["line"])
    if line_in_file is not None:
        line = line_in_file(line)
    if match["column"]:
        value = match["value"]
        quoted = _QUOTED_VALUE.match(value)
        if value == "null input":
            value = None
        elif quoted:
            value = quoted["value"]
        if diag.sqlstate in DATE_ERRORS:
            primary += f" ({DATE_HINT})"
        return CopyProblem(label, primary, diag.sqlstate, line, match["column"], value=value)
    text = match["text"]
    if text and numbered and dataset is not None:
        text = _without_id(text, dataset.file_format.delimiter)
    if text and dataset is not None and read_file is not None:
        found = _column_and_value(error, text, dataset, read_file)
        if found is not None:
            column, position, value, reason = found
            return CopyProblem(label, reason, diag.sqlstate, line, column, position, value)
    return CopyProblem(label, primary, diag.sqlstate, line, text=text or None)


def copy_error_line(error: psycopg.Error) -> int | None:
    """The line a COPY error names (COPY's count, see ``CopyProblem``); None if none."""
    match = _copy_context(error)
    return int(match["line"]) if match else None


def _copy_context(error: psycopg.Error) -> re.Match | None:
    """COPY's context of ``error`` in parts (``_COPY_CONTEXT``); None for another error."""
    context = (error.diag.context or "").split("\nPL/pgSQL")[0].strip()
    return _COPY_CONTEXT.match(context) if context else None


def _without_id(text: str, delimiter: str) -> str:
    """COPY's text of a line (quoted, perhaps) without the id written before its values."""
    return re.sub(f'^("?)[0-9]+{re.escape(delimiter)}', r"\1", text, count=1)


def _column_and_value(
    error: psycopg.Error, text: str, dataset: Dataset, read_file: ReadFile
) -> tuple[str | None, int | None, str | None, str] | None:
    """For an error raised by a stage's CHECK: the column (or the position of a column with
    no header), its value on the line (None: empty), and why."""
    quoted = _QUOTED_VALUE.match(text)
    line = quoted["value"].replace('""', '"') if quoted else text
    file_format = dataset.file_format
    fields = next(csv.reader([line], delimiter=file_format.delimiter, quotechar=file_format.quote))
    targets = read_file.match.targets
    constraint = error.diag.constraint_name or ""

    def value_of(position: int) -> str | None:
        return fields[position] if position < len(fields) else None

    if constraint.startswith(UNNAMED_PREFIX):
        position = int(constraint.rsplit("_", 1)[1])
        return None, position, value_of(position), "a column with no header holds a value"
    columns = list(dataset.columns)
    if constraint.startswith(CHECK_PREFIX):
        candidates = [columns[int(constraint[len(CHECK_PREFIX) :])]]
    else:  # raised by to_date inside a CHECK: the column holding the value it names
        candidates = [column for column in columns if converted(dataset, column)]
        if not candidates:
            return None
        named = re.search(r'"(.*)"', error.diag.message_primary or "")
        if named:
            holding = [
                column
                for column in candidates
                if column.name in targets and value_of(targets.index(column.name)) == named[1]
            ]
            candidates = holding or candidates
    column = candidates[0]
    if column.name not in targets:
        return None
    value = value_of(targets.index(column.name))
    if column.date_format is not None:
        reason = f"does not fit the date format {column.date_format}"
    elif column.type in WHOLE_TYPES:
        if value is not None and re.match(WHOLE_NUMBER, value):
            reason = f"is out of range for type {column.type}"
        else:
            reason = "is not a whole number (1.234)"
    else:
        reason = "is not a number written with a decimal comma (1.234,56)"
    return column.name, None, value, reason


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "…"
