"""Settings come from the environment; a broken configuration stops the start with one line.

Each test starts the service's own entry points (``manage.py``, ``dev.py run``) in a
subprocess with a chosen environment, as an operator would.
"""

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Settings are read without connecting; this server is never asked anything.
UNUSED_DATABASE = "postgres://postgres@127.0.0.1:1/unused"


def run(command: list[str], env: dict[str, str], timeout: int = 60):
    return subprocess.run(
        command, cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_settings(environment: dict[str, str], *names: str) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{name: getattr(settings, name) for name in {names!r}}}))"
    )
    result = run(
        [sys.executable, "-c", code], {"DJANGO_SETTINGS_MODULE": "dss.settings", **environment}
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_stops_with_one_line_naming(result, setting: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def production(service_environment) -> dict[str, str]:
    """The least a production start needs: a secret key and a database."""
    return {**service_environment, "SECRET_KEY": "s" * 50, "DATABASE_URL": UNUSED_DATABASE}


def test_production_defaults_are_safe(production):
    values = read_settings(
        production, "DEBUG", "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"
    )

    assert values == {
        "DEBUG": False,
        "ALLOWED_HOSTS": [],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_hosts_origins_and_debug_come_from_the_environment(production):
    values = read_settings(
        {
            **production,
            "DEBUG": "true",
            "ALLOWED_HOSTS": "dss.example.com, api.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://dss.example.com",
        },
        "DEBUG",
        "ALLOWED_HOSTS",
        "CSRF_TRUSTED_ORIGINS",
        "SESSION_COOKIE_SECURE",
    )

    assert values == {
        "DEBUG": True,
        "ALLOWED_HOSTS": ["dss.example.com", "api.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://dss.example.com"],
        "SESSION_COOKIE_SECURE": False,
    }


def test_logs_are_json_lines_when_not_on_a_terminal(production):
    code = "import django, logging; django.setup(); logging.getLogger('dss').warning('hello')"
    result = run(
        [sys.executable, "-c", code], {"DJANGO_SETTINGS_MODULE": "dss.settings", **production}
    )

    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert record["message"] == "hello"
    assert record["level"] == "WARNING"
    assert record["logger"] == "dss"


@pytest.mark.parametrize("dsn, active", [("", False), ("http://key@127.0.0.1:9/1", True)])
def test_sentry_reports_only_when_a_dsn_is_set(production, dsn, active):
    code = "import django, sentry_sdk; django.setup(); print(sentry_sdk.get_client().is_active())"
    result = run(
        [sys.executable, "-c", code],
        {"DJANGO_SETTINGS_MODULE": "dss.settings", **production, "SENTRY_DSN": dsn},
    )

    assert result.stdout.strip() == str(active)


def test_missing_secret_key_stops_the_start_when_debug_is_off(production):
    del production["SECRET_KEY"]

    result = run([sys.executable, "manage.py", "check_services"], production)

    assert_stops_with_one_line_naming(result, "SECRET_KEY")


@pytest.mark.parametrize(
    "url", ["mysql://root@127.0.0.1:3306/dss", "not a url"], ids=["mysql", "garbage"]
)
def test_a_database_url_that_is_not_postgresql_stops_the_start(production, url):
    result = run(
        [sys.executable, "manage.py", "check_services"], {**production, "DATABASE_URL": url}
    )

    assert_stops_with_one_line_naming(result, "DATABASE_URL")


def test_an_unreachable_database_stops_the_start(production):
    url = f"postgres://postgres@127.0.0.1:{free_port()}/dss"

    result = run(
        [sys.executable, "manage.py", "check_services"], {**production, "DATABASE_URL": url}
    )

    assert_stops_with_one_line_naming(result, "DATABASE_URL")


def test_an_unwritable_state_folder_stops_the_start(production, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    del production["DATABASE_URL"]  # the embedded server keeps its data in the state folder

    result = run(
        [sys.executable, "manage.py", "check_services"],
        {**production, "DSS_STATE_DIR": str(blocker / "state")},
    )

    assert_stops_with_one_line_naming(result, "DSS_STATE_DIR")


@pytest.mark.django_db(transaction=True)
def test_a_bucket_that_does_not_exist_stops_the_start(production, database_url, s3_environment):
    environment = {**production, **s3_environment, "DATABASE_URL": database_url}
    environment["DSS_S3_BUCKET"] = "no-such-bucket"

    result = run([sys.executable, "manage.py", "check_services"], environment)

    assert_stops_with_one_line_naming(result, "DSS_S3_BUCKET")


@pytest.mark.django_db(transaction=True)
def test_check_services_passes_with_a_database_and_a_bucket(
    production, database_url, s3_environment
):
    environment = {**production, **s3_environment, "DATABASE_URL": database_url}

    result = run([sys.executable, "manage.py", "check_services"], environment)

    assert result.returncode == 0, result.stderr


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_redis_stops_the_start(production, database_url):
    environment = {
        **production,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
    }

    result = run([sys.executable, "manage.py", "check_services"], environment)

    assert_stops_with_one_line_naming(result, "REDIS_URL")


@pytest.mark.parametrize("skew", ["0", "3601", "abc", "-5", "1.5"])
def test_a_hawk_skew_outside_1_to_3600_seconds_stops_the_start(production, skew):
    result = run(
        [sys.executable, "manage.py", "check_services"], {**production, "DSS_HAWK_SKEW": skew}
    )

    assert_stops_with_one_line_naming(result, "DSS_HAWK_SKEW")


@pytest.mark.parametrize("skew, seconds", [("1", 1), ("3600", 3600), ("", 60)])
def test_a_hawk_skew_within_1_to_3600_seconds_is_taken(production, skew, seconds):
    values = read_settings({**production, "DSS_HAWK_SKEW": skew}, "HAWK_SKEW_SECONDS")

    assert values == {"HAWK_SKEW_SECONDS": seconds}


@pytest.fixture
def redis_with_policy(tmp_path, request) -> Iterator[str]:
    """A Redis of this test's own with a memory limit and the eviction policy
    ``request.param``; its URL."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--dir", str(tmp_path), "--maxmemory", "10mb", "--maxmemory-policy", request.param]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="needs redis-server"
)


@needs_redis_server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_with_policy", ["allkeys-lru", "volatile-ttl"], indirect=True)
def test_a_redis_that_evicts_keys_stops_the_start(production, database_url, redis_with_policy):
    environment = {**production, "DATABASE_URL": database_url, "REDIS_URL": redis_with_policy}

    result = run([sys.executable, "manage.py", "check_services"], environment)

    assert_stops_with_one_line_naming(result, "REDIS_URL")
    assert "maxmemory-policy noeviction" in result.stderr


@needs_redis_server
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("redis_with_policy", ["noeviction"], indirect=True)
def test_a_redis_that_never_evicts_passes(production, database_url, redis_with_policy):
    environment = {**production, "DATABASE_URL": database_url, "REDIS_URL": redis_with_policy}

    result = run([sys.executable, "manage.py", "check_services"], environment)

    assert result.returncode == 0, result.stderr


needs_project_virtualenv = pytest.mark.skipif(
    Path(sys.prefix).resolve() != (PROJECT_DIR / ".venv").resolve(),
    reason="dev.py runs the service from the project's .venv",
)


@needs_project_virtualenv
def test_run_command_stops_with_one_line_on_an_unreachable_database(service_environment):
    url = f"postgres://postgres@127.0.0.1:{free_port()}/dss"

    result = run(
        [sys.executable, "dev.py", "--no-install", "run", "--port", str(free_port())],
        {**service_environment, "DATABASE_URL": url},
    )

    assert_stops_with_one_line_naming(result, "DATABASE_URL")


def wait_for_health(base_url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run command ended early"
        try:
            if requests.get(f"{base_url}/healthcheck/", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.3)
    raise AssertionError("the service did not answer its health check")


def log_in(base_url: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    login_url = f"{base_url}/admin/login/"
    session.get(login_url, timeout=5)
    session.post(
        login_url,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        headers={"Referer": login_url},
        timeout=5,
    )
    return session


@needs_project_virtualenv
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_command_serves_the_service_until_interrupted(
    service_environment, database_url, tmp_path
):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "dev.py",
                "--no-install",
                "run",
                "--port",
                str(port),
                "--dev-accounts",
            ],
            cwd=PROJECT_DIR,
            env={
                **service_environment,
                "DATABASE_URL": database_url,
                "DSS_STATE_DIR": str(tmp_path / "state"),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_health(base_url, process)
            output = log.read_text()
            password = output.split("with password ")[1].split()[0]
            session = log_in(base_url, "admin", password)
            assert session.get(f"{base_url}/admin/", timeout=5).url == f"{base_url}/admin/"
            assert "HAWK client 'dev-client'" in output
        finally:
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=30)

    assert returncode == 0, log.read_text()
    assert "Stopping the web server and the task worker" in log.read_text()
