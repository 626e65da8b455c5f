"""Looking up dataset tables and their columns in PostgreSQL's catalog.

A schema or table name from a request is only ever compared with catalog entries as a bound
parameter; what the API later puts into SQL are the names the catalog returned, quoted with
``psycopg.sql.Identifier``. Names that cannot be served are refused before any query runs.
"""

from dataclasses import dataclass

from django.db import connection
from psycopg import sql

from pipelines import column_types
from pipelines.names import HELPER_COLUMNS, MAX_IDENTIFIER_BYTES

# Schemas that are never served: PostgreSQL's own and those of the original's internals.
# ``pg_*`` (pg_catalog, pg_toast, pg_temp_N, ...) and the schema that holds the service's own
# tables (``current_schema()``, where Django creates them) are refused as well.
NEVER_SERVED_SCHEMAS = frozenset({"public", "information_schema", "operations", "admin"})

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
class Column:
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
class Table:
    """A table that can be served: its schema, name and served columns in table order."""

    schema: str
    name: str
    columns: tuple[Column, ...]

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)

    def identifier(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def is_servable_name(name: str) -> bool:
    """Whether ``name`` could name a schema or table in the catalog at all."""
    return bool(name) and "\x00" not in name and len(name.encode()) <= MAX_IDENTIFIER_BYTES


def is_never_served_schema(schema: str) -> bool:
    lowered = schema.lower()
    return lowered in NEVER_SERVED_SCHEMAS or lowered.startswith("pg_")


FIND_TABLE = """
SELECT a.attname, base.typname, element.typname
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
    ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type base
    ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
LEFT JOIN pg_catalog.pg_type element
    ON element.oid = base.typelem AND base.typcategory = 'A'
WHERE n.nspname = %s AND c.relname = %s
    -- tables, partitioned tables, views, materialized views and foreign tables hold rows
    AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname <> current_schema()
ORDER BY a.attnum
"""


def find_table(schema: str, table: str) -> Table | None:
    """The servable table ``schema.table`` with its served columns, or None.

    None when either name cannot exist, the schema is never served, or the catalog has no
    such table (or view). Helper columns are left out.
    """
    if not (is_servable_name(schema) and is_servable_name(table)):
        return None
    if is_never_served_schema(schema):
        return None
    with connection.cursor() as cursor:
        cursor.execute(FIND_TABLE, [schema, table])
        rows = cursor.fetchall()
    if not rows:
        return None
    columns = tuple(
        _column(name, base, element)
        for name, base, element in rows
        if name is not None and name not in HELPER_COLUMNS
    )
    return Table(schema=schema, name=table, columns=columns)


def _column(name: str, base: str, element: str | None) -> Column:
    if element is not None:
        return Column(name=name, base=element, is_array=True)
    return Column(name=name, base=base, is_array=False)
