"""Pages of a table's rows, read with keyset pagination on ``id`` and encoded as JSON.

Every page is a page of one version of the table (``pipelines.versions``): the query reads
the version's rows (``id <= max_id``) only while the version is kept and the table it names
is the one being read, in one statement, so that a swap or a load committed between two
pages can never mix versions into a read.

Rows come straight from psycopg as tuples and are encoded by orjson; no ORM object or data
frame per row. The value rules: numerics are JSON numbers with the digits PostgreSQL stores
(NaN and infinities become null, as do those of floats), dates ``YYYY-MM-DD`` and timestamps
ISO 8601 as formatted by PostgreSQL, NULL is null, other types are served as text (see
``api.served_tables.ServedColumn``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import connection
from psycopg import sql
from psycopg.adapt import Loader

from api.served_tables import ServedColumn, ServedTable
from pipelines.versions import VERSIONS, record_statement

ID = sql.Identifier("id")
NOT_FINITE = frozenset({b"NaN", b"Infinity", b"-Infinity"})


class NumericAsJsonLoader(Loader):
    """Reads a numeric's text as a JSON number, exactly, without building a Decimal."""

    def load(self, data: bytes) -> orjson.Fragment | None:
        text = bytes(data)
        if text in NOT_FINITE:
            return None
        return orjson.Fragment(text)


class JsonAsIsLoader(Loader):
    """Reads JSON that PostgreSQL produced (``to_json`` of date and timestamp arrays) as is."""

    def load(self, data: bytes) -> orjson.Fragment:
        return orjson.Fragment(bytes(data))


@dataclass(frozen=True)
class Page:
    """Rows of one page, each a tuple whose first value is the row's id, and the id of the
    first row of the next page (None on the last page)."""

    rows: list[tuple]
    next_id: int | None


@dataclass(frozen=True)
class Version:
    """A version of the served table ``schema.name`` (its id, the token in ``next``), kept
    for ``retention`` after a later one replaced it."""

    id: int
    schema: str
    name: str
    retention: timedelta


# The current version, unless rows were added since by something other than a load (a load
# records its version in its own transaction). The table comes first, in FROM: PostgreSQL
# locks it there, waiting for a swap that holds it and then finding the name again, before
# it resolves the name in WHERE to an OID. (With the table in a subquery of WHERE, the OID
# was of the table the swap replaced, no version matched, and a needless one was recorded.)
CURRENT_VERSION = sql.SQL(
    "SELECT v.id FROM (SELECT coalesce(max(id), 0) AS top FROM {table}) AS t, {versions} AS v "
    "WHERE v.schema_name = %s AND v.table_name = %s AND v.replaced IS NULL "
    "AND v.table_oid = %s::regclass::oid AND v.max_id >= t.top ORDER BY v.id DESC LIMIT 1"
)
# The version's largest id, while it is kept and held by the table the query reads; NULL
# (no rows) otherwise. The table's name is resolved after the query has locked the table it
# reads, so no swap can come between the two.
VERSION_MAX_ID = sql.SQL(
    "(SELECT max_id FROM {} WHERE id = %s AND schema_name = %s AND table_name = %s "
    "AND table_oid = %s::regclass::oid AND (replaced IS NULL OR replaced > now() - %s))"
).format(VERSIONS)
KEPT_VERSION = sql.SQL(
    "SELECT table_oid FROM {} WHERE id = %s AND schema_name = %s AND table_name = %s "
    "AND (replaced IS NULL OR replaced > now() - %s)"
).format(VERSIONS)


def current_version(table: ServedTable) -> int:
    """The id of ``table``'s current version; one is recorded when it has none (a table
    that no load has changed since versions are kept, or one written to otherwise)."""
    params = [table.schema, table.name, table.identifier().as_string(None)]
    found = run(CURRENT_VERSION.format(table=table.identifier(), versions=VERSIONS), params)
    if found:
        return found[0][0]
    return run(*record_statement(table.schema, table.name))[0][0]


def version_of(table: ServedTable, version_id: int | None = None) -> Version:
    """``table``'s version ``version_id`` (its current one when None), kept for
    ``DSS_TABLE_VERSION_RETENTION`` after it is replaced."""
    return Version(
        id=version_id or current_version(table),
        schema=table.schema,
        name=table.name,
        retention=settings.TABLE_VERSION_RETENTION,
    )


def kept_version_oid(version: Version) -> int | None:
    """The OID of the table holding ``version``, or None when it is not kept."""
    found = run(KEPT_VERSION, [version.id, version.schema, version.name, version.retention])
    return found[0][0] if found else None


def read_page(
    table: ServedTable,
    columns: Sequence[ServedColumn],
    start_id: int | None,
    size: int,
    version: Version,
) -> Page:
    """Up to ``size`` rows of ``version`` with ``id >= start_id`` (from the first when None),
    read from ``table``; none when ``table`` does not hold the version or it is not kept.

    Each row holds the id and then the values of ``columns`` (which come from ``table``, so
    their names are the catalog's).
    """
    rows = run(*page_query(table, columns, start_id, size, version))
    if len(rows) > size:
        return Page(rows=rows[:size], next_id=rows[size][0])
    return Page(rows=rows, next_id=None)


def page_query(
    table: ServedTable,
    columns: Sequence[ServedColumn],
    start_id: int | None,
    size: int,
    version: Version,
) -> tuple[sql.Composable, list]:
    """The query of ``read_page`` and its parameters: one row more than a page, so that the
    extra row's id is the next page's start."""
    params: list = [] if start_id is None else [start_id]
    start = sql.SQL("") if start_id is None else sql.SQL("{} >= %s AND ").format(ID)
    query = sql.SQL("SELECT {} FROM {} WHERE {}{} <= {} ORDER BY {} LIMIT {}").format(
        select_list(columns),
        table.identifier(),
        start,
        ID,
        VERSION_MAX_ID,
        ID,
        sql.Literal(size + 1),
    )
    identifier = table.identifier().as_string(None)
    params += [version.id, version.schema, version.name, identifier, version.retention]
    return query, params


def read_postcode(
    table: ServedTable, columns: Sequence[ServedColumn], postcode: str
) -> list[tuple]:
    """The first row (id, then ``columns``) whose ``postcode`` equals ``postcode`` when both
    are lower-cased and stripped of spaces; none when no row matches."""
    query = sql.SQL(
        "SELECT {} FROM {} WHERE lower(replace({}, ' ', '')) = %s ORDER BY {} LIMIT 1"
    ).format(select_list(columns), table.identifier(), sql.Identifier("postcode"), ID)
    return run(query, [postcode])


def select_list(columns: Sequence[ServedColumn]) -> sql.Composable:
    return sql.SQL(", ").join([ID, *(column.select_expression() for column in columns)])


def run(query: sql.Composable, params: list) -> list[tuple]:
    """The rows of ``query``, with numerics and PostgreSQL-made JSON read for orjson."""
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        cursor.adapters.register_loader("numeric", NumericAsJsonLoader)
        cursor.adapters.register_loader("json", JsonAsIsLoader)
        wrapper.execute(query.as_string(cursor), params)
        return wrapper.fetchall()


def without_id(rows: list[tuple]) -> list[tuple]:
    return [row[1:] for row in rows]


def tabular(headers: list[str], rows: Sequence[Sequence], next_url: str | None) -> bytes:
    return orjson.dumps({"headers": headers, "values": rows, "next": next_url})


def records(keys: list[str], rows: Sequence[Sequence], next_url: str | None) -> bytes:
    return orjson.dumps({"results": as_records(keys, rows), "next": next_url})


def as_records(keys: list[str], rows: Sequence[Sequence]) -> list[dict]:
    # Every row has one value per key (they come from the same select list); zip's strict
    # check would cost a tenth of the page's time.
    return [dict(zip(keys, row)) for row in rows]  # noqa: B905
