"""Fixtures of the API tests.

- ``tables``: a ``TableBuilder`` whose schemas are dropped after the test.
- ``hawk_get``: a GET through Django's test client, signed like data-flow signs it;
  ``hawk_get(path, client=None, **options)`` returns the response, after checking that any
  Server-Authorization header verifies against its body and Content-Type.
- ``small_pages``: the page size set to 2.
- ``redis_url``: REDIS_TEST_URL (default ``redis://127.0.0.1:6379/0``); the test is skipped
  when that Redis does not answer.
"""

import os
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.api.builders import TableBuilder, make_client, sign

TEST_HOST = "http://testserver"


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
