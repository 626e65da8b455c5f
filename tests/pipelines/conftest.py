"""Fixtures of the engine tests: a psycopg connection, dataset builders, stored files, and
small HTTP servers on 127.0.0.1 (a file server and a data-flow stand-in)."""

import io
import json
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mohawk
import psycopg
import pytest
from django.db import connection
from psycopg import sql

from pipelines import storage
from pipelines.catalogue import CATALOGUE
from pipelines.datasets import Column, Dataset, FileFormat, L1Column, Mode
from pipelines.loading import LoadResult, load_file
from pipelines.reading import ReadFile, read_bytes, read_stream
from pipelines.versions import VERSIONS, drop_retained


def drop_every_version(cursor: psycopg.Cursor) -> None:
    """Forget every table version and drop the retained tables."""
    drop_retained(cursor)
    cursor.execute(sql.SQL("DELETE FROM {}").format(VERSIONS))


DATAFLOW_ID = "dataflow-client"
DATAFLOW_KEY = "dataflow-secret-key"


@pytest.fixture
def conninfo(transactional_db) -> str:
    """Connection parameters of the test database (loads commit, so the test's data is real)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.conninfo.make_conninfo(
        **{key: value for key, value in params.items() if isinstance(value, str | int)}
    )


@pytest.fixture
def pg(conninfo: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the test database; afterwards dataset schemas are dropped,
    but the built-in sources' tables are only emptied (as migrate leaves them: rebuilding them
    after every test would cost more than the test)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        yield conn
        _reset_dataset_schemas(conn)


def _reset_dataset_schemas(conn: psycopg.Connection) -> None:
    built_in: dict[str, set[str]] = {}
    for source in CATALOGUE:
        for schema, table in source.tables:
            built_in.setdefault(schema, set()).add(table)
    tables = conn.execute(
        "SELECT n.nspname, array_remove(array_agg(c.relname::text), NULL) "
        "FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind = 'r' "
        "WHERE n.nspname LIKE '%.%' GROUP BY n.nspname"
    ).fetchall()
    emptied = []
    for schema, names in tables:
        if set(names) == built_in.get(schema):
            emptied += [sql.Identifier(schema, name) for name in names]
        else:  # the migrate hook after the test's flush makes a built-in one anew
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    if emptied:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY").format(sql.SQL(", ").join(emptied)))
    with conn.transaction(), conn.cursor() as cursor:
        drop_every_version(cursor)


def make_dataset(
    mode: Mode = Mode.SNAPSHOT,
    columns: str | tuple[Column, ...] = "a:integer b:text",
    l1: tuple[L1Column, ...] = (),
    name: str = "things",
    **options,
) -> Dataset:
    """A test dataset: ``columns`` is "name:type ..." or Columns; file-format options go to
    FileFormat."""
    format_fields = set(FileFormat.__dataclass_fields__)
    file_format = FileFormat(**{k: v for k, v in options.items() if k in format_fields})
    rest = {k: v for k, v in options.items() if k not in format_fields}
    return Dataset(
        organisation="test",
        name=name,
        mode=mode,
        columns=columns
        if isinstance(columns, tuple)
        else tuple(Column(*spec.split(":")) for spec in columns.split()),
        file_format=file_format,
        l1_columns=l1,
        **rest,
    )


def load_bytes(
    pg: psycopg.Connection, dataset: Dataset, data: bytes, datafile: str, **options
) -> LoadResult:
    """Load ``data`` as the file ``datafile``, read in 7-byte chunks (every boundary case)."""
    files = (read_bytes(data, dataset, datafile, chunk_size=7) for _ in range(1))
    return load_file(pg, dataset, files, datafile=datafile, **options)


class ChunkStream(io.RawIOBase):
    """A binary stream whose reads return the chunks of an iterator, one at most per read."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            self._pending = next(self._chunks, b"")
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def read_chunks(chunks: Iterator[bytes], dataset: Dataset, datafile: str) -> Iterator[ReadFile]:
    """The file made of ``chunks``, read as it arrives (for loads that must take their time)."""
    yield read_stream(ChunkStream(chunks), dataset, datafile)


def rows(pg: psycopg.Connection, dataset: Dataset, table: str, columns: str = "*") -> list:
    """A table's rows ordered by id."""
    return pg.execute(
        sql.SQL("SELECT {} FROM {} ORDER BY id").format(
            sql.SQL(columns), sql.Identifier(dataset.schema, table)
        )
    ).fetchall()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def store(settings) -> Callable[[str, bytes], str]:
    """Put a file into storage under the datasets folder; returns its key."""

    def put(key: str, data: bytes) -> str:
        return storage.save_stream(f"{settings.DATASETS_FOLDER}/{key}", io.BytesIO(data))

    return put


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    """A small HTTP server; ``routes`` maps a path to a handler function or a fixed answer."""

    url: str
    routes: dict = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)


Answer = tuple[int, dict[str, str], bytes]


@pytest.fixture
def http_server() -> Iterator[Server]:
    """An HTTP server on 127.0.0.1 (ephemeral port); a route is an Answer or a function.

    A function route gets (handler, recorded request) and writes the answer itself, so it
    can also break the connection part-way.
    """
    server = Server(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            recorded = Recorded(
                self.command, self.path, dict(self.headers), self.rfile.read(length)
            )
            server.requests.append(recorded)
            route = server.routes.get(self.path.split("?")[0])
            if route is None:
                route = (404, {}, b"not found")
            if callable(route):
                route(self, recorded)
                return
            status, headers, body = route
            self.send_response(status)
            for name, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _handle

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@dataclass
class Dataflow:
    """The data-flow stand-in: verifies HAWK signatures and records triggered runs."""

    server: Server
    triggered: list[dict] = field(default_factory=list)
    states: list[str] = field(default_factory=lambda: ["success"])
    polls: list[str] = field(default_factory=list)
    refused: int = 0


@pytest.fixture
def dataflow(http_server: Server, settings) -> Dataflow:
    """A data-flow stand-in on 127.0.0.1, configured in the settings."""
    stand_in = Dataflow(http_server)
    dag_runs = "/api/experimental/dags/DSSGenericPipeline/dag_runs"
    settings.DATAFLOW_BASE_URL = http_server.url
    settings.DATAFLOW_HAWK_ID = DATAFLOW_ID
    settings.DATAFLOW_HAWK_KEY = DATAFLOW_KEY
    settings.DATAFLOW_UPLOADER_DAG_ID = "DSSGenericPipeline"

    nonces = set()

    def seen_nonce(sender_id: str, nonce: str, timestamp: str) -> bool:
        seen = (sender_id, nonce, timestamp) in nonces
        nonces.add((sender_id, nonce, timestamp))
        return seen

    def verified(handler, recorded: Recorded) -> bool:
        try:
            mohawk.Receiver(
                lambda sender_id: {"id": DATAFLOW_ID, "key": DATAFLOW_KEY, "algorithm": "sha256"},
                recorded.headers.get("Authorization", ""),
                http_server.url + recorded.path,
                recorded.method,
                content=recorded.body,
                content_type=recorded.headers.get("Content-Type", ""),
                seen_nonce=seen_nonce,
            )
        except mohawk.exc.HawkFail:
            stand_in.refused += 1
            _answer(handler, 401, {"error": "bad signature"})
            return False
        return True

    def trigger(handler, recorded: Recorded) -> None:
        if verified(handler, recorded):
            stand_in.triggered.append(json.loads(recorded.body))
            _answer(handler, 200, {"run_id": "manual__2024-01-31T10:00:00+00:00"})

    def poll(handler, recorded: Recorded) -> None:
        if verified(handler, recorded):
            stand_in.polls.append(recorded.path.rsplit("/", 1)[1])
            state = stand_in.states.pop(0) if len(stand_in.states) > 1 else stand_in.states[0]
            _answer(handler, 200, {"state": state})

    http_server.routes[dag_runs] = trigger
    http_server.routes[f"{dag_runs}/2024-01-31T10:00:00"] = poll
    return stand_in


def _answer(handler, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
