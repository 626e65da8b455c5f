"""Background tasks run through the real database backend and a real ``db_worker`` process."""

import io

import pytest
from django_tasks import TaskResultStatus

from pipelines import storage
from pipelines.tasks import summarise_stored_files


@pytest.mark.django_db(transaction=True)
def test_enqueued_task_is_run_by_the_worker_and_its_result_stored(run_worker):
    storage.save_stream("source/a.csv", io.BytesIO(b"12345"))
    storage.save_stream("source/2024/b.csv", io.BytesIO(b"123"))

    result = summarise_stored_files.enqueue("source")
    assert result.status == TaskResultStatus.READY

    run_worker()

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"files": 2, "bytes": 8}
