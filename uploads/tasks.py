"""Background tasks of the uploads app, run by ``manage.py db_worker`` (Django's Tasks API)."""

from django_tasks import task

from uploads.processing import process


@task()
def process_upload(file_id: str) -> str:
    """Load the verified upload ``file_id`` and trigger data-flow; returns its final state."""
    return process(file_id)
