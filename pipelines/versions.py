"""Versions of the dataset tables, so that a read that follows ``next`` ends where it began.

A version of a table (``"<organisation>.<dataset>"."L0"`` or ``"L1"``) is a row of
``dss_versions.versions``: the table's name, the OID of the table that holds the version's
rows, and ``max_id``: the version's rows are that table's rows with ``id <= max_id``.

Why this costs loads nothing: ids only grow, and a load changes a table in one of three ways.

- It appends (incremental files; snapshot files, whose other change is ``datafile_updated``,
  a helper column the API never serves). The rows of every earlier version are still there,
  unchanged: each load only adds a version row.
- It deletes the rows absent from a snapshot file (``delete_previous``). Before deleting, the
  load copies the table's rows of the earlier versions to a retained table
  (``retain_copy``) and the earlier versions move to it; a cost only such loads pay.
- It rebuilds the table (``--force``, a first load) and swaps the new one in: the old table
  is not dropped but moved, whole, into the schema ``dss_versions`` (``retain_table``); its
  OID, and so its versions, stay the same.

A version is kept while it is current and for the retention time after a later version
replaced it (``replaced``). Retained tables live in ``dss_versions``, a schema name without
a dot, which is therefore never a dataset's schema and never served as one. They are dropped
once no kept version is in them (``drop_expired``): by the next load of the dataset and by
``manage.py drop_expired_versions``. Retention costs the disk of the replaced table (its rows
and indexes) until then; ``drop_retained`` frees it all at once when the disk is short.
"""

import logging
from datetime import timedelta

import psycopg
from psycopg import sql

from pipelines.locking import LOCK_CLASS

logger = logging.getLogger(__name__)

SCHEMA = "dss_versions"
VERSIONS = sql.Identifier(SCHEMA, "versions")
DEFAULT_RETENTION = timedelta(hours=1)

CREATE = sql.SQL(
    """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {versions} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    table_oid oid NOT NULL,
    max_id bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    replaced timestamptz
);
CREATE INDEX IF NOT EXISTS versions_table_idx ON {versions} (schema_name, table_name, id);
CREATE INDEX IF NOT EXISTS versions_oid_idx ON {versions} (table_oid);
"""
).format(schema=sql.Identifier(SCHEMA), versions=VERSIONS)


def ensure_versions_table(cursor: psycopg.Cursor) -> None:
    """Create the schema and the versions table unless they exist (under a lock of their own:
    two first loads of two datasets may arrive together)."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSIONS.as_string(cursor),))
    if cursor.fetchone()[0]:
        return
    cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, SCHEMA))
    cursor.execute(CREATE)


def record_version(cursor: psycopg.Cursor, schema: str, table: str) -> int:
    """A new current version of ``schema.table`` (as it is now, in this transaction): the
    earlier ones are marked replaced now. Returns the version's id."""
    ensure_versions_table(cursor)
    cursor.execute(*record_statement(schema, table))
    return cursor.fetchone()[0]


def record_statement(schema: str, table: str) -> tuple[sql.Composable, list]:
    """The statement of ``record_version`` (one statement: atomic even on an autocommit
    connection) and its parameters; it returns the version's id."""
    target = sql.Identifier(schema, table)
    statement = sql.SQL(
        "WITH earlier AS (UPDATE {versions} SET replaced = now() "
        "WHERE schema_name = %s AND table_name = %s AND replaced IS NULL) "
        "INSERT INTO {versions} (schema_name, table_name, table_oid, max_id) "
        "SELECT %s, %s, %s::regclass::oid, coalesce(max(id), 0) FROM {table} RETURNING id"
    ).format(versions=VERSIONS, table=target)
    return statement, [schema, table, schema, table, target.as_string(None)]


def retain_table(cursor: psycopg.Cursor, schema: str, table: str) -> None:
    """Move ``schema.table`` (about to be replaced by a swap) into ``dss_versions`` under a
    name of its own, with its indexes and sequences, so that its versions stay readable."""
    ensure_versions_table(cursor)
    cursor.execute("SELECT %s::regclass::oid", (sql.Identifier(schema, table).as_string(cursor),))
    name = f"t{cursor.fetchone()[0]}"
    _rename_with_dependents(cursor, schema, table, name)
    cursor.execute(
        sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(
            sql.Identifier(schema, name), sql.Identifier(SCHEMA)
        )
    )


def retain_copy(cursor: psycopg.Cursor, schema: str, table: str) -> None:
    """Copy the rows of the kept earlier versions of ``schema.table`` (about to lose rows in
    place) to a retained table with a key on id, and point those versions at it."""
    ensure_versions_table(cursor)
    cursor.execute(
        sql.SQL(
            "SELECT max(max_id) FROM {} WHERE schema_name = %s AND table_name = %s "
            "AND table_oid = %s::regclass::oid"
        ).format(VERSIONS),
        (schema, table, sql.Identifier(schema, table).as_string(cursor)),
    )
    max_id = cursor.fetchone()[0]
    if max_id is None:
        return
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", (f"{SCHEMA}.versions",))
    name = f"c{cursor.fetchone()[0]}"
    copy = sql.Identifier(SCHEMA, name)
    cursor.execute(
        sql.SQL("CREATE TABLE {} AS SELECT * FROM {} WHERE id <= %s").format(
            copy, sql.Identifier(schema, table)
        ),
        (max_id,),
    )
    cursor.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY (id)").format(
            copy, sql.Identifier(f"{name}_pkey")
        )
    )
    cursor.execute(
        sql.SQL(
            "UPDATE {} SET table_oid = %s::regclass::oid "
            "WHERE schema_name = %s AND table_name = %s AND table_oid = %s::regclass::oid"
        ).format(VERSIONS),
        (copy.as_string(cursor), schema, table, sql.Identifier(schema, table).as_string(cursor)),
    )


def drop_expired(
    cursor: psycopg.Cursor, retention: timedelta, schema: str | None = None
) -> list[str]:
    """Forget the versions replaced more than ``retention`` ago (of the dataset ``schema``,
    or of every dataset) and drop the retained tables that no kept version is in; the names
    of the tables dropped."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSIONS.as_string(cursor),))
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(
        sql.SQL(
            "DELETE FROM {} WHERE replaced < now() - %s AND (%s::text IS NULL OR schema_name = %s)"
        ).format(VERSIONS),
        (retention, schema, schema),
    )
    return _drop_unused(cursor)


def drop_retained(cursor: psycopg.Cursor) -> list[str]:
    """Drop every retained table and forget the versions in them (reads of those versions
    answer that the table was replaced): the disk is needed for loads."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (VERSIONS.as_string(cursor),))
    if not cursor.fetchone()[0]:
        return []
    cursor.execute(
        sql.SQL(
            "DELETE FROM {} WHERE table_oid IN (SELECT c.oid FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s)"
        ).format(VERSIONS),
        (SCHEMA,),
    )
    return _drop_unused(cursor)


def _drop_unused(cursor: psycopg.Cursor) -> list[str]:
    cursor.execute(
        sql.SQL(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND c.oid <> %s::regclass "
            "AND NOT EXISTS (SELECT FROM {} v WHERE v.table_oid = c.oid) ORDER BY c.relname"
        ).format(VERSIONS),
        (SCHEMA, VERSIONS.as_string(cursor)),
    )
    names = [name for (name,) in cursor.fetchall()]
    for name in names:
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, name)))
    if names:
        logger.info("dropped retained table versions: %s", ", ".join(names))
    return names


def replace_table(cursor: psycopg.Cursor, schema: str, new: str, final: str) -> None:
    """Put table ``new`` in the place of ``final`` (indexes and sequences renamed with it);
    the replaced ``final``, if any, is retained (``retain_table``). The caller records the
    new version once every table of the swap is in place."""
    replaced = sql.Identifier(schema, final).as_string(cursor)
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (replaced,))
    if cursor.fetchone()[0]:
        retain_table(cursor, schema, final)
    _rename_with_dependents(cursor, schema, new, final)


def _rename_with_dependents(cursor: psycopg.Cursor, schema: str, old: str, new: str) -> None:
    """Rename table ``old`` to ``new``, and its indexes and sequences named ``<old>_...`` to
    ``<new>_...``: PostgreSQL names them after the table, and a later table of the old name
    (or a retained one beside it) makes the same names again."""
    cursor.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(schema, old), sql.Identifier(new)
        )
    )
    rename_dependents(cursor, schema, old, new)


def rename_dependents(cursor: psycopg.Cursor, schema: str, old: str, new: str) -> None:
    """Rename the indexes and sequences named after table ``old`` to be named after ``new``."""
    cursor.execute(
        "SELECT c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('i', 'S') AND starts_with(c.relname, %s)",
        (schema, old + "_"),
    )
    for relname, relkind in cursor.fetchall():
        kind = sql.SQL("INDEX" if relkind == "i" else "SEQUENCE")
        cursor.execute(
            sql.SQL("ALTER {} {} RENAME TO {}").format(
                kind, sql.Identifier(schema, relname), sql.Identifier(new + relname[len(old) :])
            )
        )
