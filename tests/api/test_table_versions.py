# ruff: noqa: F811
"""A read that follows `next` ends on the version of the table it began on, while another
process reloads the table; a version no longer kept answers 410; retained versions are never
served as tables of their own."""

import os
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from django.db import connection

from api import pages
from api.served_tables import find_table
from pipelines.datasets import Mode
from pipelines.loading import load_file
from pipelines.reading import read_bytes
from pipelines.versions import SCHEMA, drop_expired
from tests.api.reloads import DATASET, expected_rows, load_version

# The engine tests' fixtures of a committing connection (pytest finds them imported here).
from tests.pipelines.conftest import conninfo, load_bytes, make_dataset, pg  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
HOST = "http://testserver"


@pytest.fixture
def served(pg, tables):
    """DATASET's table at version 0, served; the id of that version."""
    tables.serve(DATASET.schema)
    return load_version(pg, DATASET, 0)


def path(url: str) -> str:
    return url.removeprefix(HOST)


def version_of(url: str) -> int:
    return int(parse_qs(urlsplit(url).query)["version"][0])


def read_all(hawk_get, first: str, pause: float = 0.0) -> tuple[int | None, list, list[int]]:
    """Follow `next` from ``first``: (the version of the read, its rows, statuses)."""
    rows, statuses, version = [], [], None
    url = first
    while url:
        response = hawk_get(url)
        statuses.append(response.status_code)
        if response.status_code != 200:
            break
        page = response.json()
        rows += [tuple(values) for values in page["values"]]
        url = page["next"] and path(page["next"])
        if url:
            version = version_of(url)
        time.sleep(pause)
    return version, rows, statuses


def test_reads_by_next_while_another_process_reloads_end_on_the_version_they_began_on(
    served,
    conninfo,
    hawk_get,
    settings,
):
    settings.PAGINATION_SIZE = 7
    settings.TABLE_VERSION_RETENTION = timedelta(seconds=60)
    versions = {served: 0}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "dss.test_settings"}
    reloader = subprocess.Popen(
        [sys.executable, "-m", "tests.api.reloads", conninfo, "8", "0.3"],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
        text=True,
    )

    def follow() -> None:
        for line in reloader.stdout:
            version, k = map(int, line.split())
            versions[version] = k

    listener = threading.Thread(target=follow)
    listener.start()
    reads, spanning = 0, 0
    try:
        while reloader.poll() is None:
            known_before = len(versions)
            version, rows, statuses = read_all(
                hawk_get, "/api/v1/table-data/test.reloaded/L0", pause=0.02
            )
            assert set(statuses) == {200}, statuses
            deadline = time.monotonic() + 30
            while version not in versions and time.monotonic() < deadline:
                time.sleep(0.05)
            assert version in versions, (version, versions)
            # Row by row, the version the read began on.
            assert rows == expected_rows(versions[version]), versions[version]
            reads += 1
            spanning += len(versions) > known_before
    finally:
        reloader.wait(timeout=60)
        listener.join()
    assert reloader.returncode == 0
    assert reads >= 5
    # Loads committed during a good part of the reads.
    assert spanning >= 3, (reads, spanning)


def first_page_then_swap(pg, hawk_get, settings) -> dict:
    """The first page (10 rows) of DATASET's version 0, read before version 1 swaps in."""
    settings.PAGINATION_SIZE = 10
    first = hawk_get("/api/v1/table-data/test.reloaded/L0").json()
    load_version(pg, DATASET, 1)  # a swap
    return first


def test_a_page_of_a_version_kept_past_its_retention_answers_410_with_a_json_error(
    served,
    pg,
    hawk_get,
    settings,
):
    first = first_page_then_swap(pg, hawk_get, settings)
    second = hawk_get(path(first["next"]))
    assert second.status_code == 200
    assert second.json()["values"][0] == list(expected_rows(0)[10])
    settings.TABLE_VERSION_RETENTION = timedelta(seconds=1)
    time.sleep(1.2)

    gone = hawk_get(path(second.json()["next"]))

    assert gone.status_code == 410
    message = gone.json()["error"]
    assert "test.reloaded.L0 was replaced since this read began" in message
    assert f"version {version_of(first['next'])} is no longer kept" in message
    assert "start the read again" in message
    # Started again, the read gets the new version whole.
    assert read_all(hawk_get, "/api/v1/table-data/test.reloaded/L0")[1] == expected_rows(1)


def test_an_append_keeps_the_earlier_version_readable_until_its_retention_is_over(
    served,
    pg,
    hawk_get,
    settings,
):
    settings.PAGINATION_SIZE = 10
    load_version(pg, DATASET, 1)
    first = hawk_get("/api/v1/table-data/test.reloaded/L0").json()
    load_version(pg, DATASET, 2)  # an append in place to version 1

    version, rows, statuses = read_all(hawk_get, path(first["next"]))

    assert statuses == [200] * len(statuses)
    assert [tuple(row) for row in first["values"]] + rows == expected_rows(1)
    assert expected_rows(2) != expected_rows(1)
    # The retention counts from the time the version was replaced.
    settings.TABLE_VERSION_RETENTION = timedelta(seconds=1)
    time.sleep(1.2)
    assert hawk_get(path(first["next"])).status_code == 410


def test_a_retained_table_dropped_once_expired_answers_410_and_frees_its_table(
    served,
    pg,
    hawk_get,
    settings,
):
    first = first_page_then_swap(pg, hawk_get, settings)
    retained = pg.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = %s AND relkind = 'r' AND relname <> 'versions'",
        (SCHEMA,),
    ).fetchall()
    assert len(retained) == 1
    time.sleep(0.1)
    with pg.transaction(), pg.cursor() as cursor:
        assert drop_expired(cursor, timedelta(seconds=0)) == [retained[0][0]]

    gone = hawk_get(path(first["next"]))

    assert gone.status_code == 410
    assert "was replaced" in gone.json()["error"]


def test_a_read_begun_before_a_snapshot_load_deleted_rows_ends_on_its_version(
    pg,
    tables,
    hawk_get,
    settings,
):
    dataset = make_dataset(Mode.SNAPSHOT, name="shrinking", delete_previous=True)
    tables.serve(dataset.schema)
    settings.PAGINATION_SIZE = 2
    load_bytes(pg, dataset, b"a,b\n1,x\n2,y\n3,z\n4,w\n5,v\n", "one.csv")
    first = hawk_get("/api/v1/table-data/test.shrinking/L0").json()
    load_bytes(pg, dataset, b"a,b\n1,x\n5,v\n6,u\n", "two.csv")

    _, rows, statuses = read_all(hawk_get, path(first["next"]))

    assert set(statuses) == {200}
    assert [row[1] for row in [*map(tuple, first["values"]), *rows]] == [1, 2, 3, 4, 5]
    again = read_all(hawk_get, "/api/v1/table-data/test.shrinking/L0")[1]
    assert [row[1] for row in again] == [1, 5, 6]


@pytest.mark.parametrize("endpoint", ["table-data", "table-structure"])
def test_retained_tables_are_never_served_as_tables_of_their_own(
    served,
    pg,
    hawk_get,
    endpoint,
):
    load_version(pg, DATASET, 1)
    [(name,)] = pg.execute(
        "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE nspname = %s AND relkind = 'r' AND relname <> 'versions'",
        (SCHEMA,),
    ).fetchall()
    for table in (name, "versions"):
        assert hawk_get(f"/api/v1/{endpoint}/{SCHEMA}/{table}").status_code == 404
    structure = hawk_get("/api/v1/table-structure/test.reloaded/L0").json()
    assert [column["name"] for column in structure["columns"]] == ["id", "a", "b"]


@pytest.mark.parametrize(("value", "message"), [("x", "whole number"), ("0", "at least 1")])
def test_a_version_that_is_not_a_version_number_is_refused(served, hawk_get, value, message):
    response = hawk_get(f"/api/v1/table-data/test.reloaded/L0?version={value}")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_version_of_another_table_is_not_kept_for_this_one(served, tables, hawk_get):
    tables.create("acme.other", "L0", {"name": "text"}, [("a",)])
    response = hawk_get(f"/api/v1/table-data/acme.other/L0?version={served}")
    assert response.status_code == 410


def test_a_first_page_asked_for_during_a_swap_begins_on_the_swap_s_version(served, conninfo):
    """The first page's version lookup waits for the swap that holds the table, then finds
    the version the swap recorded (it once resolved the replaced table's name, matched no
    version and recorded a needless one)."""
    table = find_table(DATASET.schema, "L0")
    found: list[int] = []

    def first_page_version() -> None:
        with connection.cursor():  # this thread's own connection to the test database
            found.append(pages.current_version(table))

    with psycopg.connect(conninfo) as swapper:
        with swapper.transaction():
            data = b"a,b\n" + b"".join(b"%d,swapped\n" % n for n in range(5))
            files = [read_bytes(data, DATASET, "swap.csv")]
            load_file(swapper, DATASET, files, datafile="swap.csv", rebuild=True)
            swapped = swapper.execute(
                "SELECT max(id) FROM dss_versions.versions WHERE schema_name = %s",
                (DATASET.schema,),
            ).fetchone()[0]
            reader = threading.Thread(target=first_page_version)
            reader.start()
            time.sleep(0.5)  # the reader waits for the swap's lock
            assert reader.is_alive()
        reader.join(timeout=30)

    assert found == [swapped]
