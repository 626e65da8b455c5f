"""A database connection lost in the middle of a request (its backend terminated, the
database restarting) answers a JSON 503 with Retry-After, signed when the request was
authenticated; a read is first run again once on a fresh connection. On both servers.

To lose the connection at a known moment, a table the request reads is locked from another
connection: the request's backend waits for the lock and is terminated while it waits. A
restart is played by a relay between the service and PostgreSQL (``tests.api.relay``).
"""

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest
import requests
from django.db import connection
from psycopg import sql

from tests.api.builders import make_client, sign
from tests.api.relay import DatabaseRelay
from tests.api.servers import (
    current_database_url,
    development_server,
    free_port,
    gunicorn,
    service_environment,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PATH = "/api/v1/table-data/acme.things/L0"
WAIT_SECONDS = 20


@pytest.fixture
def things(tables) -> None:
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",)])


@pytest.fixture
def monitor() -> Iterator[psycopg.Connection]:
    """A connection of the test's own for watching and terminating the servers' backends."""
    with psycopg.connect(current_database_url(), autocommit=True) as watcher:
        yield watcher


@contextmanager
def locked(*names: str) -> Iterator[None]:
    """Table ``names`` (schema, table) locked against reads until the block ends."""
    with psycopg.connect(current_database_url()) as holder:
        holder.execute(
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(*names))
        )
        yield


def terminate_waiting_backend(monitor: psycopg.Connection, spared: set[int]) -> int:
    """Terminate the first backend (not in ``spared``) that waits for a lock; its pid."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        row = monitor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND NOT (pid = ANY(%s)) LIMIT 1",
            [list(spared)],
        ).fetchone()
        if row is not None:
            monitor.execute("SELECT pg_terminate_backend(%s)", [row[0]])
            return row[0]
        time.sleep(0.02)
    raise AssertionError("no backend waited for the lock")


def get_while_terminating(server, monitor, signed, lock: tuple[str, str], times: int):
    """GET ``PATH`` while ``lock`` is held, terminating ``times`` backends that wait for it
    (a different one each time), then releasing it; the answer."""
    with ThreadPoolExecutor(1) as pool:
        with locked(*lock):
            answer = pool.submit(
                requests.get, f"{server.url}{PATH}", headers=signed.headers, timeout=60
            )
            terminated: set[int] = set()
            for _ in range(times):
                terminated.add(terminate_waiting_backend(monitor, terminated))
        return answer.result()


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert "lost its database or cache connection" in response.json()["error"]
    assert response.headers["Retry-After"] == "5"


PAGE_TABLE = ("acme.things", "L0")
CLIENT_TABLE = ("public", "api_hawkclient")
NONCE_TABLE = ("public", "dss_hawk_nonces")


def test_a_page_read_whose_connection_is_lost_once_is_read_again(server, things, monitor):
    signed = sign(make_client(), f"{server.url}{PATH}")
    response = get_while_terminating(server, monitor, signed, PAGE_TABLE, times=1)
    assert response.status_code == 200, response.text
    assert response.json()["values"] == [[1, "a"], [2, "b"]]
    assert signed.verifies(
        response.content, response.headers["Content-Type"], response.headers["Server-Authorization"]
    )


def test_a_page_read_whose_connection_is_lost_twice_answers_a_signed_503(server, things, monitor):
    signed = sign(make_client(), f"{server.url}{PATH}")
    response = get_while_terminating(server, monitor, signed, PAGE_TABLE, times=2)
    assert_unavailable(response)
    assert signed.verifies(
        response.content, response.headers["Content-Type"], response.headers["Server-Authorization"]
    )


def test_a_client_lookup_whose_connection_is_lost_once_is_read_again(server, things, monitor):
    signed = sign(make_client(), f"{server.url}{PATH}")
    response = get_while_terminating(server, monitor, signed, CLIENT_TABLE, times=1)
    assert response.status_code == 200, response.text


def test_a_client_lookup_whose_connection_is_lost_twice_answers_an_unsigned_503(
    server, things, monitor
):
    signed = sign(make_client(), f"{server.url}{PATH}")
    response = get_while_terminating(server, monitor, signed, CLIENT_TABLE, times=2)
    assert_unavailable(response)
    assert "Server-Authorization" not in response.headers


def test_a_nonce_write_whose_connection_is_lost_is_not_retried(server, things, monitor):
    """The nonce may or may not have been stored: the request answers 503 (unsigned, it was
    not authenticated yet) and the client signs a new one."""
    caller = make_client()
    signed = sign(caller, f"{server.url}{PATH}")
    response = get_while_terminating(server, monitor, signed, NONCE_TABLE, times=1)
    assert_unavailable(response)
    assert "Server-Authorization" not in response.headers
    fresh = sign(caller, f"{server.url}{PATH}")
    assert requests.get(f"{server.url}{PATH}", headers=fresh.headers, timeout=30).ok


def test_backends_terminated_at_random_during_requests_never_answer_500(server, things, monitor):
    """30 terminations of every server backend at random moments while four clients read:
    each answer is a verified 200 or a JSON 503 with Retry-After (verified when signed)."""
    caller = make_client()
    connection.ensure_connection()
    spared = [monitor.info.backend_pid, connection.connection.info.backend_pid]
    stop = threading.Event()
    answers: list[tuple[requests.Response, object]] = []

    def read() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                signed = sign(caller, f"{server.url}{PATH}")
                response = session.get(f"{server.url}{PATH}", headers=signed.headers, timeout=60)
                answers.append((response, signed))

    generator = random.Random(7)
    with ThreadPoolExecutor(4) as pool:
        readers = [pool.submit(read) for _ in range(4)]
        for _ in range(30):
            time.sleep(generator.uniform(0.02, 0.15))
            monitor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND NOT (pid = ANY(%s))",
                [spared],
            )
        stop.set()
        for reader in readers:
            reader.result()

    statuses = [response.status_code for response, _ in answers]
    print(f"{server.name}: {len(answers)} answers, {statuses.count(503)} of them 503")
    assert len(answers) > 30
    for response, signed in answers:
        assert response.status_code in (200, 503), response.text[:500]
        assert response.headers["Content-Type"] == "application/json"
        if response.status_code == 503:
            assert response.headers["Retry-After"] == "5"
        if response.status_code == 200 or "Server-Authorization" in response.headers:
            assert signed.verifies(
                response.content,
                response.headers["Content-Type"],
                response.headers["Server-Authorization"],
            )


def test_a_cache_that_cannot_be_reached_answers_an_unsigned_503(client, things, settings):
    """The nonce cache (Redis here, at a port nothing listens on) is lost like a database."""
    unreachable = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
    }
    settings.CACHES = {"default": unreachable, "hawk_nonces": unreachable}
    signed = sign(make_client(), f"http://testserver{PATH}")
    response = client.get(PATH, headers=signed.headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "Server-Authorization" not in response.headers


@pytest.fixture
def relay() -> Iterator[DatabaseRelay]:
    connection.ensure_connection()
    info = connection.connection.info
    target = (
        f"{info.host}/.s.PGSQL.{info.port}"
        if info.host.startswith("/")
        else (
            info.host,
            info.port,
        )
    )
    database_relay = DatabaseRelay(target)
    yield database_relay
    database_relay.cut()


@pytest.mark.parametrize("start", [gunicorn, development_server], ids=["gunicorn", "runserver"])
def test_a_database_that_goes_away_answers_503_and_is_used_again_when_back(
    start, things, relay, tmp_path
):
    """The database restarting: every connection dropped, new ones refused, then accepted."""
    info = connection.connection.info
    environment = {
        **service_environment(tmp_path, ALLOWED_HOSTS="127.0.0.1"),
        "DATABASE_URL": f"postgres://{info.user}@127.0.0.1:{relay.port}/{info.dbname}",
    }
    caller = make_client()
    with start(environment, tmp_path / "server.log") as url:

        def get() -> requests.Response:
            signed = sign(caller, f"{url}{PATH}")
            return requests.get(f"{url}{PATH}", headers=signed.headers, timeout=60)

        assert get().status_code == 200
        relay.cut()
        down = get()
        relay.resume()
        back = get()
    assert_unavailable(down)
    assert "Server-Authorization" not in down.headers
    assert back.status_code == 200, back.text
