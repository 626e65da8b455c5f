"""Dataset definitions: what a dataset's L0/L1 tables hold and how its files are parsed.

A definition is plain data. The loader (``pipelines.loading``) turns it into tables and SQL;
every name in it reaches SQL only through ``psycopg.sql.Identifier``. SQL *expressions* (the
L1 column expressions) are code written in the catalogue, never input from a file or request.
"""

import codecs
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from psycopg import sql

from pipelines.column_types import COLUMN_TYPES
from pipelines.date_formats import check_date_format
from pipelines.names import (
    INCREMENTAL_L0_COLUMNS,
    L1_COLUMNS,
    RESERVED_COLUMNS,
    SNAPSHOT_L0_COLUMNS,
    check_column_count,
    check_identifier,
)

# Python codec name -> PostgreSQL client encoding. Encodings missing here (mac-roman, ...) are
# transcoded to UTF-8 in Python while streaming; these are converted by PostgreSQL, faster.
POSTGRES_ENCODINGS = {
    "utf-8": "UTF8",
    "cp1252": "WIN1252",
    "cp1250": "WIN1250",
    "cp1251": "WIN1251",
    "iso8859-1": "LATIN1",
    "latin-1": "LATIN1",
    "iso8859-15": "LATIN9",
    "ascii": "SQL_ASCII",
}


class Mode(enum.StrEnum):
    SNAPSHOT = "snapshot"
    INCREMENTAL = "incremental"


# The columns the loader adds to each table besides the data columns.
SERVICE_COLUMNS = {
    (Mode.SNAPSHOT, "L0"): SNAPSHOT_L0_COLUMNS,
    (Mode.INCREMENTAL, "L0"): INCREMENTAL_L0_COLUMNS,
    (Mode.SNAPSHOT, "L1"): L1_COLUMNS,
    (Mode.INCREMENTAL, "L1"): L1_COLUMNS,
}
# The longest name the loader derives from an L1 column: the index of a column in
# ``l1_indexes`` while a rebuild fills the table under its temporary name.
L1_INDEX_NAME = "L1.new_{column}_idx"


@dataclass(frozen=True)
class Column:
    """A data column of L0: its name and PostgreSQL type (a name of
    ``pipelines.column_types.COLUMN_TYPES``, or one followed by ``[]`` for an array).

    ``header`` is the header text a file names the column by, when it is not the name
    itself (both are compared after ``pipelines.headers.normalise``). ``date_format`` is the
    ``strptime`` format of a date or timestamp column whose values are not ISO 8601, e.g.
    ``%d/%m/%Y``.

    Raises ``ValueError`` for a name that is empty, longer than 63 bytes or one of the
    columns the service adds, for an unknown type and for a date format that does not fit.
    """

    name: str
    type: str = "text"
    header: str | None = field(default=None, kw_only=True)
    date_format: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_identifier(self.name, "column name")
        if self.name in RESERVED_COLUMNS:
            raise ValueError(f"column name {self.name!r} is reserved for the loader")
        # An array of a registered type is written ``text[]``.
        if self.type.removesuffix("[]") not in COLUMN_TYPES:
            known = ", ".join(COLUMN_TYPES)
            raise ValueError(f"column {self.name!r}: type {self.type!r} is not one of {known}")
        if self.date_format is not None:
            check_date_format(self.name, self.type, self.date_format)


@dataclass(frozen=True)
class L1Column(Column):
    """A column of L1, built by ``expression`` (SQL over L0's columns) or copied by name.

    An expression may use the placeholders ``%(datafile)s`` (the datafile name) and
    ``%(member)s`` (the zip member's name, or the stored file's when not zipped); a literal
    percent sign is written ``%%``.
    """

    expression: str | None = None


@dataclass(frozen=True)
class FileFormat:
    """How a file is read (``pipelines.reading``); PostgreSQL's COPY does the parsing.

    ``encoding`` is the encoding assumed when the file has no byte-order mark and is not
    strict UTF-8. ``header``: the file's first line names its columns, matched by name;
    without it columns are positional. ``force_null`` names the text columns whose quoted
    empty value ``""`` loads as NULL (``True``: every column); in typed columns it is always
    NULL, and an unquoted empty value is NULL always. ``ignore_extra_columns`` loads a file
    with columns the dataset does not have (the load reports them). ``decimal_comma``: numeric
    values are written ``1.234,56``. ``null_values``: unquoted values that load as NULL besides
    the empty one (``pipelines.null_values``). ``columns_by_position``: the header line is
    read but the file's columns are the dataset's in order (an upload, whose columns were
    checked by a person on its verify page, may repeat a header).

    Zips: ``member_pattern`` (searched with ``re.search`` in each member's path) picks the
    members to load; without it the zip's one data member. ``many_members`` loads every
    matching member, in name order; otherwise exactly one must match.
    """

    delimiter: str = ","
    quote: str = '"'
    encoding: str = "utf-8"
    header: bool = True
    force_null: bool | tuple[str, ...] = False
    member_pattern: str | None = None
    many_members: bool = False
    ignore_extra_columns: bool = False
    decimal_comma: bool = False
    null_values: tuple[str, ...] = ()
    columns_by_position: bool = False

    def __post_init__(self) -> None:
        if len(self.delimiter) != 1 or len(self.quote) != 1:
            raise ValueError("delimiter and quote must be single characters")
        if self.delimiter == self.quote:
            raise ValueError("delimiter and quote must differ")
        codecs.lookup(self.encoding)
        if self.member_pattern:
            re.compile(self.member_pattern)


@dataclass(frozen=True)
class L1Context:
    """What a custom L1 query builder gets: the tables and which L0 rows are new."""

    l0: sql.Composable
    l1: sql.Composable
    after_id: sql.Composable  # the L0 rows this file created are those with id > after_id


# A custom L1 step: returns ``INSERT INTO <l1> ... SELECT ... FROM <l0> WHERE id > <after_id>``.
L1Builder = Callable[["Dataset", L1Context], sql.Composable]


@dataclass(frozen=True)
class Dataset:
    """One dataset: schema ``"<organisation>.<name>"`` with table L0 and optionally L1.

    ``hash_columns`` (snapshot only) default to every data column. ``l1_builder`` replaces
    the default L1 step (one expression per column) for sources that reshape rows.
    ``l1_unique_source_row`` adds ``UNIQUE(data_source_row_id)`` to a snapshot L1.
    ``l1_indexes`` are L1 columns to index.

    A definition that breaks a PostgreSQL limit is refused here, with ``ValueError``: a schema
    name over 63 bytes, more columns than a table holds (1,600, counting the columns the
    service adds), an index name derived from a column that would be over 63 bytes.
    """

    organisation: str
    name: str
    mode: Mode
    columns: tuple[Column, ...]
    file_format: FileFormat = field(default_factory=FileFormat)
    l1_columns: tuple[L1Column, ...] = ()
    hash_columns: tuple[str, ...] = ()
    delete_previous: bool = False
    l1_builder: L1Builder | None = None
    l1_unique_source_row: bool = True
    l1_indexes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for part in (self.organisation, self.name):
            if not re.fullmatch(r"[a-z0-9_]+", part):
                raise ValueError(f"{part!r}: organisation and dataset use [a-z0-9_] only")
        check_identifier(self.schema, "dataset schema name")
        names = [column.name for column in self.columns]
        if not names:
            raise ValueError(f"{self.schema}: a dataset needs at least one column")
        _check_unique(self.schema, "L0", names)
        _check_unique(self.schema, "L1", [column.name for column in self.l1_columns])
        self._check_column_counts()
        self._check_l1_indexes()
        unknown = set(self.hash_columns) - set(names)
        if unknown:
            raise ValueError(f"{self.schema}: hash columns {sorted(unknown)} are not columns")
        forced = self.file_format.force_null
        if isinstance(forced, tuple) and set(forced) - set(names):
            raise ValueError(f"{self.schema}: force_null names unknown columns")
        if self.l1_builder is None:
            for column in self.l1_columns:
                if column.expression is None and column.name not in names:
                    raise ValueError(
                        f"{self.schema}: L1 column {column.name!r} has no expression "
                        "and no L0 column of that name"
                    )

    def _check_column_counts(self) -> None:
        tables = [("L0", self.columns)] + [("L1", self.l1_columns)] * self.has_l1
        for table, columns in tables:
            added = len(SERVICE_COLUMNS[self.mode, table])
            check_column_count(len(columns), added, f"{self.schema}: {table}")

    def _check_l1_indexes(self) -> None:
        l1_names = {column.name for column in self.l1_columns}
        for column in self.l1_indexes:
            if column not in l1_names:
                raise ValueError(f"{self.schema}: indexed column {column!r} is not an L1 column")
            index = L1_INDEX_NAME.format(column=column)
            check_identifier(index, f"{self.schema}: the index of L1 column {column!r}")

    @property
    def schema(self) -> str:
        return f"{self.organisation}.{self.name}"

    @property
    def has_l1(self) -> bool:
        return bool(self.l1_columns)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def hashed_column_names(self) -> tuple[str, ...]:
        return self.hash_columns or self.column_names

    @property
    def force_null_columns(self) -> tuple[str, ...]:
        """Columns whose quoted empty value loads as NULL: every typed column, and the text
        columns that ``force_null`` names."""
        forced = self.file_format.force_null
        return tuple(
            column.name
            for column in self.columns
            if column.type != "text" or forced is True or (forced and column.name in forced)
        )

    @property
    def served_table(self) -> str:
        """The table data-flow copies: L1 where there is one, else L0."""
        return "L1" if self.has_l1 else "L0"


def _check_unique(schema: str, table: str, names: list[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"{schema}: {table} repeats columns {duplicates}")
