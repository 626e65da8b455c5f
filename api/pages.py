"""Pages of a table's rows, read with keyset pagination on ``id`` and encoded as JSON.

Rows come straight from psycopg as tuples and are encoded by orjson; no ORM object or data
frame per row. The value rules: numerics are JSON numbers with the digits PostgreSQL stores
(NaN and infinities become null, as do those of floats), dates ``YYYY-MM-DD`` and timestamps
ISO 8601 as formatted by PostgreSQL, NULL is null, other types are served as text (see
``api.served_tables.ServedColumn``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from django.db import connection
from psycopg import sql
from psycopg.adapt import Loader

from api.served_tables import ServedColumn, ServedTable

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


def read_page(
    table: ServedTable, columns: Sequence[ServedColumn], start_id: int | None, size: int
) -> Page:
    """Up to ``size`` rows of ``table`` with ``id >= start_id`` (from the first when None).

    Each row holds the id and then the values of ``columns`` (which come from ``table``, so
    their names are the catalog's).
    """
    rows = run(*page_query(table, columns, start_id, size))
    if len(rows) > size:
        return Page(rows=rows[:size], next_id=rows[size][0])
    return Page(rows=rows, next_id=None)


def page_query(
    table: ServedTable, columns: Sequence[ServedColumn], start_id: int | None, size: int
) -> tuple[sql.Composable, list]:
    """The query of ``read_page`` and its parameters: one row more than a page, so that the
    extra row's id is the next page's start."""
    where = sql.SQL("WHERE {} >= %s").format(ID) if start_id is not None else sql.SQL("")
    query = sql.SQL("SELECT {} FROM {} {} ORDER BY {} LIMIT {}").format(
        select_list(columns), table.identifier(), where, ID, sql.Literal(size + 1)
    )
    return query, [start_id] if start_id is not None else []


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
