"""One source's fetch, ingest or rebuild, recorded as a ``RunRecord`` (status, summary and
the run's log lines), whether a command or a background task started it.

A run holds a session-level advisory lock keyed by its record on its database connection
while it is ``running``. A process killed mid-run (SIGKILL, a lost machine) cannot record its
end, but its connection closes and PostgreSQL releases the lock, so a record left
``running`` without its lock is known to be interrupted (``settle_interrupted_runs``).
"""

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.utils import timezone
from psycopg import sql

from pipelines.fetching import FetchResult, fetch_sources
from pipelines.ingesting import ProgressFactory, SourceRun, ingest_sources
from pipelines.models import RunRecord
from pipelines.sources import Catalogue

logger = logging.getLogger(__name__)

Kind = RunRecord.Kind
Status = RunRecord.Status
# First half of a run's advisory lock key ("RUN"); the second half is the record's id.
RUN_LOCK_CLASS = 0x52554E
INTERRUPTED = (
    "interrupted: the process running it stopped (killed, or its machine lost) before it "
    "could record its end; files it had loaded are in the registry, the rest is still to do"
)


class _LogCapture(logging.Handler):
    """Keeps the formatted log lines that one thread writes while the run lasts."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.lines.append(self.format(record))


def run_recorded(
    catalogue: Catalogue,
    record: RunRecord,
    *,
    progress: ProgressFactory | None = None,
    options: Mapping[str, object] | None = None,
) -> FetchResult | SourceRun | None:
    """Run what ``record`` asks for (its ``kind``, of its ``source``) and record how it went.
    ``options`` go to an ingest of a source without files (the World Bank transform's).

    Returns the engine's result (None when the run broke before it had one); whatever
    happens, the record ends ``succeeded`` or ``failed`` with a summary and the log.
    """
    with _run_lock(record.pk):
        record.status, record.started = Status.RUNNING, timezone.now()
        record.save(update_fields=["status", "started"])
        capture = _LogCapture()
        watched = logging.getLogger("pipelines")
        watched.addHandler(capture)
        result = None
        try:
            result = _run(catalogue, record, progress, options)
            record.summary, failed = summarise(result)
        except Exception as error:  # the record must say why the run broke, whatever broke it
            logger.exception("%s: %s run broke", record.source, record.kind)
            record.summary, failed = f"{type(error).__name__}: {error}", True
        finally:
            watched.removeHandler(capture)
        record.status = Status.FAILED if failed else Status.SUCCEEDED
        record.finished = timezone.now()
        record.log = "\n".join(capture.lines)
        record.save(update_fields=["status", "finished", "summary", "log"])
    return result


@contextmanager
def _run_lock(record_id: int) -> Iterator[None]:
    """Hold the run's lock on Django's connection for the ``with`` block: taken before the
    record says ``running``, released after it says how the run ended."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK_CLASS, record_id])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_CLASS, record_id])


def settle_interrupted_runs() -> int:
    """Mark ``failed`` (``INTERRUPTED``, finished now) every ``running`` record whose run no
    longer holds its lock; the number marked.

    One statement: a record it sees ``running`` committed that after taking its lock, so a
    live run's lock is always found; a run that ends meanwhile is re-checked by the UPDATE and
    left as it recorded itself.
    """
    statement = sql.SQL(
        "UPDATE {table} SET status = %s, finished = now(), summary = %s WHERE status = %s "
        "AND NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = %s AND objsubid = 2 AND objid::bigint = {table}.id "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
    ).format(table=sql.Identifier(RunRecord._meta.db_table))
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(cursor.cursor),
            [Status.FAILED, INTERRUPTED, Status.RUNNING, RUN_LOCK_CLASS],
        )
        return cursor.rowcount


def _run(
    catalogue: Catalogue,
    record: RunRecord,
    progress: ProgressFactory | None,
    options: Mapping[str, object] | None,
) -> FetchResult | SourceRun:
    folder = settings.DATASETS_FOLDER
    if record.kind == Kind.FETCH:
        return fetch_sources(catalogue, [record.source], folder)[0]
    force = record.kind == Kind.REBUILD
    runs = ingest_sources(
        catalogue, [record.source], folder, force=force, progress=progress, options=options
    )
    return runs[0]


def summarise(result: FetchResult | SourceRun) -> tuple[str, bool]:
    """One or more lines saying what a run did, and whether it failed."""
    if isinstance(result, FetchResult):
        lines = [
            f"{len(result.downloaded)} file(s) downloaded, {result.already_stored} already stored"
        ]
        lines += [f"downloaded {name}" for name in result.downloaded]
        if result.error:
            lines.append(f"failed: {result.error}")
        return "\n".join(lines), bool(result.error)
    lines = [
        f"{result.processed} file(s) processed, {result.failed} failed, {result.skipped} "
        f"skipped; {result.rows_loaded} rows loaded"
    ]
    lines += [f"{name} failed: {message}" for name, message in result.failures]
    lines += [f"{name}: {notes}" for name, notes in result.notes]
    if result.dataflow_error:
        lines.append(f"data-flow trigger failed: {result.dataflow_error}")
    return "\n".join(lines), bool(result.failed or result.dataflow_error)
