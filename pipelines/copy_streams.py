"""A new table filled by several COPY streams at once.

A COPY runs on one CPU core of the server, which parses every value: a file of 1,000,000 rows
takes 2.3 s of the bench's machine however fast it is read. Two connections, each taking the
next chunk of the file, fill one table in 1.7 s there. The rows carry their ids
(``pipelines.row_ids``), so a chunk may go to any stream and the ids stay those of a single
COPY: dense, in file order.

The table must be committed before other connections can write to it, and the load's
transaction must not commit until the end. So a new table is made, empty and committed, in
the schema ``dss_loads`` (never served: the API serves only the schemas of datasets), under a
name of its own, its comment naming the dataset's schema. Each stream copies in a transaction
of its own; when all have copied, all commit, and the load's transaction moves the table to
the dataset's schema under its name. Readers never see it before the load commits.

A load that fails while the streams copy drops the table (the streams roll back); one that
fails later, or whose process dies, leaves it in ``dss_loads``: the next streamed load of the
dataset drops it, in its own transaction, and so does ``drop_abandoned_tables`` (run by the
scheduler) when the dataset's lock is free.

A file smaller than ``STREAMED_BYTES`` is copied by the load's own connection, into a table
made in its transaction (so written frozen). ``DSS_COPY_STREAMS`` streams (default 2; 1 turns
streams off) suit a database server with that many cores to spare.
"""

import itertools
import logging
import os
import queue
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from psycopg import sql

from pipelines.copying import (
    check_row_count,
    copy_error_line,
    copy_statement,
    row_ids_of,
    send_chunks,
)
from pipelines.datasets import Dataset
from pipelines.locking import LOCK_CLASS
from pipelines.reading import ReadFile
from pipelines.row_ids import copy_lines

logger = logging.getLogger(__name__)

WORK_SCHEMA = "dss_loads"
# Below this much of a file the streams' connections cost more than they save.
STREAMED_BYTES = 16 << 20
# Chunks (of about 1 MiB) waiting for a stream, per stream.
WAITING_CHUNKS = 2


class StreamError(Exception):
    """A stream's COPY failed: PostgreSQL's ``error``; ``line_in_file`` maps the line that the
    stream's COPY names to the file's."""

    def __init__(self, error: psycopg.Error, starts: dict[int, int]):
        super().__init__(str(error))
        self.error = error
        self._starts = sorted(starts.items())

    def line_in_file(self, line: int) -> int:
        """The file's line for line ``line`` of the stream's COPY (lines counted as COPY
        counts them, from the chunk in which it falls)."""
        stream_start, file_start = max(
            (start for start in self._starts if start[0] <= line), default=(1, 1)
        )
        return file_start + line - stream_start


def copy_into_new_table(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    schema: str,
    name: str,
    definitions: list[sql.Composable],
    read_file: ReadFile,
    columns: list[str],
    *,
    first_id: int,
    session: dict[str, str],
) -> tuple[int, bool]:
    """Create ``schema.name`` with ``definitions`` and COPY ``read_file`` into its
    ``columns``, the rows' ids from ``first_id`` on; the rows copied, and whether the table
    was made in this transaction (a later COPY into it may then write frozen rows).

    ``session``: the settings that the load's COPY reads values with (dates), given to each
    stream. Raises ``StreamError`` for a stream's COPY error, ``ReadError`` for the file's.
    """
    ids = row_ids_of(dataset, read_file, first_id)
    chunks = ids.apply(read_file.chunks)
    head: list[bytes] = []
    size = 0
    streams = _stream_count() if _reads_committed_rows(cursor) else 1
    for chunk in chunks if streams > 1 else ():
        head.append(chunk)
        size += len(chunk)
        if size >= STREAMED_BYTES:
            break
    else:
        table = sql.Identifier(schema, name)
        cursor.execute(
            sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions))
        )
        statement = copy_statement(dataset, table, read_file, ["id", *columns], freeze=True)
        rows = send_chunks(cursor, statement, itertools.chain(head, chunks))
        check_row_count(read_file, rows, ids)
        return rows, True
    for abandoned in _abandoned_tables(cursor, schema):
        cursor.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(WORK_SCHEMA, abandoned)))
    work_name = uuid.uuid4().hex
    work = sql.Identifier(WORK_SCHEMA, work_name)
    statement = copy_statement(dataset, work, read_file, ["id", *columns], header=False)
    first_line = 1
    if read_file.has_header:  # the first chunk of ``RowIds``, on its own
        first_line += copy_lines(head.pop(0), read_file.line_breaks.eol)
    eol = read_file.line_breaks.eol
    with _Streams(cursor.connection, work, definitions, schema, streams, eol) as copying:
        rows = copying.copy(statement, session, itertools.chain(head, chunks), first_line)
        check_row_count(read_file, rows, ids)
    cursor.execute(sql.SQL("COMMENT ON TABLE {} IS NULL").format(work))
    cursor.execute(sql.SQL("ALTER TABLE {} SET SCHEMA {}").format(work, sql.Identifier(schema)))
    cursor.execute(
        sql.SQL("ALTER TABLE {} RENAME TO {}").format(
            sql.Identifier(schema, work_name), sql.Identifier(name)
        )
    )
    return rows, False


def drop_abandoned_tables(conn: psycopg.Connection) -> list[str]:
    """Drop the tables in ``dss_loads`` that no load is filling (their dataset's lock is
    free); the schemas of the datasets whose table was dropped. ``conn`` in autocommit."""
    with conn.cursor() as cursor:
        tables = _abandoned_tables(cursor)
    dropped = []
    for name, schema in tables.items():
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, schema or name)
            )
            if cursor.fetchone()[0]:
                table = sql.Identifier(WORK_SCHEMA, name)
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
                dropped.append(schema or name)
    return dropped


def _abandoned_tables(cursor: psycopg.Cursor, schema: str | None = None) -> dict[str, str | None]:
    """The tables in ``dss_loads`` (of the dataset ``schema``, or all): name -> the dataset's
    schema, which each table's comment gives. Those of a load that is running are listed
    too; only the dataset's lock tells them apart."""
    cursor.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
        (WORK_SCHEMA,),
    )
    return {name: owner for name, owner in cursor.fetchall() if schema is None or owner == schema}


def _reads_committed_rows(cursor: psycopg.Cursor) -> bool:
    """Whether the load's later statements see the rows the streams commit: not under
    REPEATABLE READ or SERIALIZABLE, whose snapshot was taken before."""
    cursor.execute("SHOW transaction_isolation")
    return cursor.fetchone()[0] == "read committed"


def _stream_count() -> int:
    """``DSS_COPY_STREAMS``: Django's setting, or the environment's where the engine runs
    without Django (a script, the benchmarks)."""
    if settings.configured:
        return settings.COPY_STREAMS
    return int(os.environ.get("DSS_COPY_STREAMS", "2"))


def _connect_like(conn: psycopg.Connection) -> psycopg.Connection:
    """A new connection to the database of ``conn``, as the same user."""
    return psycopg.connect(conn.info.dsn, password=conn.info.password or None)


def _create_work_schema(conn: psycopg.Connection) -> None:
    """``dss_loads``, unless it exists (under a lock of its own: two loads of two datasets
    may arrive together, and CREATE SCHEMA IF NOT EXISTS is not safe from that race)."""
    with _connect_like(conn) as side, side.transaction():
        exists = "SELECT to_regnamespace(%s) IS NOT NULL"
        if side.execute(exists, (WORK_SCHEMA,)).fetchone()[0]:
            return
        side.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, WORK_SCHEMA))
        side.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(WORK_SCHEMA)))


_END = object()


class _Stopped(Exception):
    """The file could not be read to its end: the stream's COPY is abandoned."""


@dataclass
class _Stream:
    """One stream: a connection whose COPY takes chunks from the shared queue."""

    conn: psycopg.Connection
    rows: int = 0
    error: BaseException | None = None
    # It took the end of the chunks: a COPY that fails then (PostgreSQL tells a COPY's error
    # when it ends) has no more to take.
    ended: bool = False
    # Where each chunk it took starts: its COPY's line -> the file's line.
    starts: dict[int, int] = field(default_factory=dict)


class _Streams:
    """The work table and the streams that fill it; leaving the ``with`` block commits them,
    or on an error rolls them back and drops the table."""

    def __init__(
        self,
        conn: psycopg.Connection,
        work: sql.Identifier,
        definitions: list[sql.Composable],
        schema: str,
        count: int,
        eol: bytes,
    ):
        self.conn = conn
        self.work = work
        self.definitions = definitions
        self.schema = schema
        self.count = count
        self.eol = eol
        self.streams: list[_Stream] = []
        self.queue: queue.Queue = queue.Queue(maxsize=count * WAITING_CHUNKS)
        self.stopped = threading.Event()

    def __enter__(self) -> "_Streams":
        _create_work_schema(self.conn)
        with _connect_like(self.conn) as side, side.transaction():
            columns = sql.SQL(", ").join(self.definitions)
            side.execute(sql.SQL("CREATE TABLE {} ({})").format(self.work, columns))
            # Which dataset's load made it: drop_abandoned_tables takes that dataset's lock.
            side.execute(
                sql.SQL("COMMENT ON TABLE {} IS {}").format(self.work, sql.Literal(self.schema))
            )
        return self

    def __exit__(self, kind, error, traceback) -> None:
        try:
            if error is None:
                for stream in self.streams:
                    stream.conn.commit()
                return
        except BaseException:
            self._abandon()
            raise
        finally:
            for stream in self.streams:
                stream.conn.close()
        self._abandon()

    def _abandon(self) -> None:
        """Roll every stream back and drop the work table. Should the database refuse that
        too, the error that failed the load is the one raised (the sweep drops the table)."""
        try:
            for stream in self.streams:
                if not stream.conn.closed:
                    stream.conn.rollback()
            with _connect_like(self.conn) as side:
                side.autocommit = True
                side.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self.work))
        except psycopg.Error as error:
            logger.warning("%s: left for drop_abandoned_tables: %s", self.work.as_string(), error)

    def copy(
        self,
        statement: sql.Composable,
        session: dict[str, str],
        chunks: Iterable[bytes],
        first_line: int,
    ) -> int:
        """Run ``statement`` on every stream, each with the chunks it takes; the rows copied.
        The streams' first error in file order is raised, as ``StreamError``."""
        for _ in range(self.count):
            self.streams.append(_Stream(_connect_like(self.conn)))
        threads: list[threading.Thread] = []
        try:
            for stream in self.streams:
                thread = threading.Thread(target=self._run, args=(stream, statement, session))
                thread.start()
                threads.append(thread)
            self._feed(chunks, first_line)
        finally:
            for _ in threads:
                self.queue.put(_END)
            for thread in threads:
                thread.join()
        self._raise_first_error()
        return sum(stream.rows for stream in self.streams)

    def _feed(self, chunks: Iterable[bytes], line: int) -> None:
        try:
            for chunk in chunks:
                self.queue.put((chunk, line))
                line += copy_lines(chunk, self.eol)
        except BaseException:
            self.stopped.set()
            raise

    def _run(self, stream: _Stream, statement: sql.Composable, session: dict[str, str]) -> None:
        """Copy the chunks taken until the end; after an error, go on taking them (so that
        the feeder never waits on a full queue) until the end, sending none."""
        try:
            with stream.conn.cursor() as cursor:
                for name, value in session.items():
                    cursor.execute("SELECT set_config(%s, %s, true)", (name, value))
                stream.rows = send_chunks(cursor, statement, self._taken(stream))
        except BaseException as error:  # raised by copy(), in the feeding thread
            stream.error = error
            # PostgreSQL's error for a value reaches the stream when its COPY ends, after it
            # took the end: there is then no other end to wait for.
            while not stream.ended and self.queue.get() is not _END:
                pass

    def _taken(self, stream: _Stream) -> Iterator[bytes]:
        line = 1
        while (item := self.queue.get()) is not _END:
            if self.stopped.is_set():
                raise _Stopped
            chunk, file_line = item
            stream.starts[line] = file_line
            line += copy_lines(chunk, self.eol)
            yield chunk
        stream.ended = True

    def _raise_first_error(self) -> None:
        errors = []
        for stream in self.streams:
            if stream.error is None or isinstance(stream.error, _Stopped):
                continue
            if not isinstance(stream.error, psycopg.Error):
                raise stream.error
            error = StreamError(stream.error, stream.starts)
            line = copy_error_line(stream.error)
            errors.append((error.line_in_file(line) if line is not None else 0, error))
        if errors:
            raise min(errors, key=lambda pair: pair[0])[1]
