"""A streamed load in a process of its own, for the tests that kill it or run two at once
(``tests/pipelines/test_copy_streams_killed.py``).

    python -m tests.pipelines.streamed_load CONNINFO FILE DATASET [--rebuild] [--rounds N]
        [--mark-chunk N]

Loads the CSV ``FILE`` (columns ``a,b``) into the incremental test dataset ``DATASET``
(``STREAMED_DATASET`` of that name: L0 and an L1), through ``pipelines.copy_streams`` from
``STREAMED_BYTES`` on. It prints ``ready`` once connected, then loads once for each line read
on stdin, ``--rounds`` times. Each load prints, one line each, as it passes them:

- ``locked``: the dataset's lock is taken;
- ``chunk N``: the ``--mark-chunk``-th chunk is handed to the streams (their COPY runs);
- ``committed``: the streams committed (the work table in dss_loads holds every row);
- ``keys``: L0's keys are about to be built;
- ``done``: the load committed.

The markers wrap the loader's functions and only print: what the load does is unchanged.
"""

import argparse
import logging
import sys
from collections.abc import Iterable, Iterator

import psycopg

from pipelines import copy_streams, loading
from pipelines.datasets import Dataset, Mode
from pipelines.reading import read_stream
from tests.pipelines.conftest import make_dataset
from tests.pipelines.test_versions import L1_DOUBLED

# Low enough that a file of a few MB is copied by the streams (the service's is 16 MiB).
STREAMED_BYTES = 1 << 20


def streamed_dataset(name: str) -> Dataset:
    """The incremental test dataset ``test.<name>`` with an L1 (a doubled)."""
    return make_dataset(Mode.INCREMENTAL, l1=L1_DOUBLED, name=name)


def mark(line: str) -> None:
    print(line, flush=True)


def add_markers(chunk_mark: int | None) -> None:
    """Print the markers as the loader passes them (module docstring)."""
    lock = loading.lock_dataset_for_transaction
    copy = copy_streams._Streams.copy
    leave = copy_streams._Streams.__exit__
    add_l0_keys = loading.add_l0_keys

    def locked(conn, schema):
        lock(conn, schema)
        mark("locked")

    def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
        for number, chunk in enumerate(chunks, 1):
            if number == chunk_mark:
                mark(f"chunk {number}")
            yield chunk

    def copying(self, statement, session, chunks, first_line):
        return copy(self, statement, session, counted(chunks), first_line)

    def left(self, kind, error, traceback):
        leave(self, kind, error, traceback)
        if error is None:
            mark("committed")

    def keys(*args):
        mark("keys")
        return add_l0_keys(*args)

    loading.lock_dataset_for_transaction = locked
    copy_streams._Streams.copy = copying
    copy_streams._Streams.__exit__ = left
    loading.add_l0_keys = keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("conninfo")
    parser.add_argument("file")
    parser.add_argument("dataset")
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--mark-chunk", type=int)
    options = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    copy_streams.STREAMED_BYTES = STREAMED_BYTES
    add_markers(options.mark_chunk)
    dataset = streamed_dataset(options.dataset)
    with psycopg.connect(options.conninfo, autocommit=True) as conn:
        mark("ready")
        for _ in range(options.rounds):
            sys.stdin.readline()
            with open(options.file, "rb") as stream:
                files = (read_stream(stream, dataset, "streamed.csv") for _ in range(1))
                loading.load_file(
                    conn, dataset, files, datafile="streamed.csv", rebuild=options.rebuild
                )
            mark("done")


if __name__ == "__main__":
    main()
