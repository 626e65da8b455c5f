"""Streamed loads (``pipelines.copy_streams``) killed, failing, or running two at once: the
served tables stay as they were, no connection of a dead load lingers, what a dead load left
in ``dss_loads`` is dropped by the sweep or by the next load, and ``dss_loads`` is created
once however many loads arrive together.

The loads run in processes of their own (``tests.pipelines.streamed_load``), which print a
line as they pass each step, so that a kill lands in the step it means to, at a random moment
within it (the seed is in every failure's message).
"""

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipelines import copy_streams
from pipelines.copy_streams import WORK_SCHEMA, drop_abandoned_tables
from pipelines.datasets import Dataset, L1Column, Mode
from pipelines.loading import LoadError, LoadResult, load_file
from pipelines.locking import dataset_session_lock, lock_dataset_for_transaction
from pipelines.reading import read_stream
from pipelines.versions import SCHEMA as VERSIONS_SCHEMA
from pipelines.versions import VERSIONS
from tests.pipelines.conftest import load_bytes, make_dataset, rows
from tests.pipelines.streamed_load import STREAMED_BYTES, streamed_dataset

ROOT = Path(__file__).resolve().parents[2]
# About 12 MB: twelve chunks of the reading layer, all but the first copied by the streams.
FILE_ROWS = 400_000
OLD = b"a,b\n-1,old\n-2,older\n"
STREAMS = 2


def write_csv(path: Path, text: str = "row", bad_row: int | None = None) -> Path:
    """``FILE_ROWS`` rows ``<n>,<text> <n> of the file`` (n from 0); on row ``bad_row``, ``x``
    in the place of n."""
    with path.open("wb") as file:
        file.write(b"a,b\n")
        for start in range(0, FILE_ROWS, 100_000):
            file.write(
                b"".join(
                    b"%s,%s %d of the file\n"
                    % (b"x" if n == bad_row else b"%d" % n, text.encode(), n)
                    for n in range(start, start + 100_000)
                )
            )
    return path


@pytest.fixture(scope="session")
def streamed_file(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("streamed") / "streamed.csv")


@pytest.fixture
def streamed(pg, monkeypatch, settings) -> Iterator[None]:
    """Loads in this process stream from ``STREAMED_BYTES`` on, as the load processes do;
    dss_loads is dropped before and after (the dataset schemas go with ``pg``)."""
    monkeypatch.setattr(copy_streams, "STREAMED_BYTES", STREAMED_BYTES)
    settings.COPY_STREAMS = STREAMS
    drop_work_schema = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
        sql.Identifier(WORK_SCHEMA)
    )
    pg.execute(drop_work_schema)
    yield
    pg.execute(drop_work_schema)


def with_name(conninfo: str, name: str) -> str:
    """``conninfo`` (key=value or URL) with the application name ``name``: the streams'
    connections take it too, so a load's backends can be told from the others."""
    if "://" not in conninfo:
        return f"{conninfo} application_name={name}"
    return f"{conninfo}{'&' if '?' in conninfo else '?'}application_name={name}"


def load_streamed(
    conn: psycopg.Connection, dataset: Dataset, path: Path, rebuild: bool = True
) -> LoadResult:
    with path.open("rb") as stream:
        files = (read_stream(stream, dataset, path.name) for _ in range(1))
        return load_file(conn, dataset, files, datafile=path.name, rebuild=rebuild)


def served(pg: psycopg.Connection, dataset: Dataset) -> dict:
    """What readers can reach of ``dataset``: the tables of its schema and of the versions
    schema (names and oids), its recorded versions, and its L0's and L1's rows."""
    tables = pg.execute(
        "SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN (%s, %s) "
        "ORDER BY 1, 2",
        (dataset.schema, VERSIONS_SCHEMA),
    ).fetchall()
    versions = pg.execute(
        sql.SQL("SELECT * FROM {} WHERE schema_name = %s ORDER BY id").format(VERSIONS),
        (dataset.schema,),
    ).fetchall()
    return {
        "tables": tables,
        "versions": versions,
        "L0": rows(pg, dataset, "L0"),
        "L1": rows(pg, dataset, "L1"),
    }


def work_tables(pg: psycopg.Connection) -> list[tuple[str, int]]:
    """The tables in dss_loads: the dataset each was made for (its comment) and its rows."""
    tables = pg.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
        (WORK_SCHEMA,),
    ).fetchall()
    return sorted(
        (
            schema,
            pg.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(WORK_SCHEMA, name))
            ).fetchone()[0],
        )
        for name, schema in tables
    )


def assert_holds_the_file(pg: psycopg.Connection, dataset: Dataset, text: str = "row") -> None:
    """L0 and L1 hold the rows of ``write_csv(text=text)``, ids 1.. in file order."""
    l0 = pg.execute(
        sql.SQL(
            "SELECT count(*), min(id), max(id), count(*) FILTER (WHERE a <> id - 1 OR b <> "
            "%s || ' ' || a || ' of the file') FROM {}"
        ).format(sql.Identifier(dataset.schema, "L0")),
        (text,),
    ).fetchone()
    assert l0 == (FILE_ROWS, 1, FILE_ROWS, 0)
    # L1's ids follow the order in which L0's rows are stored, not their ids.
    l1 = pg.execute(
        sql.SQL(
            "SELECT count(*), max(id), count(DISTINCT data_source_row_id), "
            "max(data_source_row_id), count(*) FILTER (WHERE a <> 2 * (data_source_row_id - 1)) "
            "FROM {}"
        ).format(sql.Identifier(dataset.schema, "L1"))
    ).fetchone()
    assert l1 == (FILE_ROWS, FILE_ROWS, FILE_ROWS, FILE_ROWS, 0)


def backends(pg: psycopg.Connection, name: str, *, waiting: bool = False) -> int:
    """Backends whose application name is ``name`` (but ``pg``'s); with ``waiting``, only
    those waiting for a lock."""
    return pg.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND pid <> pg_backend_pid() AND (NOT %s OR wait_event_type = 'Lock')",
        (name, waiting),
    ).fetchone()[0]


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def wait_for_no_backends(pg: psycopg.Connection, name: str) -> None:
    """A SIGKILLed client's backends end when they next read its socket; one busy with a
    statement (a key build) ends when the statement does."""
    assert wait_until(lambda: backends(pg, name) == 0), f"{name}: backends left"


def failing_load(
    pg: psycopg.Connection, conninfo: str, dataset: Dataset, path: Path
) -> tuple[BaseException, int]:
    """Load ``path`` on a connection of its own, in a thread; the error it raised, and how
    many backends of the load were left then (its own connection still open: 1). A load that
    has not ended after a minute fails the test, its backends ended so that the test's
    teardown does not wait behind its locks."""
    name = f"failing-load-{os.getpid()}"
    outcome: list[tuple[BaseException, int]] = []

    def load() -> None:
        with psycopg.connect(with_name(conninfo, name), autocommit=True) as conn:
            try:
                load_streamed(conn, dataset, path)
            except Exception as error:
                outcome.append((error, backends(pg, name)))

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    loader.join(timeout=60)
    if loader.is_alive():
        pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (name,),
        )
        pytest.fail("the load never ended")
    assert outcome, "the load succeeded"
    return outcome[0]


@pytest.mark.parametrize("bad_row", [FILE_ROWS // 2, FILE_ROWS - 1000])
def test_a_load_whose_stream_fails_closes_the_streams_and_drops_the_work_table(
    pg, conninfo, streamed, tmp_path, bad_row
):
    """The failing stream learns of its error when it ends its COPY, near the end of the
    file or at it: it may have taken its last chunk already."""
    dataset = streamed_dataset("things")
    load_bytes(pg, dataset, OLD, "old.csv")
    before = served(pg, dataset)
    bad = write_csv(tmp_path / "bad.csv", bad_row=bad_row)

    error, left = failing_load(pg, conninfo, dataset, bad)

    assert isinstance(error, LoadError)
    assert f"bad.csv: line {bad_row + 2}, column a" in str(error)
    assert left == 1  # the load's own connection
    assert served(pg, dataset) == before
    assert work_tables(pg) == []


def test_a_load_failing_after_the_streams_commit_leaves_the_work_table_to_the_sweep(
    pg, conninfo, streamed, streamed_file
):
    """The sweep keeps it while another connection holds the dataset's lock (a transaction's,
    as a load holds it, or a session's, as an ingest run does), and drops it after."""
    broken_l1 = (L1Column("a", "integer", "1 / (a - 300000)"), L1Column("b"))
    dataset = make_dataset(Mode.INCREMENTAL, l1=broken_l1)
    load_bytes(pg, dataset, OLD, "old.csv")
    before = served(pg, dataset)

    error, left = failing_load(pg, conninfo, dataset, streamed_file)

    assert isinstance(error, LoadError) and "division by zero" in str(error)
    assert left == 1
    assert served(pg, dataset) == before
    assert work_tables(pg) == [(dataset.schema, FILE_ROWS)]
    with psycopg.connect(conninfo, autocommit=True) as holder:
        with holder.transaction():
            lock_dataset_for_transaction(holder, dataset.schema)
            assert drop_abandoned_tables(pg) == []
        with dataset_session_lock(holder, dataset.schema):
            assert drop_abandoned_tables(pg) == []
    assert work_tables(pg) == [(dataset.schema, FILE_ROWS)]
    assert drop_abandoned_tables(pg) == [dataset.schema]
    assert work_tables(pg) == []
