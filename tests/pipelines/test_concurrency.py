"""Loads and readers at the same time: readers see the old rows or the new, never part;
a load killed mid-COPY leaves nothing behind; two loads of one dataset never interleave."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pipelines.datasets import Mode
from pipelines.loading import load_file
from pipelines.locking import lock_dataset_for_transaction
from tests.pipelines.conftest import load_bytes, make_dataset, read_chunks, rows

ROOT = Path(__file__).resolve().parents[2]


def slow_chunks(count: int, pause: float = 0.02) -> Iterator[bytes]:
    yield b"a,b\n"
    for number in range(count):
        time.sleep(pause)
        yield f"{number},row {number}\n".encode()


def count_rows(conn: psycopg.Connection, schema: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "L0"))
    return conn.execute(query).fetchone()[0]


@pytest.mark.parametrize(
    ("mode", "rebuild", "after"),
    [(Mode.INCREMENTAL, False, 31), (Mode.SNAPSHOT, False, 31), (Mode.INCREMENTAL, True, 30)],
    ids=["incremental", "snapshot", "rebuild"],
)
def test_a_reader_during_a_load_sees_the_old_rows_or_the_new(pg, conninfo, mode, rebuild, after):
    dataset = make_dataset(mode)
    load_bytes(pg, dataset, b"a,b\n-1,old\n", "old.csv")
    seen = []

    with psycopg.connect(conninfo, autocommit=True) as loader_conn:
        loader = threading.Thread(
            target=load_file,
            args=(loader_conn, dataset, read_chunks(slow_chunks(30), dataset, "new.csv")),
            kwargs={"datafile": "new.csv", "rebuild": rebuild},
        )
        loader.start()
        while loader.is_alive():
            seen.append(count_rows(pg, dataset.schema))
            time.sleep(0.005)
        loader.join()
    seen.append(count_rows(pg, dataset.schema))

    assert len(seen) > 10
    assert set(seen) <= {1, after}
    assert seen[0] == 1 and seen[-1] == after


@pytest.mark.parametrize(
    ("mode", "rebuild"),
    [(Mode.INCREMENTAL, False), (Mode.SNAPSHOT, False), (Mode.SNAPSHOT, True)],
    ids=["incremental", "snapshot", "rebuild"],
)
def test_a_load_killed_mid_copy_leaves_the_previous_data_and_no_stray_tables(
    pg, database_url, mode, rebuild
):
    dataset = make_dataset(mode)
    load_bytes(pg, dataset, b"a,b\n-1,old\n", "old.csv")
    before = rows(pg, dataset, "L0")
    script = textwrap.dedent(
        f"""
        import sys, time, psycopg
        from pipelines.datasets import Mode
        from pipelines.loading import load_file
        from tests.pipelines.conftest import make_dataset, read_chunks

        def chunks():
            yield b"a,b\\n"
            for number in range(1000):
                yield f"{{number}},x\\n".encode()
            print("copying", flush=True)
            time.sleep(60)

        with psycopg.connect(sys.argv[1], autocommit=True) as conn:
            dataset = make_dataset(Mode.{mode.name})
            files = read_chunks(chunks(), dataset, "killed.csv")
            load_file(conn, dataset, files, datafile="killed.csv", rebuild={rebuild})
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

    assert rows(pg, dataset, "L0") == before
    # The killed load's lock goes with its session: the next load goes through, and by then
    # nothing of the killed one is left.
    load_bytes(pg, dataset, b"a,b\n5,new\n", "next.csv")
    relations = pg.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = %s AND relkind = 'r'",
        (dataset.schema,),
    ).fetchall()
    assert relations == [("L0",)]
    assert (5, "new") in rows(pg, dataset, "L0", "a, b")


def test_a_second_load_of_a_dataset_waits_for_the_first(pg, conninfo, caplog):
    dataset = make_dataset(Mode.INCREMENTAL)
    load_bytes(pg, dataset, b"a,b\n1,first\n", "first.csv")
    caplog.set_level(logging.INFO, logger="pipelines.locking")

    with psycopg.connect(conninfo, autocommit=True) as holder:
        with holder.transaction():
            lock_dataset_for_transaction(holder, dataset.schema)
            second = threading.Thread(
                target=load_bytes, args=(pg, dataset, b"a,b\n2,second\n", "second.csv")
            )
            second.start()
            time.sleep(0.3)
            assert second.is_alive()
            assert count_rows(holder, dataset.schema) == 1
        second.join(timeout=5)

    assert not second.is_alive()
    assert rows(pg, dataset, "L0", "a") == [(1,), (2,)]
    assert "another run is loading this dataset; waiting" in caplog.text
