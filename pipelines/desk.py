"""What the operators' desk (admin) shows of a source and the file it can place: the files
stored in its folder with their registry state, its tables' row counts, its last runs.

Plain Python over the storage layer, the ORM and SQL; the admin pages only render it.
"""

import posixpath
import re
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from django.db import OperationalError, connection, transaction
from psycopg import sql

from pipelines import storage
from pipelines.archives import is_junk
from pipelines.models import DatafileRegistry, RunRecord
from pipelines.runs import settle_interrupted_runs
from pipelines.sources import Source

# An exact count that takes longer than this gives way to PostgreSQL's estimate.
COUNT_TIMEOUT = "2s"
# A placed file's name: one name, no folder, no hidden file.
PLACED_NAME = re.compile(r"[^/\\\x00]+")


@dataclass(frozen=True)
class StoredFile:
    """A file in the source's folder, or one the registry knows and storage no longer holds
    (``size`` None)."""

    name: str
    size: int | None
    modified: datetime | None
    state: str
    error: str
    notes: str


@dataclass(frozen=True)
class TableRows:
    """A table of the source: its row count (None: the table does not exist), exact or not."""

    table: str
    rows: int | None
    exact: bool = True


def stored_files(source: Source, datasets_folder: str) -> list[StoredFile]:
    """The source's files in load order, each with its registry entry's state, error and
    notes (``new`` when it has none); then registry entries whose file is gone."""
    prefix = source.storage_prefix(datasets_folder)
    entries = {
        entry.file_name: entry for entry in DatafileRegistry.objects.filter(source=source.id)
    }
    names = source.file_order(name for name in storage.list_files(prefix) if not is_junk(name))
    files = []
    for name in names:
        key = posixpath.join(prefix, name)
        entry = entries.pop(name, None)
        files.append(
            StoredFile(
                name=name,
                size=storage.size(key),
                modified=storage.modified_time(key),
                state=entry.state if entry else "new",
                error=entry.error_message if entry else "",
                notes=entry.notes if entry else "",
            )
        )
    for entry in entries.values():
        files.append(
            StoredFile(entry.file_name, None, None, entry.state, entry.error_message, entry.notes)
        )
    return files


def table_rows(source: Source) -> list[TableRows]:
    """L0 (and L1) with their row counts: exact, or the planner's estimate when counting
    takes longer than ``COUNT_TIMEOUT``."""
    dataset = source.dataset
    tables = ["L0", "L1"] if dataset.has_l1 else ["L0"]
    counted = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [COUNT_TIMEOUT])
        for table in tables:
            counted.append(_count(cursor, dataset.schema, table))
    return counted


def _count(cursor, schema: str, table: str) -> TableRows:
    cursor.execute(
        "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND c.relkind = 'r'",
        [schema, table],
    )
    found = cursor.fetchone()
    if found is None:
        return TableRows(table, None)
    oid = found[0]
    try:
        with transaction.atomic():
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {}")
                .format(sql.Identifier(schema, table))
                .as_string(cursor.cursor)
            )
            return TableRows(table, cursor.fetchone()[0])
    except OperationalError:  # the count was cancelled by the timeout
        cursor.execute("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = %s", [oid])
        return TableRows(table, cursor.fetchone()[0], exact=False)


def last_runs(source: Source, limit: int = 20) -> list[RunRecord]:
    """The source's most recent runs, newest first (runs whose process was killed are marked
    so first)."""
    settle_interrupted_runs()
    return list(RunRecord.objects.filter(source=source.id)[:limit])


class PlaceError(ValueError):
    """A file cannot be placed: the message says why."""


def place_file(source: Source, datasets_folder: str, name: str, stream: IO[bytes]) -> str:
    """Store ``stream`` as ``name`` in the source's folder; returns the key.

    Only for sources whose files are placed by hand. Refused (``PlaceError``): a fetched
    source, a name with a folder in it or that is never data, a name already stored (a new
    release gets a new name; loaded data are never replaced behind the registry's back).
    """
    if source.origin is not None:
        raise PlaceError(f"The files of {source.id} are fetched, not placed by hand")
    if not PLACED_NAME.fullmatch(name) or name.startswith(".") or is_junk(name):
        raise PlaceError(f"{name!r} cannot be a stored file's name")
    key = posixpath.join(source.storage_prefix(datasets_folder), name)
    if storage.exists(key):
        raise PlaceError(f"A file named {name} is already in the folder of {source.id}")
    return storage.save_stream(key, stream)
