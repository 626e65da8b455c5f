"""Real service processes for tests and benchmarks: gunicorn serving ``dss.wsgi``, Django's
development server as the run command starts it, and the run command (``dev.py run``)."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import requests
from django.db import connection

PROJECT_DIR = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60


def current_database_url() -> str:
    """The URL of the database Django is connected to now (the test database in a test)."""
    connection.ensure_connection()
    info = connection.connection.info
    password = f":{quote(info.password, safe='')}" if info.password else ""
    return (
        f"postgres://{quote(info.user, safe='')}{password}@{quote(info.host, safe='')}:"
        f"{info.port}/{quote(info.dbname, safe='')}"
    )


def service_environment(state_dir: Path, **variables: str) -> dict[str, str]:
    """The environment of a service process: this one's, without any cache or storage
    settings of its own, with the database Django uses now and the given ``variables``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DSS_", "REDIS_", "DJANGO_"))
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="dss.settings",
        SECRET_KEY="test-server-secret-key",
        DEBUG="0",
        DATABASE_URL=current_database_url(),
        DSS_STATE_DIR=str(state_dir),
        LOG_FORMAT="plain",
        LOG_LEVEL="WARNING",
        **variables,
    )
    return environment


@contextmanager
def gunicorn(environment: dict[str, str], log: Path, workers: int = 1) -> Iterator[str]:
    """A gunicorn serving the service on 127.0.0.1 (an ephemeral port); yields its base URL.

    The listening socket is opened here and handed to gunicorn, so the port is known before
    the server starts and nothing else can take it. The server's output goes to ``log``.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"fd://{listener.fileno()}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "dss.wsgi",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env=environment,
            pass_fds=[listener.fileno()],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    listener.close()
    with serving(process, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


@contextmanager
def development_server(environment: dict[str, str], log: Path) -> Iterator[str]:
    """``manage.py runserver`` on 127.0.0.1 (a free port), with DEBUG on unless the
    environment says otherwise, as ``dev.py run`` starts it; yields its base URL.

    The autoreloader is left out: it only restarts the same server on code changes.
    """
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env={"DEBUG": "true", **environment},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    with serving(process, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


@contextmanager
def run_command(environment: dict[str, str], log: Path) -> Iterator[str]:
    """``dev.py run`` (the development server, with its reloader, and a task worker) on
    127.0.0.1 and a free port, DEBUG as the command sets it; yields its base URL."""
    port = free_port()
    command = [sys.executable, "dev.py", "--no-install", "run", "--port", str(port)]
    environment = {name: value for name, value in environment.items() if name != "DEBUG"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, cwd=PROJECT_DIR, env=environment, stdout=output, stderr=subprocess.STDOUT
        )
    with serving(process, f"http://127.0.0.1:{port}", log) as base_url:
        yield base_url


@contextmanager
def serving(process: subprocess.Popen, base_url: str, log: Path) -> Iterator[str]:
    """``base_url`` once ``process`` answers there; the process is stopped afterwards."""
    try:
        wait_until_answering(process, base_url, log)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-2000:]}")
        try:
            requests.get(f"{base_url}/healthcheck/", timeout=30)
            return
        except (requests.ConnectionError, requests.Timeout):
            # A busy machine may take longer than one read to boot a worker: ask again.
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT} s")
