"""One source's fetch, ingest or rebuild, recorded as a ``RunRecord`` (status, summary and
the run's log lines), whether a command or a background task started it."""

import logging
import threading
from collections.abc import Mapping

from django.conf import settings
from django.utils import timezone

from pipelines.fetching import FetchResult, fetch_sources
from pipelines.ingesting import ProgressFactory, SourceRun, ingest_sources
from pipelines.models import RunRecord
from pipelines.sources import Catalogue

logger = logging.getLogger(__name__)

Kind = RunRecord.Kind
Status = RunRecord.Status


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
