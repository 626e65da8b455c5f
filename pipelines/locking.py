"""Per-dataset PostgreSQL advisory locks, so that two runs on one dataset never interleave.

The choice: a second run **waits** for the first (logging that it waits) rather than failing.
A scheduler that starts a run while the previous one is still going thus gets a run that
starts afterwards and, the registry then saying ``processed``, skips what the first loaded.

Two levels use the same key: an ingest run holds the session lock for a whole source, and
every load holds the transaction lock. PostgreSQL grants a session a lock it already holds,
so a run's own loads pass while another process's loads of that dataset wait.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

logger = logging.getLogger(__name__)

# First half of the two-part advisory lock key: marks the lock as a dataset lock of this
# service ("DSS"); the second half is hashtext(schema).
LOCK_CLASS = 0x445353


def lock_dataset_for_transaction(conn: psycopg.Connection, schema: str) -> None:
    """Take the dataset's lock until the current transaction ends, waiting if another holds it."""
    if not _fetch(conn, "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", schema):
        logger.info("%s: another run is loading this dataset; waiting for it", schema)
        _fetch(conn, "SELECT pg_advisory_xact_lock(%s, hashtext(%s)) IS NULL", schema)


@contextmanager
def dataset_session_lock(conn: psycopg.Connection, schema: str) -> Iterator[None]:
    """Hold the dataset's lock on this connection for the ``with`` block, waiting if needed."""
    if not _fetch(conn, "SELECT pg_try_advisory_lock(%s, hashtext(%s))", schema):
        logger.info("%s: another run is working on this dataset; waiting for it", schema)
        _fetch(conn, "SELECT pg_advisory_lock(%s, hashtext(%s)) IS NULL", schema)
    try:
        yield
    finally:
        _fetch(conn, "SELECT pg_advisory_unlock(%s, hashtext(%s))", schema)


def _fetch(conn: psycopg.Connection, query: str, schema: str) -> bool:
    with conn.cursor() as cursor:
        cursor.execute(query, (LOCK_CLASS, schema))
        return bool(cursor.fetchone()[0])
