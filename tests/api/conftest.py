"""Fixtures of the API tests.

- ``tables``: a ``TableBuilder`` whose schemas are dropped after the test.
- ``hawk_get``: a GET through Django's test client, signed like data-flow signs it;
  ``hawk_get(path, client=None, **options)`` returns the response, after checking that any
  Server-Authorization header verifies against its body and Content-Type.
- ``small_pages``: the page size set to 2.
- ``redis_url``: REDIS_TEST_URL (default ``redis://127.0.0.1:6379/0``); the test is skipped
  when that Redis does not answer.
- ``server``: the service behind gunicorn and behind the development server, in turn.
- ``npm_hawk``: a GET signed and verified by the npm ``hawk`` package (Node.js).
"""

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.api.builders import TableBuilder, make_client, sign
from tests.api.servers import development_server, gunicorn, service_environment

TEST_HOST = "http://testserver"
HAWK_CLIENT_DIR = Path(__file__).resolve().parent / "hawk-client"


@pytest.fixture
def tables(db) -> Iterator[TableBuilder]:
    builder = TableBuilder()
    yield builder
    builder.drop_all()


@pytest.fixture
def small_pages(settings) -> int:
    settings.PAGINATION_SIZE = 2
    return 2


@pytest.fixture
def hawk_get(client, db) -> Callable:
    caller = make_client()

    def get(path: str, hawk_client=None, **options):
        signed = sign(hawk_client or caller, f"{TEST_HOST}{path}", **options)
        response = client.get(path, headers=signed.headers)
        if response.has_header("Server-Authorization"):
            assert signed.verifies(
                response.content, response["Content-Type"], response["Server-Authorization"]
            )
        return response

    return get


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {url} (REDIS_TEST_URL) does not answer: {error}")
    return url


# Served by both servers, the run command's development server and gunicorn; the public name
# a proxy in front of them would use.
PUBLIC_HOST = "dss.example.com"
SERVER_PAGE_SIZE = 2


@dataclass(frozen=True)
class Server:
    """A service process: ``name`` (``gunicorn`` or ``runserver``), its base URL and log."""

    name: str
    url: str
    log: Path


@pytest.fixture(scope="module", params=["gunicorn", "runserver"])
def server(request, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[Server]:
    """The service behind each of the two servers in turn (one process per test module),
    trusting forwarded headers, serving 127.0.0.1 and ``PUBLIC_HOST``, pages of
    ``SERVER_PAGE_SIZE`` rows. Tests that use it
    need ``@pytest.mark.django_db(transaction=True)`` so that the server sees their rows."""
    folder = tmp_path_factory.mktemp(request.param)
    with django_db_blocker.unblock():
        environment = service_environment(
            folder,
            ALLOWED_HOSTS=f"127.0.0.1,{PUBLIC_HOST}",
            DSS_TRUST_FORWARDED_HEADERS="true",
            DSS_PAGINATION_SIZE=str(SERVER_PAGE_SIZE),
        )
    log = folder / "server.log"
    start = gunicorn if request.param == "gunicorn" else development_server
    with start(environment, log) as url:
        yield Server(request.param, url, log)


@pytest.fixture(scope="session")
def npm_hawk() -> Callable[..., dict]:
    """A GET made by the npm ``hawk`` package (``hawk-client/get.js``), installed from its
    lock file on first use. ``npm_hawk(url, client, **options)`` returns the script's answer:
    ``{"status", "headers", "body", "verified", "verifyError"}``; options are the script's
    (``signedUrl``, ``headers``, ``payload``, ``contentType``, ``timestamp``).

    Without Node the tests that use it are skipped, except under CI (``CI`` set), where
    they fail.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        message = "Node.js and npm are needed for the npm hawk client tests"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if not (HAWK_CLIENT_DIR / "node_modules" / "hawk").is_dir():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(HAWK_CLIENT_DIR)],
            check=True,
            capture_output=True,
            timeout=300,
        )

    def get(url: str, client, **options) -> dict:
        request = {"url": url, "id": client.id, "key": client.key, **options}
        # The key goes through stdin, not the command line.
        result = subprocess.run(
            [node, str(HAWK_CLIENT_DIR / "get.js")],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    return get
