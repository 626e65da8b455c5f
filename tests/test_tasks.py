"""Background tasks run through the real database backend and a real ``db_worker`` process."""

import io
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django_tasks import TaskResultStatus

from pipelines import storage
from pipelines.tasks import summarise_stored_files

PROJECT_DIR = Path(__file__).resolve().parent.parent


def database_url_of_this_test() -> str:
    """The URL of the database the test runs in, for a subprocess to use it too."""
    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    password = f":{quote(params['PASSWORD'], safe='')}" if params["PASSWORD"] else ""
    host = params["HOST"] or ""
    name = quote(params["NAME"], safe="")
    if host.startswith("/"):  # a Unix socket folder (the embedded server)
        return f"postgres://{user}{password}@/{name}?host={quote(host, safe='')}"
    return f"postgres://{user}{password}@{host}:{params['PORT'] or 5432}/{name}"


def run_worker_until_queue_is_empty(storage_folder: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dss.test_settings",
        "DATABASE_URL": database_url_of_this_test(),
        "DSS_STORAGE_DIR": str(storage_folder),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db(transaction=True)
def test_enqueued_task_is_run_by_the_worker_and_its_result_stored(storage_folder):
    storage.save_stream("source/a.csv", io.BytesIO(b"12345"))
    storage.save_stream("source/2024/b.csv", io.BytesIO(b"123"))

    result = summarise_stored_files.enqueue("source")
    assert result.status == TaskResultStatus.READY

    worker = run_worker_until_queue_is_empty(storage_folder)
    assert worker.returncode == 0, worker.stderr

    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == {"files": 2, "bytes": 8}
