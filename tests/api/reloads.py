"""A process that reloads one dataset table again and again, for readers to read across.

    python -m tests.api.reloads <conninfo> <versions> [pause seconds]

Version 0 is loaded by the test; this process loads versions 1 to ``versions``: odd ones
rebuild the table (a swap), even ones append to it in place. After each load it prints
``<version id of L0> <k>``. ``expected_rows(k)`` is version k's table, ``(id, a, b)`` rows.
"""

import sys
import time

import psycopg
from psycopg import sql

from pipelines.datasets import Dataset, Mode
from pipelines.loading import load_file
from pipelines.reading import read_bytes
from pipelines.versions import VERSIONS
from tests.pipelines.conftest import make_dataset

DATASET = make_dataset(Mode.INCREMENTAL, name="reloaded")


def rebuilds(k: int) -> bool:
    return k % 2 == 1 or k == 0


def file_rows(k: int) -> list[tuple[int, str]]:
    """The rows of version k's file: a rebuild's many, an append's few."""
    count = 40 + 9 * k if rebuilds(k) else 13
    return [(k * 1000 + number, f"v{k}") for number in range(count)]


def expected_rows(k: int) -> list[tuple[int, int, str]]:
    rows = file_rows(k)
    if not rebuilds(k):
        rows = [row[1:] for row in expected_rows(k - 1)] + rows
    return [(number, *row) for number, row in enumerate(rows, start=1)]


def load_version(conn: psycopg.Connection, dataset: Dataset, k: int) -> int:
    """Load version k; the id of the version of L0 it made."""
    data = "a,b\n" + "".join(f"{a},{b}\n" for a, b in file_rows(k))
    files = [read_bytes(data.encode(), dataset, f"v{k}.csv")]
    load_file(conn, dataset, files, datafile=f"v{k}.csv", rebuild=rebuilds(k))
    query = sql.SQL("SELECT max(id) FROM {} WHERE schema_name = %s AND table_name = 'L0'").format(
        VERSIONS
    )
    return conn.execute(query, (dataset.schema,)).fetchone()[0]


def main(conninfo: str, versions: int, pause: float) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for k in range(1, versions + 1):
            time.sleep(pause)
            print(load_version(conn, DATASET, k), k, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 0.4)
