"""Background tasks of the pipelines app, run by ``manage.py db_worker`` (Django's Tasks API)."""

import posixpath

from django_tasks import task

from pipelines import storage


@task()
def summarise_stored_files(prefix: str) -> dict[str, int]:
    """Count the files stored below ``prefix`` and their total size in bytes.

    Answers ``{"files": <count>, "bytes": <total size>}``; the result is kept with the task's
    record, where admin and callers read it.
    """
    keys = list(storage.list_files(prefix))
    total = sum(storage.size(posixpath.join(prefix, key)) for key in keys)
    return {"files": len(keys), "bytes": total}
