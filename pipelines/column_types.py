"""The column types of the service: the one registry the engine and the API both read.

A dataset definition declares each column's type by its ``name`` (the PostgreSQL type it is
created with). The API reports a column by its ``api_name`` (the names data-flow maps to
column types, DESIGN.md "The API"); ``catalog_names`` are the PostgreSQL type names
(``pg_type.typname``) that the API reports under that name, whichever way the table was made.
``json_value`` is the JSON shape a value is served in (for the OpenAPI description).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnType:
    """One column type: how definitions name it, how the API reports and serves it.

    ``temporal`` types are formatted by PostgreSQL's JSON output (ISO 8601); the others are
    read as they are. ``uploadable`` types are the ones an uploaded column may take.
    """

    name: str
    api_name: str
    catalog_names: tuple[str, ...]
    json_value: str
    temporal: bool = False
    uploadable: bool = True


TEXT = ColumnType("text", "TEXT", ("text", "varchar", "bpchar"), "string")
INTEGER = ColumnType("integer", "INTEGER", ("int4", "int2"), "integer")
BIGINT = ColumnType("bigint", "BIGINT", ("int8",), "integer", uploadable=False)
NUMERIC = ColumnType("numeric", "NUMERIC", ("numeric",), "number")
FLOAT = ColumnType("double precision", "FLOAT", ("float8", "float4"), "number", uploadable=False)
BOOLEAN = ColumnType("boolean", "BOOLEAN", ("bool",), "boolean")
DATE = ColumnType("date", "DATE", ("date",), "date", temporal=True)
TIMESTAMP = ColumnType(
    "timestamp",
    "TIMESTAMP WITHOUT TIME ZONE",
    ("timestamp", "timestamptz"),
    "date-time",
    temporal=True,
)

# Definition type name -> its ColumnType, in the order the types are offered.
COLUMN_TYPES: dict[str, ColumnType] = {
    kind.name: kind for kind in (TEXT, INTEGER, BIGINT, NUMERIC, FLOAT, BOOLEAN, DATE, TIMESTAMP)
}

# PostgreSQL type name (pg_type.typname) -> the ColumnType the API reports it as.
BY_CATALOG_NAME: dict[str, ColumnType] = {
    catalog_name: kind for kind in COLUMN_TYPES.values() for catalog_name in kind.catalog_names
}

# API type name -> its ColumnType.
BY_API_NAME: dict[str, ColumnType] = {kind.api_name: kind for kind in COLUMN_TYPES.values()}
