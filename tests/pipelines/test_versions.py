"""Table versions in the engine: a rebuilding run swaps in once, after its last file; ids stay
dense after loads that were killed or failed; expired versions are dropped."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from psycopg import sql

from pipelines.catalogue import CATALOGUE
from pipelines.datasets import L1Column, Mode
from pipelines.loading import LoadError
from pipelines.versions import SCHEMA, VERSIONS
from tests.pipelines.conftest import load_bytes, make_dataset, rows

ROOT = Path(__file__).resolve().parents[2]
BACI = CATALOGUE.get("dit.baci")
BACI_HEADER = b"t,hs6,i,j,v,q\n"
L1_DOUBLED = (L1Column("a", "integer", "a * 2"), L1Column("b"))


def baci_file(year: int, count: int) -> bytes:
    return BACI_HEADER + b"".join(f"{year},{n},2,3,4.5,6\n".encode() for n in range(count))


def draw_ids(conninfo: str, table: str, count: int) -> None:
    """Draw ``count`` ids from ``table``'s id sequence in a session of its own."""
    with psycopg.connect(conninfo, autocommit=True) as other:
        other.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table, count),
        )


def retained_tables(pg: psycopg.Connection) -> list[str]:
    return [
        name
        for (name,) in pg.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE nspname = %s AND relkind = 'r' AND relname <> 'versions' ORDER BY relname",
            (SCHEMA,),
        )
    ]


def test_a_forced_run_over_several_files_swaps_them_in_at_once(pg, conninfo, store):
    from tests.pipelines.test_ingest import run_command

    store("dit/baci/2018.csv", baci_file(2018, 7))
    run_command("--dit.baci")
    sizes = [40_000, 40_000, 40_000, 40_000]
    for number, size in enumerate(sizes):
        store(f"dit/baci/{2019 + number}.csv", baci_file(2019 + number, size))
    counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        with psycopg.connect(conninfo, autocommit=True) as reader:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("dit.baci", "L1"))
            while not done.is_set():
                counts.append(reader.execute(query).fetchone()[0])

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_command("--dit.baci", "--force")
    finally:
        done.set()
        watcher.join()

    total = 7 + sum(sizes)
    assert len(counts) > 20
    assert set(counts) == {7, total}, sorted(set(counts))
    assert counts[0] == 7 and counts[-1] == total


@pytest.mark.parametrize("mode", [Mode.INCREMENTAL, Mode.SNAPSHOT])
def test_ids_stay_dense_after_a_failed_load(pg, mode):
    dataset = make_dataset(mode, l1=L1_DOUBLED)
    load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n", "one.csv")
    bad = b"a,b\n" + b"".join(f"{n},z{n}\n".encode() for n in range(10, 5000)) + b"oops,z\n"
    for attempt in range(3):
        with pytest.raises(LoadError):
            load_bytes(pg, dataset, bad, f"bad{attempt}.csv")

    load_bytes(pg, dataset, b"a,b\n3,w\n4,v\n", "two.csv")

    assert rows(pg, dataset, "L0", "id") == [(1,), (2,), (3,), (4,)]
    assert rows(pg, dataset, "L1", "id, data_source_row_id") == [(n, n) for n in range(1, 5)]


@pytest.mark.parametrize("mode", [Mode.INCREMENTAL, Mode.SNAPSHOT])
def test_ids_stay_dense_after_a_load_killed_mid_copy(pg, database_url, mode):
    dataset = make_dataset(mode, l1=L1_DOUBLED)
    load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n", "one.csv")
    # The killed load draws ids as it copies (incremental files go straight into L0) and
    # builds L1 rows before it is killed, so both sequences have moved on.
    script = textwrap.dedent(
        f"""
        import sys, time, psycopg
        from pipelines.datasets import L1Column, Mode
        from pipelines.loading import load_file
        from tests.pipelines.conftest import make_dataset, read_chunks
        from tests.pipelines.test_versions import L1_DOUBLED, draw_ids

        def chunks():
            yield b"a,b\\n"
            for number in range(20000):
                yield f"{{number}},x\\n".encode()
            draw_ids(sys.argv[1], '"test.things"."L1"', 500)
            print("copying", flush=True)
            time.sleep(60)

        with psycopg.connect(sys.argv[1], autocommit=True) as conn:
            dataset = make_dataset(Mode.{mode.name}, l1=L1_DOUBLED)
            files = read_chunks(chunks(), dataset, "killed.csv")
            load_file(conn, dataset, files, datafile="killed.csv")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "dss.test_settings"}
    child = subprocess.Popen(
        [sys.executable, "-c", script, database_url], stdout=subprocess.PIPE, env=env, cwd=ROOT
    )
    try:
        assert child.stdout.readline() == b"copying\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

    load_bytes(pg, dataset, b"a,b\n3,w\n4,v\n", "two.csv")

    assert rows(pg, dataset, "L0", "id") == [(1,), (2,), (3,), (4,)]
    assert rows(pg, dataset, "L1", "id, data_source_row_id") == [(n, n) for n in range(1, 5)]


def test_expired_versions_are_dropped_by_the_next_run_and_by_the_command(pg, store, settings):
    from tests.pipelines.test_ingest import run_command

    settings.TABLE_VERSION_RETENTION = timedelta(seconds=0.5)
    store("dit/baci/2019.csv", baci_file(2019, 3))
    run_command("--dit.baci")
    run_command("--dit.baci", "--force")
    assert len(retained_tables(pg)) == 2  # L0 and L1 of the first load
    time.sleep(0.6)
    run_command("--dit.baci", "--force")
    # The first load's tables went; the second's are retained now.
    assert len(retained_tables(pg)) == 2
    time.sleep(0.6)

    out = io.StringIO()
    call_command("drop_expired_versions", stdout=out)

    assert "Dropped 2 retained table version(s)." in out.getvalue()
    assert retained_tables(pg) == []
    kept = pg.execute(
        sql.SQL("SELECT table_name FROM {} WHERE schema_name = 'dit.baci' ORDER BY 1").format(
            VERSIONS
        )
    ).fetchall()
    assert kept == [("L0",), ("L1",)]
    assert len(rows(pg, BACI.dataset, "L1")) == 3


def test_a_swap_that_replaces_a_table_keeps_its_indexes_apart_from_the_new_ones(pg):
    dataset = make_dataset(Mode.SNAPSHOT, l1=L1_DOUBLED)
    for number in range(3):
        load_bytes(pg, dataset, f"a,b\n{number},x\n".encode(), f"{number}.csv", rebuild=True)
    indexes = pg.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
        "c.relnamespace WHERE c.relkind = 'i' AND n.nspname IN (%s, %s) ORDER BY 1, 2",
        (dataset.schema, SCHEMA),
    ).fetchall()
    live = [name for schema, name in indexes if schema == dataset.schema]
    assert live == ["L0_data_hash_key", "L0_pkey", "L1_data_source_row_id_key", "L1_pkey"]
    assert len(retained_tables(pg)) == 4
    assert rows(pg, dataset, "L0", "a") == [(2,)]


def test_the_scheduler_drops_expired_versions_when_it_starts(pg, start_scheduler):
    dataset = make_dataset(Mode.SNAPSHOT)
    for number in range(2):
        load_bytes(pg, dataset, f"a,b\n{number},x\n".encode(), f"{number}.csv", rebuild=True)
    assert len(retained_tables(pg)) == 1

    scheduler = start_scheduler(DSS_TABLE_VERSION_RETENTION="0")

    deadline = time.monotonic() + 60
    while retained_tables(pg) and time.monotonic() < deadline:
        assert scheduler.poll() is None, scheduler.communicate()
        time.sleep(0.2)
    assert retained_tables(pg) == []
    assert rows(pg, dataset, "L0", "a") == [(1,)]
