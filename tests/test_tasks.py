"""Background tasks run through the real database backend and a real ``db_worker`` process."""

import io
import subprocess
import sys
from pathlib import Path

import pytest
from django_tasks import TaskResultStatus

from pipelines import storage
from pipelines.tasks import summarise_stored_files

PROJECT_DIR = Path(__file__).resolve().parent.parent


@pytest.mark.django_db(transaction=True)
def test_enqueued_task_is_run_by_the_worker_and_its_result_stored(
    storage_folder, database_url, service_environment
):
    storage.save_stream("source/a.csv", io.BytesIO(b"12345"))
    storage.save_stream("source/2024/b.csv", io.BytesIO(b"123"))

    result = summarise_stored_files.enqueue("source")
    assert result.status == TaskResultStatus.READY

    worker = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
        cwd=PROJECT_DIR,
        env={
            **service_environment,
            "DJANGO_SETTINGS_MODULE": "dss.test_settings",
            "DATABASE_URL": database_url,
            "DSS_STORAGE_DIR": str(storage_folder),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"files": 2, "bytes": 8}
