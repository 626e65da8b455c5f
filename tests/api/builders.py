"""Builders for API tests: dataset tables made with SQL, HAWK clients and signed requests."""

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection
from mohawk import Sender
from psycopg import sql

from api.models import HawkClient
from api.served_schemas import source_schemas
from uploads.models import Pipeline

_numbers = itertools.count(1)


class TableBuilder:
    """Creates dataset tables the way the loading engine lays them out, and drops them.

    ``create("acme.things", "L0", {"name": "text"}, rows)`` makes schema ``"acme.things"``
    with table ``"L0"``: an ``id`` primary key (unless ``with_id`` is off), the helper columns
    ``data_hash``, ``datafile_created`` and ``datafile_updated`` (unless ``helpers`` is off),
    then the given columns, filled with ``rows`` (ids 1, 2, ... in order). A table of that
    name already there (a built-in source's empty table) is replaced.

    A schema that is not a source's is registered as an upload pipeline's, as the upload
    pages would, so that the API serves it; ``served=False`` leaves it a schema made by hand.
    """

    def __init__(self) -> None:
        self.schemas: list[str] = []

    def create(
        self,
        schema: str,
        table: str,
        columns: dict[str, str],
        rows: Iterable[Sequence] = (),
        *,
        with_id: bool = True,
        helpers: bool = True,
        served: bool = True,
    ) -> None:
        if served:
            self.serve(schema)
        definitions = []
        if with_id:
            definitions.append(sql.SQL("id bigint PRIMARY KEY"))
        if helpers:
            definitions.append(
                sql.SQL("data_hash text, datafile_created text, datafile_updated text")
            )
        definitions += [
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
            for name, kind in columns.items()
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            if schema not in self.schemas:
                self.schemas.append(schema)
            cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, table)))
            cursor.execute(
                sql.SQL("CREATE TABLE {} ({})").format(
                    sql.Identifier(schema, table), sql.SQL(", ").join(definitions)
                )
            )
            self._copy(cursor.cursor, schema, table, list(columns), rows, with_id, helpers)

    def serve(self, schema: str) -> None:
        """Make the API serve ``schema``: a source's is served as it is, any other is
        registered as an upload pipeline's. The schema is dropped after the test."""
        if schema not in source_schemas():
            organisation, dataset = schema.split(".", 1)
            Pipeline.objects.get_or_create(organisation=organisation, dataset=dataset)
        if schema not in self.schemas:
            self.schemas.append(schema)

    def _copy(self, cursor, schema, table, names, rows, with_id, helpers) -> None:
        targets = (["id"] if with_id else []) + (
            ["data_hash", "datafile_created"] if helpers else []
        )
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(schema, table),
            sql.SQL(", ").join(sql.Identifier(name) for name in [*targets, *names]),
        )
        with cursor.copy(statement) as copy:
            for number, row in enumerate(rows, start=1):
                prefix = ([number] if with_id else []) + (
                    [f"hash-{number}", "file.csv"] if helpers else []
                )
                copy.write_row([*prefix, *row])

    def drop_all(self) -> None:
        with connection.cursor() as cursor:
            for schema in self.schemas:
                cursor.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
        self.schemas.clear()


def make_client(scopes: Sequence[str] = ("*",), **fields) -> HawkClient:
    """A saved HAWK client with a unique id and a 32-character key."""
    number = next(_numbers)
    values = {
        "id": f"client-{number}",
        "key": f"secret-key-{number:021d}",
        "scopes": list(scopes),
        "description": "test client",
        **fields,
    }
    return HawkClient.objects.create(**values)


@dataclass
class SignedRequest:
    """The headers of a request signed as data-flow signs it, and its sender (to verify the
    Server-Authorization of the answer)."""

    headers: dict[str, str]
    sender: Sender = field(repr=False)

    def verifies(self, body: bytes, content_type: str, server_authorization: str) -> bool:
        self.sender.accept_response(server_authorization, content=body, content_type=content_type)
        return True


def sign(
    client: HawkClient,
    url: str,
    method: str = "GET",
    content: str | bytes = "",
    content_type: str = "",
    hash_payload: bool = True,
    **sender_options,
) -> SignedRequest:
    """Sign ``url`` with mohawk as data-flow does: sha256, payload hashed even when empty,
    and the header ``Content-Type`` sent as signed (empty for a GET).

    With ``hash_payload`` off, the header has no ``hash`` attribute and no Content-Type is
    sent (as many client libraries sign a GET).
    """
    credentials = {"id": client.id, "key": client.key, "algorithm": "sha256"}
    payload = (
        {"content": content, "content_type": content_type, "always_hash_content": True}
        if hash_payload
        else {"always_hash_content": False}
    )
    sender = Sender(credentials, url, method, **payload, **sender_options)
    headers = {"Authorization": sender.request_header}
    if hash_payload:
        headers["Content-Type"] = content_type
    return SignedRequest(headers=headers, sender=sender)


def without_version(url: str) -> str:
    """``url`` (a page's ``next``) without the version token it must end with."""
    match = re.search(r"&version=[1-9][0-9]*$", url)
    assert match, f"no version token at the end of {url}"
    return url[: match.start()]
