"""Fixtures shared by the whole suite.

Storage:

- ``storage_folder`` (autouse): every test stores files in its own empty temporary folder,
  through the same ``LocalFolderStorage`` the service uses by default. The fixture's value is
  that folder (a ``Path``).
- ``s3_storage``: switches the storage layer to S3 for one test, against moto's S3 server
  (started once per session on 127.0.0.1, an ephemeral port) with a fresh empty bucket. Its
  value is the bucket name; ``s3_client`` is a boto3 client of the same server for looking
  at the bucket directly. Use it as ``def test_x(s3_storage): storage.save_stream(...)``.
- ``moto_s3_endpoint``: the server's URL; ``s3_bucket``: a fresh bucket's name;
  ``s3_environment``: the DSS_S3_* variables (a dict) that point a service process started
  by a test (``manage.py ...`` in a subprocess) at a fresh bucket on that server.

Subprocesses:

- ``database_url``: the URL of the test database (embedded server or DATABASE_URL's), for a
  service process that a test starts (``manage.py db_worker``, ``dev.py run``); the test needs
  ``@pytest.mark.django_db(transaction=True)`` so that the process sees its rows.
- ``state_dir``: a new state folder (not yet created) for such a process's embedded database,
  outside pytest's own temporary folder, which the server's user (as root: ``pgserver``) may
  not be allowed to enter. Servers left running in it are killed afterwards.
- ``service_environment``: ``os.environ`` without any of the service's own variables, and
  with the project's ``.env`` turned off (``DSS_ENV_FILE``), to start such a process from a
  known configuration.

Users: ``admin_client`` (pytest-django) logs in a superuser.
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import boto3
import psutil
import pytest
from moto.server import ThreadedMotoServer

PROJECT_DIR = Path(__file__).resolve().parent.parent
S3_REGION = "eu-west-2"
S3_ACCESS_KEY = "test-access-key"
S3_SECRET_KEY = "test-secret-key"
_bucket_numbers = itertools.count(1)
# Variables that configure the service (README.md, "Configuration"), by prefix or name.
SERVICE_VARIABLE_PREFIXES = ("DSS_", "OIDC_", "DATAFLOW_", "SENTRY_", "DJANGO_")
SERVICE_VARIABLES = {
    "DATABASE_URL",
    "REDIS_URL",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_COOKIES",
    "LOG_LEVEL",
    "LOG_FORMAT",
}


@pytest.fixture(autouse=True)
def storage_folder(settings, tmp_path: Path) -> Path:
    folder = tmp_path / "storage"
    settings.LOCAL_STORAGE_DIR = folder
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "pipelines.storage.LocalFolderStorage",
            "OPTIONS": {"location": folder},
        },
    }
    return folder


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_client(moto_s3_endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=moto_s3_endpoint,
        region_name=S3_REGION,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )


@pytest.fixture
def s3_bucket(s3_client) -> str:
    """A new empty bucket on moto's server."""
    name = f"dss-test-{next(_bucket_numbers)}"
    s3_client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": S3_REGION}
    )
    return name


@pytest.fixture
def s3_environment(moto_s3_endpoint: str, s3_bucket: str) -> dict[str, str]:
    """The environment variables that point a service process at a fresh bucket."""
    return {
        "DSS_S3_BUCKET": s3_bucket,
        "DSS_S3_ENDPOINT_URL": moto_s3_endpoint,
        "DSS_S3_REGION": S3_REGION,
        "DSS_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "DSS_S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
    }


@pytest.fixture
def s3_storage(settings, moto_s3_endpoint: str, s3_bucket: str) -> str:
    settings.S3_BUCKET = s3_bucket
    settings.S3_ENDPOINT_URL = moto_s3_endpoint
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "pipelines.storage.BucketStorage",
            "OPTIONS": {
                "bucket_name": s3_bucket,
                "region_name": S3_REGION,
                "endpoint_url": moto_s3_endpoint,
                "access_key": S3_ACCESS_KEY,
                "secret_key": S3_SECRET_KEY,
                "addressing_style": "path",
                "file_overwrite": True,
                "default_acl": None,
            },
        },
    }
    return s3_bucket


@pytest.fixture
def database_url(db) -> str:
    from django.db import connection

    params = connection.settings_dict
    user = quote(params["USER"] or "", safe="")
    password = f":{quote(params['PASSWORD'], safe='')}" if params["PASSWORD"] else ""
    host = params["HOST"] or ""
    name = quote(params["NAME"], safe="")
    if host.startswith("/"):  # a Unix socket folder (the embedded server)
        return f"postgres://{user}{password}@/{name}?host={quote(host, safe='')}"
    return f"postgres://{user}{password}@{host}:{params['PORT'] or 5432}/{name}"


@pytest.fixture
def service_environment() -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in SERVICE_VARIABLES and not name.startswith(SERVICE_VARIABLE_PREFIXES)
    }
    # Nor the project's .env (the run command writes one): a test sets what it needs.
    return {**environment, "DSS_ENV_FILE": os.devnull}


@pytest.fixture
def start_scheduler(
    service_environment, database_url, storage_folder
) -> Iterator[Callable[..., subprocess.Popen]]:
    """Starts ``manage.py scheduler`` on the test database (``extra`` environment variables
    added); each one started is stopped with SIGTERM afterwards if it still runs."""
    started: list[subprocess.Popen] = []

    def start(**extra: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "scheduler"],
            cwd=PROJECT_DIR,
            env={
                **service_environment,
                "DJANGO_SETTINGS_MODULE": "dss.test_settings",
                "DATABASE_URL": database_url,
                "DSS_STORAGE_DIR": str(storage_folder),
                **extra,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)


@pytest.fixture
def state_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="dss-state-"))
    yield folder / "state"
    for process in psutil.process_iter(["name"]):
        try:
            if process.info["name"] == "postgres" and Path(process.cwd()).is_relative_to(folder):
                process.kill()
        except psutil.Error:
            pass
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def run_worker(storage_folder, database_url, service_environment):
    """Run ``manage.py db_worker --batch`` (a real worker process on the test database and
    storage folder) until the task queue is empty; returns the finished process. The test
    needs ``@pytest.mark.django_db(transaction=True)`` so that the worker sees its rows."""

    def run() -> subprocess.CompletedProcess:
        worker = subprocess.run(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--batch",
                "--no-startup-delay",
                "--no-reload",
            ],
            cwd=Path(__file__).resolve().parent.parent,
            env={
                **service_environment,
                "DJANGO_SETTINGS_MODULE": "dss.test_settings",
                "DATABASE_URL": database_url,
                "DSS_STORAGE_DIR": str(storage_folder),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr
        return worker

    return run
