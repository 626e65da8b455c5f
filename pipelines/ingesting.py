"""Ingest runs: load each source's stored files that the datafile registry has not seen.

Per file: registry entry -> ``processing`` (committed, so operators see it), then in one
transaction the load and the entry -> ``processed``; on failure the transaction is rolled
back and the entry -> ``failed`` with the message. A process killed mid-load thus leaves the
entry at ``processing`` and the tables as they were; the next run loads the file again.

A run holds the dataset's advisory lock for the whole source (see ``pipelines.locking``).
"""

import logging
import posixpath
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

from django.db import connection, transaction

from pipelines import storage
from pipelines.dataflow import DataflowConfig, DataflowError, trigger_dag
from pipelines.loading import LoadResult, load_file
from pipelines.locking import dataset_session_lock
from pipelines.models import DatafileRegistry
from pipelines.reading import is_junk, open_datafile
from pipelines.sources import Catalogue, Source

logger = logging.getLogger(__name__)

SKIPPED_STATES = (DatafileRegistry.State.PROCESSED, DatafileRegistry.State.IGNORED)

# Given a file's name and size, a context that yields a callback taking bytes read.
ProgressFactory = Callable[[str, int | None], AbstractContextManager[Callable[[int], None] | None]]


@dataclass
class SourceRun:
    """What one ingest run did for one source."""

    source_id: str
    processed: int = 0
    failed: int = 0
    skipped: int = 0
    rows_loaded: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    # (file name, what its load left out: ignored columns, skipped rows), as in the registry.
    notes: list[tuple[str, str]] = field(default_factory=list)
    dataflow_error: str = ""


def ingest_sources(
    catalogue: Catalogue,
    source_ids: Iterable[str],
    datasets_folder: str,
    *,
    force: bool = False,
    progress: ProgressFactory | None = None,
) -> list[SourceRun]:
    """Ingest the selected sources in dependency order; trigger data-flow where asked."""
    config = DataflowConfig.from_settings()
    runs = []
    for source in catalogue.in_dependency_order(source_ids):
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
    """Load the source's files in order; with ``force``, rebuild its tables from them."""
    connection.ensure_connection()
    conn = connection.connection
    run = SourceRun(source.id)
    prefix = source.storage_prefix(datasets_folder)
    with dataset_session_lock(conn, source.dataset.schema):
        names = source.file_order(name for name in storage.list_files(prefix) if not is_junk(name))
        entries = {
            entry.file_name: entry for entry in DatafileRegistry.objects.filter(source=source.id)
        }
        rebuild = force
        for name in names:
            entry = entries.get(name)
            if entry is not None and entry.state in SKIPPED_STATES and not force:
                run.skipped += 1
                continue
            result = _ingest_file(source, prefix, name, rebuild, run, progress)
            if result is not None:
                rebuild = False
                run.processed += 1
                run.rows_loaded += result.rows_read
    logger.info(
        "%s: %d processed, %d failed, %d skipped, %d rows loaded",
        source.id,
        run.processed,
        run.failed,
        run.skipped,
        run.rows_loaded,
    )
    return run


def _ingest_file(
    source: Source,
    prefix: str,
    name: str,
    rebuild: bool,
    run: SourceRun,
    progress: ProgressFactory | None,
) -> LoadResult | None:
    entry, _ = DatafileRegistry.objects.update_or_create(
        source=source.id,
        file_name=name,
        defaults={"state": DatafileRegistry.State.PROCESSING, "error_message": "", "notes": ""},
    )
    key = posixpath.join(prefix, name)
    logger.info("%s: loading %s%s", source.id, name, " (rebuilding the tables)" if rebuild else "")
    try:
        with transaction.atomic():
            # The entry's update opens the transaction, so the load below joins it.
            entry.state = DatafileRegistry.State.PROCESSED
            entry.save(update_fields=["state", "error_message", "updated"])
            result = _load_stored_file(source, key, name, rebuild, progress)
            entry.notes = result.notes
            entry.save(update_fields=["notes"])
        if result.notes:
            logger.info("%s: %s: %s", source.id, name, result.notes)
            run.notes.append((name, result.notes))
        return result
    except Exception as error:
        message = str(error) or type(error).__name__
        logger.error("%s: %s failed: %s", source.id, name, message)
        DatafileRegistry.objects.filter(pk=entry.pk).update(
            state=DatafileRegistry.State.FAILED, error_message=message
        )
        run.failed += 1
        run.failures.append((name, message))
        return None


def _load_stored_file(
    source: Source, key: str, name: str, rebuild: bool, progress: ProgressFactory | None
) -> LoadResult:
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
