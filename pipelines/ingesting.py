"""Ingest runs: load each source's stored files that the datafile registry has not seen.

Per file: registry entry -> ``processing`` (committed, so operators see it), then in one
explicit transaction the load and the entry -> ``processed``; on failure the transaction is
rolled back and the entry -> ``failed`` with the message. A process killed mid-load thus
leaves the entry at ``processing`` and the tables as they were; the next run loads the file
again.

An operator's ``ignored`` mark stands: no run loads such a file, ``force`` or not, and no run
changes the mark, even one set while the file was loading (that load is rolled back).

A run that rebuilds the tables (``force``, or a first load into the empty tables) claims its
files first, then loads them all into new tables in one transaction and swaps those in once,
after the last file: readers see the old tables until then, never the first file alone. A
process killed during such a run leaves the tables as they were and the files at
``processing``.

A run holds the dataset's advisory lock for the whole source (see ``pipelines.locking``), and
first drops the dataset's table versions kept longer than ``TABLE_VERSION_RETENTION`` (see
``pipelines.versions``). A load that runs out of disk drops every retained version, so that
the next run has the room.
"""

import logging
import posixpath
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from psycopg import sql

from pipelines import storage
from pipelines.dataflow import DataflowConfig, DataflowError, trigger_dag
from pipelines.datasets import Dataset
from pipelines.loading import LoadResult, load_file, swap_rebuilt_tables, table_exists
from pipelines.locking import dataset_session_lock
from pipelines.models import DatafileRegistry
from pipelines.reading import is_junk, open_datafile
from pipelines.sources import Catalogue, Source
from pipelines.versions import drop_expired, drop_retained

logger = logging.getLogger(__name__)

State = DatafileRegistry.State

# Given a file's name and size, a context that yields a callback taking bytes read.
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None] | None]]


class IgnoredDuringLoad(Exception):
    """An operator marked the file ignored while it was loading; the load is not kept."""


@dataclass
class SourceRun:
    """What one ingest run did for one source."""

    source_id: str
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    rows_loaded: int = 0
    # Parts of files a parser could not read and left out (broken documents of a bulk zip).
    skipped_parts: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    # (file name, what its load left out: ignored columns, skipped rows), as in the registry.
    notes: list[tuple[str, str]] = field(default_factory=list)
    dataflow_error: str = ""
    out_of_disk: bool = False


def ingest_sources(
    catalogue: Catalogue,
    source_ids: Iterable[str],
    datasets_folder: str,
    *,
    force: bool = False,
    progress: ProgressFactory | None = None,
    options: Mapping[str, object] | None = None,
) -> list[SourceRun]:
    """Ingest the selected sources in dependency order; trigger data-flow where asked.

    ``options`` go to the sources with no files (the World Bank transform's products, ...).
    """
    config = DataflowConfig.from_settings()
    runs = []
    for source in catalogue.in_dependency_order(source_ids):
        if source.steps is not None and source.steps.without_files:
            run = run_without_files(source, options or {})
        else:
            run = ingest_source(source, datasets_folder, force=force, progress=progress)
        if run.processed and source.trigger_dataflow:
            notify_dataflow(source, run, config)
        runs.append(run)
    return runs


def ingest_source(
    source: Source,
    datasets_folder: str,
    *,
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> SourceRun:
    """Load the source's files in order; with ``force``, rebuild its tables from them.

    Files marked ``ignored`` are skipped always, ``processed`` ones unless ``force``. A
    forced run that finds no file to load leaves the tables as they are.
    """
    if connection.in_atomic_block:
        raise RuntimeError("ingest runs outside a transaction: each file commits on its own")
    connection.ensure_connection()
    conn = connection.connection
    run = SourceRun(source.id)
    prefix = source.storage_prefix(datasets_folder)
    with dataset_session_lock(conn, source.dataset.schema):
        names = source.file_order(name for name in storage.list_files(prefix) if not is_junk(name))
        states = dict(
            DatafileRegistry.objects.filter(source=source.id).values_list("file_name", "state")
        )
        skipped = {State.IGNORED} if force else {State.IGNORED, State.PROCESSED}
        pending = [name for name in names if states.get(name) not in skipped]
        run.skipped += len(names) - len(pending)
        with conn.transaction(), conn.cursor() as cursor:
            drop_expired(cursor, settings.TABLE_VERSION_RETENTION, source.dataset.schema)
        # A first load into the empty tables that migrate made builds them anew: the fast path
        # for a new table (keys built once, after the rows), ids in file order.
        if force or _is_empty(conn, source.dataset):
            swapped = _rebuild(source, prefix, pending, run, progress)
            if force and not swapped:
                logger.warning("%s: no file was loaded; the tables were not rebuilt", source.id)
        else:
            for name in pending:
                entry = _claim(source.id, name)
                if entry is None:
                    run.skipped += 1
                    continue
                _ingest_file(source, prefix, name, entry, False, run, progress)
    if run.out_of_disk:
        _free_disk(source)
    logger.info(
        "%s: %d processed, %d failed, %d skipped, %d rows loaded",
        source.id,
        run.processed,
        run.failed,
        run.skipped,
        run.rows_loaded,
    )
    return run


def run_without_files(source: Source, options: Mapping[str, object]) -> SourceRun:
    """Run a source that has no files (a transform) once; its failure is recorded with its
    cause in the run, never swallowed."""
    if connection.in_atomic_block:
        raise RuntimeError("ingest runs outside a transaction")
    connection.ensure_connection()
    conn = connection.connection
    run = SourceRun(source.id)
    with dataset_session_lock(conn, source.dataset.schema):
        try:
            # The steps commit as they go (a transform commits each batch of products).
            result = source.steps.run(conn, source, options)
        except Exception as error:
            message = str(error) or type(error).__name__
            logger.error("%s: failed: %s", source.id, message)
            run.failed += 1
            run.failures.append(("(run)", message))
            return run
    run.processed += 1
    run.rows_loaded += result.rows_read
    logger.info("%s: %d rows built", source.id, result.rows_read)
    return run


def _rebuild(
    source: Source,
    prefix: str,
    names: list[str],
    run: SourceRun,
    progress: ProgressFactory | None,
) -> bool:
    """Load ``names`` into new tables and swap them in once, in one transaction; whether
    they were (False when no file loaded)."""
    claimed = [(name, _claim(source.id, name)) for name in names]
    run.skipped += sum(entry is None for _, entry in claimed)
    conn = connection.connection
    processed_before = run.processed
    with conn.transaction():
        for name, entry in claimed:
            if entry is not None:
                _ingest_file(source, prefix, name, entry, True, run, progress)
        if source.steps is not None:
            # A source with steps of its own replaces its tables in each file's load.
            return run.processed > processed_before
        return swap_rebuilt_tables(conn, source.dataset)


def _is_empty(conn: psycopg.Connection, dataset: Dataset) -> bool:
    """Whether the dataset's L0 exists and holds no rows."""
    with conn.cursor() as cursor:
        if not table_exists(cursor, dataset.schema, "L0"):
            return False
        cursor.execute(
            sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(
                sql.Identifier(dataset.schema, "L0")
            )
        )
        return cursor.fetchone()[0]


def _ingest_file(
    source: Source,
    prefix: str,
    name: str,
    entry: DatafileRegistry,
    rebuild: bool,
    run: SourceRun,
    progress: ProgressFactory | None,
) -> None:
    """Load one claimed file and record what became of it in ``run`` and its entry."""
    key = posixpath.join(prefix, name)
    logger.info("%s: loading %s%s", source.id, name, " (rebuilding the tables)" if rebuild else "")
    try:
        # One explicit transaction holds the load (a savepoint inside it) and the entry's
        # move to processed: both commit, or neither.
        with connection.connection.transaction():
            result = _load_stored_file(source, key, name, rebuild, progress)
            _record_processed(entry, result.notes)
        if result.notes:
            logger.info("%s: %s: %s", source.id, name, result.notes)
            run.notes.append((name, result.notes))
        run.processed += 1
        run.rows_loaded += result.rows_read
        run.skipped_parts += len(result.skipped_parts)
    except IgnoredDuringLoad as error:
        logger.warning("%s: %s; its load was rolled back", source.id, error)
        run.skipped += 1
    except Exception as error:
        message = str(error) or type(error).__name__
        logger.error("%s: %s failed: %s", source.id, name, message)
        _entries(entry.pk).update(state=State.FAILED, error_message=message, updated=timezone.now())
        run.failed += 1
        run.failures.append((name, message))
        run.out_of_disk |= isinstance(error.__cause__, psycopg.errors.DiskFull)


def _free_disk(source: Source) -> None:
    """Drop every retained table version, so that the next load has the disk they held."""
    with connection.connection.transaction(), connection.connection.cursor() as cursor:
        dropped = drop_retained(cursor)
    logger.warning("%s: out of disk; dropped retained table versions %s", source.id, dropped)


def _entries(pk: int) -> QuerySet[DatafileRegistry]:
    """The registry entry ``pk``, unless an operator has marked it ignored."""
    return DatafileRegistry.objects.filter(pk=pk).exclude(state=State.IGNORED)


def _claim(source_id: str, name: str) -> DatafileRegistry | None:
    """The file's entry, moved to ``processing`` (committed); None when it is ignored."""
    entry, created = DatafileRegistry.objects.get_or_create(
        source=source_id, file_name=name, defaults={"state": State.PROCESSING}
    )
    if created:
        return entry
    claimed = _entries(entry.pk).update(
        state=State.PROCESSING, error_message="", notes="", updated=timezone.now()
    )
    return entry if claimed else None


def _record_processed(entry: DatafileRegistry, notes: str) -> None:
    """The entry -> processed with the load's ``notes``, in the load's transaction; an
    operator's ``ignored`` set during the load stands, and the load is rolled back."""
    updated = _entries(entry.pk).update(
        state=State.PROCESSED, error_message="", notes=notes, updated=timezone.now()
    )
    if not updated:
        raise IgnoredDuringLoad(f"{entry.file_name} was marked ignored while it loaded")


def _load_stored_file(
    source: Source, key: str, name: str, rebuild: bool, progress: ProgressFactory | None
) -> LoadResult:
    if source.steps is not None:
        return source.steps.load(connection.connection, source, key, name, rebuild)
    dataset = source.dataset
    size = storage.size(key) if progress else None
    with (
        progress(name, size) if progress else nullcontext() as on_progress,
        open_datafile(key, dataset, on_progress) as opened,
    ):
        # A zip's one member names the load; a load of several members is named by the zip.
        member = opened.members[0] if len(opened.members) == 1 else None
        return load_file(
            connection.connection,
            dataset,
            opened.files,
            datafile=source.datafile_name(name, member),
            member=member or name,
            rebuild=rebuild,
            swap=False,
        )


def notify_dataflow(source: Source, run: SourceRun, config: DataflowConfig | None) -> None:
    """Trigger the data-flow DAG for the source's served table (when data-flow is configured)."""
    dataset = source.dataset
    if config is None:
        logger.info("%s: DATAFLOW_BASE_URL is not set; no data-flow trigger", source.id)
        return
    try:
        trigger_dag(config, dataset.schema, dataset.served_table)
    except DataflowError as error:
        logger.error("%s: data-flow trigger failed: %s", source.id, error)
        run.dataflow_error = str(error)
