"""Fixtures of the API tests.

- ``tables``: a ``TableBuilder`` whose schemas are dropped after the test.
- ``hawk_get``: a GET through Django's test client, signed like data-flow signs it;
  ``hawk_get(path, client=None, **options)`` returns the response, after checking that any
  Server-Authorization header verifies against its body and Content-Type.
- ``small_pages``: the page size set to 2.
"""

from collections.abc import Callable, Iterator

import pytest

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
