"""The tables the API serves: looked up, with their columns, in PostgreSQL's catalog.

Only tables of the schemas the service creates are served (``api.served_schemas``). A schema
or table name from a request is only ever compared with catalog entries as a bound parameter;
what the API later puts into SQL are the names the catalog returned, quoted with
``psycopg.sql.Identifier``. Names that cannot be served are refused before the catalog query.
"""

from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from api.served_schemas import is_served_schema
from pipelines import column_types
from pipelines.names import HELPER_COLUMNS, MAX_IDENTIFIER_BYTES

TEXT = column_types.TEXT.api_name

# PostgreSQL type name -> the API's type name, for types that psycopg and orjson serve as they
# are (numbers, strings, booleans).
NATIVE_TYPES = {
    name: kind.api_name for name, kind in column_types.BY_CATALOG_NAME.items() if not kind.temporal
}
# Dates and timestamps are formatted by PostgreSQL's JSON output (ISO 8601, and dates or
# timestamps outside Python's range such as 'infinity' still serve).
TEMPORAL_TYPES = {
    name: kind.api_name for name, kind in column_types.BY_CATALOG_NAME.items() if kind.temporal
}


@dataclass(frozen=True)
class ServedColumn:
    """A served column: its name as stored, the API type name and how to select its values.

    ``base`` is the PostgreSQL type the column's values are read as (for a domain, the type
    underneath; for an array, its element type); ``is_array`` says whether it is an array.
    """

    name: str
    base: str
    is_array: bool

    @property
    def api_type(self) -> str:
        name = NATIVE_TYPES.get(self.base) or TEMPORAL_TYPES.get(self.base) or TEXT
        return f"{name}[]" if self.is_array else name

    def select_expression(self) -> sql.Composable:
        """The SELECT expression that yields this column's value in the API's form."""
        column = sql.Identifier(self.name)
        if self.base == "timestamptz":
            # Served as UTC wall-clock time, matching the TIMESTAMP WITHOUT TIME ZONE it reports.
            column = sql.SQL("({} AT TIME ZONE 'UTC')").format(column)
            if self.is_array:
                column = sql.SQL("{}::timestamp[]").format(sql.Identifier(self.name))
        if self.base in TEMPORAL_TYPES:
            if self.is_array:
                return sql.SQL("to_json({})").format(column)
            return sql.SQL("to_json({}) #>> '{{}}'").format(column)
        if self.base in NATIVE_TYPES:
            return sql.SQL("{}::{}").format(column, sql.SQL(self._cast_type()))
        return sql.SQL("{}::text[]" if self.is_array else "{}::text").format(column)

    def _cast_type(self) -> str:
        # A cast to the column's own type is free in PostgreSQL, and it turns domains into
        # their base type, so that psycopg reads every value with the base type's loader.
        return f"{self.base}[]" if self.is_array else self.base


@dataclass(frozen=True)
class ServedTable:
    """A table that can be served: its schema, name and served columns in table order."""

    schema: str
    name: str
    columns: tuple[ServedColumn, ...]

    def column(self, name: str) -> ServedColumn | None:
        return next((column for column in self.columns if column.name == name), None)

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def is_servable_name(name: str) -> bool:
    """Whether ``name`` could name a schema or table in the catalog at all."""
    return bool(name) and "\x00" not in name and len(name.encode()) <= MAX_IDENTIFIER_BYTES


FIND_TABLE = """
SELECT a.attname, base.typname, element.typname, n.nspname, c.relname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
    ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type base
    ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_catalog.pg_type element
    ON element.oid = base.typelem AND base.typcategory = 'A'
WHERE {where}
    -- tables, partitioned tables, views, materialized views and foreign tables hold rows
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY a.attnum
"""


def find_table(schema: str, table: str) -> ServedTable | None:
    """The servable table ``schema.table`` with its served columns, or None.

    None when either name cannot exist, the service did not create the schema, or the catalog
    has no such table (or view). Helper columns are left out.
    """
    if not (is_servable_name(schema) and is_servable_name(table)):
        return None
    if not is_served_schema(schema):
        return None
    return _find(FIND_TABLE.format(where="n.nspname = %s AND c.relname = %s"), [schema, table])


def find_table_by_oid(oid: int) -> ServedTable | None:
    """The table whose OID is ``oid`` (one that holds a version of a served table, see
    ``pipelines.versions``), with its served columns; None when there is none."""
    return _find(FIND_TABLE.format(where="c.oid = %s"), [oid])


def _find(query: str, params: list) -> ServedTable | None:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    columns = tuple(
        _column(name, base, element)
        for name, base, element, _, _ in rows
        if name is not None and name not in HELPER_COLUMNS
    )
    return ServedTable(schema=rows[0][3], name=rows[0][4], columns=columns)


def _column(name: str, base: str, element: str | None) -> ServedColumn:
    if element is not None:
        return ServedColumn(name=name, base=element, is_array=True)
    return ServedColumn(name=name, base=base, is_array=False)
