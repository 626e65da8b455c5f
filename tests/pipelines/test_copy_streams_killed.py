"""Streamed loads (``pipelines.copy_streams``) killed, failing, or running two at once: the
served tables stay as they were, no connection of a dead load lingers, what a dead load left
in ``dss_loads`` is dropped by the sweep or by the next load, and ``dss_loads`` is created
once however many loads arrive together.

The loads run in processes of their own (``tests.pipelines.streamed_load``), which print a
line as they pass each step, so that a kill lands in the step it means to, at a random moment
within it (the seed is in every failure's message).
"""

import io
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from psycopg import sql

from pipelines import copy_streams
from pipelines.copy_streams import WORK_SCHEMA, drop_abandoned_tables
from pipelines.datasets import Dataset, L1Column, Mode
from pipelines.loading import LoadError, LoadResult, load_file
from pipelines.locking import LOCK_CLASS, dataset_session_lock, lock_dataset_for_transaction
from pipelines.reading import CHUNK_SIZE, read_stream
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


def test_a_load_waits_for_another_that_is_creating_dss_loads(pg, conninfo, streamed, streamed_file):
    """The other holds dss_loads' own lock with the schema made but not yet committed: a
    plain CREATE SCHEMA IF NOT EXISTS would fail on the catalog's unique name once it did."""
    pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(WORK_SCHEMA)))
    dataset = streamed_dataset("things")
    name = f"waiting-load-{os.getpid()}"
    errors: list[BaseException] = []

    def load() -> None:
        with psycopg.connect(with_name(conninfo, name), autocommit=True) as conn:
            try:
                load_streamed(conn, dataset, streamed_file, rebuild=False)
            except BaseException as error:
                errors.append(error)

    with psycopg.connect(conninfo, autocommit=True) as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (LOCK_CLASS, WORK_SCHEMA))
        other.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(WORK_SCHEMA)))
        loader = threading.Thread(target=load)
        loader.start()
        assert wait_until(lambda: backends(pg, name, waiting=True) == 1)
    loader.join(timeout=120)

    assert not loader.is_alive()
    assert errors == []
    assert_holds_the_file(pg, dataset)
    assert work_tables(pg) == []


class LoadProcess:
    """A ``tests.pipelines.streamed_load`` process, its backends named ``name``; the lines
    it prints are read as they come, with the time each arrived."""

    def __init__(self, name: str, args: list[str]):
        self.name = name
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "dss.test_settings",
            "DSS_COPY_STREAMS": str(STREAMS),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.pipelines.streamed_load", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.seen: list[tuple[str, float]] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read_lines, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_lines(self) -> None:
        for line in self.process.stdout:
            self.seen.append((line.decode().strip(), time.monotonic()))
            self._lines.put(self.seen[-1][0])
        self._lines.put(None)

    def _read_errors(self) -> None:
        for line in self.process.stderr:
            self._errors.append(line)

    @property
    def errors(self) -> str:
        return b"".join(self._errors).decode(errors="replace")

    def printed(self, line: str) -> bool:
        return any(seen == line for seen, _ in self.seen)

    def last(self, line: str) -> float:
        """When ``line`` was last printed."""
        return max(at for seen, at in self.seen if seen == line)

    def expect(self, marker: str, seconds: float = 120) -> None:
        """Wait until the process prints ``marker``."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                line = self._lines.get(timeout=max(0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"{self.name}: no {marker!r} in {seconds} s:\n{self.errors}")
            if line is None:
                self.process.wait()
                pytest.fail(f"{self.name}: ended before {marker!r}:\n{self.errors}")
            if line == marker:
                return

    def go(self) -> None:
        """Start the next load."""
        self.process.stdin.write(b"go\n")
        self.process.stdin.flush()

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self._ended()

    def finish(self) -> None:
        """Wait for the process to end after its last load; it must succeed."""
        self.process.stdin.close()
        assert self._ended() == 0, self.errors

    def _ended(self) -> int:
        """Its exit status, once every line it printed is read."""
        status = self.process.wait(timeout=120)
        for reader in self._readers:
            reader.join(timeout=10)
        return status


@pytest.fixture
def start_load(database_url) -> Iterator[Callable[..., LoadProcess]]:
    """Starts ``tests.pipelines.streamed_load`` on the test database: ``start(dataset,
    file, *options)``. Those still running afterwards are killed."""
    started: list[LoadProcess] = []

    def start(dataset: Dataset, path: Path, *options: str) -> LoadProcess:
        name = f"streamed-load-{os.getpid()}-{len(started)}"
        args = [with_name(database_url, name), str(path), dataset.name, *options]
        started.append(LoadProcess(name, args))
        return started[-1]

    yield start
    for load in started:
        load.kill()


# Where a streamed rebuild is killed: after the line it prints, at a random moment within
# (0, pause) seconds; and the rows of each table then left in dss_loads (none, or one).
MOMENTS = {
    # While the start of the file is read, before or as the work table is made.
    "before-the-streams": ("locked", 0.05, ([], [0])),
    # A random chunk into the streams' COPY: their rows roll back with their connections.
    "during-the-streams-copy": ("chunk", 0, ([0],)),
    # The streams committed; the load's transaction moves the table, adds its columns.
    "after-the-streams-commit": ("committed", 0.01, ([FILE_ROWS],)),
    # L0's keys, then L1's rows: the move rolls back, the table is back in dss_loads.
    "during-the-key-build": ("keys", 0.3, ([FILE_ROWS],)),
}


@pytest.mark.slow
@pytest.mark.parametrize("swept", [True, False], ids=["swept", "not-swept"])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_streamed_rebuild_killed_leaves_the_served_tables_and_the_next_load_succeeds(
    pg, streamed, streamed_file, start_load, moment, swept
):
    marker, pause, left = MOMENTS[moment]
    dataset = streamed_dataset("things")
    load_bytes(pg, dataset, OLD, "old.csv")
    before = served(pg, dataset)
    seed = random.randrange(1_000_000)
    chance = random.Random(seed)
    chunk = chance.randrange(2, streamed_file.stat().st_size // CHUNK_SIZE - 1)
    load = start_load(dataset, streamed_file, "--rebuild", "--mark-chunk", str(chunk))

    load.go()
    load.expect(f"chunk {chunk}" if marker == "chunk" else marker)
    if marker == "chunk":
        assert backends(pg, load.name) == 1 + STREAMS, f"seed {seed}"
    time.sleep(chance.uniform(0, pause))
    load.kill()

    assert not load.printed("done"), f"seed {seed}: killed too late"
    wait_for_no_backends(pg, load.name)
    assert served(pg, dataset) == before, f"seed {seed}"
    leftover = work_tables(pg)
    assert [count for _, count in leftover] in left, f"seed {seed}: {leftover}"
    assert {schema for schema, _ in leftover} <= {dataset.schema}
    if swept:
        assert drop_abandoned_tables(pg) == [schema for schema, _ in leftover], f"seed {seed}"
        assert work_tables(pg) == []
    load_streamed(pg, dataset, streamed_file)
    assert_holds_the_file(pg, dataset)
    assert work_tables(pg) == []


@pytest.mark.slow
def test_the_sweep_keeps_the_work_table_of_a_load_in_progress_and_drops_it_once_killed(
    pg, streamed, streamed_file, start_load
):
    dataset = streamed_dataset("things")
    load = start_load(dataset, streamed_file, "--mark-chunk", "4")
    load.go()
    load.expect("chunk 4")
    load.signal(signal.SIGSTOP)  # mid-COPY, its lock held

    kept = io.StringIO()
    call_command("drop_abandoned_tables", stdout=kept)
    assert work_tables(pg) == [(dataset.schema, 0)]

    load.kill()
    wait_for_no_backends(pg, load.name)
    dropped = io.StringIO()
    call_command("drop_abandoned_tables", stdout=dropped)

    assert kept.getvalue() == "Dropped 0 abandoned load table(s).\n"
    assert dropped.getvalue() == "Dropped 1 abandoned load table(s): test.things.\n"
    assert work_tables(pg) == []
    assert not load.printed("done")


@pytest.mark.slow
def test_two_streamed_loads_of_two_datasets_create_dss_loads_together(
    pg, streamed, streamed_file, start_load
):
    """Each round starts with no dss_loads; the first round's loads are first loads."""
    rounds = 3
    datasets = [streamed_dataset("one"), streamed_dataset("two")]
    loads = [
        start_load(dataset, streamed_file, "--rebuild", "--rounds", str(rounds))
        for dataset in datasets
    ]
    for load in loads:
        load.expect("ready")

    for number in range(rounds):
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(WORK_SCHEMA)))
        for load in loads:
            load.go()
        for load in loads:
            load.expect("done")
        # Both held their locks before either committed: they ran at the same time.
        locked = max(load.last("locked") for load in loads)
        assert locked < min(load.last("done") for load in loads), f"round {number}"
    for load in loads:
        load.finish()

    for dataset in datasets:
        assert_holds_the_file(pg, dataset)
    assert work_tables(pg) == []


@pytest.mark.slow
def test_two_streamed_loads_of_one_dataset_run_one_after_the_other(
    pg, streamed, tmp_path, start_load
):
    dataset = streamed_dataset("things")
    load_bytes(pg, dataset, OLD, "old.csv")
    files = [write_csv(tmp_path / f"{text}.csv", text) for text in ("first", "second")]
    first = start_load(dataset, files[0], "--rebuild", "--mark-chunk", "4")
    second = start_load(dataset, files[1], "--rebuild")
    second.expect("ready")

    first.go()
    first.expect("chunk 4")
    first.signal(signal.SIGSTOP)  # mid-COPY, its lock held
    second.go()
    assert wait_until(lambda: backends(pg, second.name, waiting=True) == 1)
    assert not second.printed("locked")
    first.signal(signal.SIGCONT)
    first.finish()
    second.finish()

    assert "another run is loading this dataset; waiting" in second.errors
    assert_holds_the_file(pg, dataset, "second")
    assert work_tables(pg) == []
    # old.csv's L0, then each load's: the first one's retained whole.
    versions = pg.execute(
        sql.SQL(
            "SELECT table_oid::regclass::text FROM {} WHERE schema_name = %s "
            "AND table_name = 'L0' ORDER BY id"
        ).format(VERSIONS),
        (dataset.schema,),
    ).fetchall()
    assert len(versions) == 3
    first_l0 = pg.execute(
        sql.SQL("SELECT count(*), count(*) FILTER (WHERE b NOT LIKE 'first %') FROM {}").format(
            sql.SQL(versions[1][0])  # a name from the catalog
        )
    ).fetchone()
    assert first_l0 == (FILE_ROWS, 0)
