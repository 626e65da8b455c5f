"""Background tasks of the pipelines app, run by ``manage.py db_worker`` (Django's Tasks API)."""

import posixpath

from django_tasks import task

from pipelines import storage
from pipelines.defined_sources import current_catalogue
from pipelines.models import RunRecord
from pipelines.runs import run_recorded


@task()
def summarise_stored_files(prefix: str) -> dict[str, int]:
    """Count the files stored below ``prefix`` and their total size in bytes.

    Answers ``{"files": <count>, "bytes": <total size>}``; the result is kept with the task's
    record, where admin and callers read it.
    """
    keys = list(storage.list_files(prefix))
    total = sum(storage.size(posixpath.join(prefix, key)) for key in keys)
    return {"files": len(keys), "bytes": total}


@task()
def run_source(record_id: int) -> str:
    """Run the fetch, ingest or rebuild that the queued ``RunRecord`` ``record_id`` asks for
    (see ``pipelines.runs``); answers the record's final status."""
    record = RunRecord.objects.get(pk=record_id)
    run_recorded(current_catalogue(), record)
    return record.status


def queue_run(source_id: str, kind: str, started_by: str) -> RunRecord:
    """Record a run as ``queued`` and hand it to the task workers."""
    record = RunRecord.objects.create(source=source_id, kind=kind, started_by=started_by)
    run_source.enqueue(record.pk)
    return record
