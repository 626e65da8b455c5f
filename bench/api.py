"""Benchmark of the API's table-data pages through the real HTTP stack.

Builds a 1,000,000-row, 10-column dataset table, starts gunicorn (2 workers) on an ephemeral
port of 127.0.0.1, signs every request with mohawk as data-flow does (and verifies every
Server-Authorization), and prints:

(a) pages per second at page size 1000, one client after another (sequential), against a
    baseline measured in this run: the same SQL run here with psycopg and the rows
    JSON-encoded with the standard library in a plain loop (no HTTP, no HAWK); every page is
    asked for as a `next` link asks for it, with the version token of the table;
(b) the time of page 1 against page 900 (keyset pagination should not slow down);
(c) a full pull of the table by following ``next``, in rows per second.

Usage (the database of DATABASE_URL, or the embedded one, gets a schema "bench.api"):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dss_bench .venv/bin/python bench/api.py
    options: --rows N, --sample-pages N, --redis URL (nonces in Redis), --keep (keep the table
    and reuse it next time)
"""

import argparse
import functools
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from io import BytesIO
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dss.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-key")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from mohawk import Sender  # noqa: E402

from api import pages  # noqa: E402
from api.models import HawkClient  # noqa: E402
from api.served_tables import find_table  # noqa: E402
from tests.api.servers import gunicorn, service_environment  # noqa: E402
from uploads.models import Pipeline  # noqa: E402

SCHEMA, TABLE = "bench.api", "L0"
PAGE_SIZE = 1000
ROUNDS = 3
CLIENT_ID, CLIENT_KEY = "bench-api", "bench-api-key-0123456789abcdef"
CREDENTIALS = {"id": CLIENT_ID, "key": CLIENT_KEY, "algorithm": "sha256"}

BUILD = """
CREATE SCHEMA "bench.api";
CREATE TABLE "bench.api"."L0" AS
SELECT g::bigint AS id,
       'name ' || g AS name,
       (g %% 1000)::integer AS category,
       g::bigint * 1000 AS big,
       (g / 7.0)::numeric(14, 4) AS amount,
       g / 3.0::double precision AS ratio,
       g %% 2 = 0 AS flag,
       date '2000-01-01' + (g %% 10000)::integer AS day,
       timestamp '2020-01-01' + g * interval '1 second' AS moment,
       md5(g::text) AS code
FROM generate_series(1, %s) AS g;
ALTER TABLE "bench.api"."L0" ADD PRIMARY KEY (id);
ANALYZE "bench.api"."L0";
"""


def existing_rows() -> int | None:
    with connection.cursor() as cursor:
        cursor.execute('SELECT to_regclass(\'"bench.api"."L0"\') IS NOT NULL')
        if not cursor.fetchone()[0]:
            return None
        cursor.execute('SELECT count(*) FROM "bench.api"."L0"')
        return cursor.fetchone()[0]


def build_table(rows: int) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA IF EXISTS "bench.api" CASCADE')
        for statement in BUILD.strip().split(";\n"):
            cursor.execute(statement, [rows] if "%s" in statement else None)
    return time.perf_counter() - started


def signed_get(session: requests.Session, url: str) -> tuple[requests.Response, int]:
    """GET ``url`` signed like data-flow, its Server-Authorization verified; the answer and
    its size."""
    sender = Sender(CREDENTIALS, url, "GET", content="", content_type="", always_hash_content=True)
    response = session.get(
        url, headers={"Authorization": sender.request_header, "Content-Type": ""}, timeout=60
    )
    response.raise_for_status()
    sender.accept_response(
        response.headers["Server-Authorization"],
        # A file-like body spares mohawk pretty-printing it for a debug message.
        content=BytesIO(response.content),
        content_type=response.headers["Content-Type"],
    )
    return response, len(response.content)


def page_url(base: str, start_id: int, orientation: str) -> str:
    """A page as a `next` link names it: with the version of the table the read began on."""
    return (
        f"{base}/api/v1/table-data/{SCHEMA}/{TABLE}?orientation={orientation}"
        f"&next-id={start_id}&version={table_version().id}"
    )


@functools.cache
def table_version() -> pages.Version:
    table = find_table(SCHEMA, TABLE)
    version = pages.current_version(table)
    return pages.Version(version, SCHEMA, TABLE, settings.TABLE_VERSION_RETENTION)


def http_pages_per_second(base: str, starts: list[int], orientation: str) -> tuple[float, int]:
    session = requests.Session()
    started = time.perf_counter()
    size = 0
    for start in starts:
        _, length = signed_get(session, page_url(base, start, orientation))
        size += length
    return len(starts) / (time.perf_counter() - started), size // len(starts)


def http_pages_per_second_concurrent(base: str, starts: list[int], orientation: str) -> float:
    halves = [starts[0::2], starts[1::2]]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda part: http_pages_per_second(base, part, orientation), halves))
    return len(starts) / (time.perf_counter() - started)


def baseline_pages_per_second(starts: list[int], orientation: str) -> float:
    """The same SQL as the API's, rows encoded by the standard library in a plain loop."""
    table = find_table(SCHEMA, TABLE)
    columns = [column for column in table.columns if column.name != "id"]
    names = ["id", *(column.name for column in columns)]
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor  # plain psycopg loaders: Decimal, str, ...
        started = time.perf_counter()
        for start in starts:
            query, params = pages.page_query(table, columns, start, PAGE_SIZE, table_version())
            cursor.execute(query, params)
            rows = cursor.fetchall()
            body = []
            for row in rows[:PAGE_SIZE]:
                values = [float(value) if isinstance(value, Decimal) else value for value in row]
                body.append(
                    dict(zip(names, values, strict=True)) if orientation == "records" else values
                )
            next_id = rows[PAGE_SIZE][0] if len(rows) > PAGE_SIZE else None
            key = "results" if orientation == "records" else "values"
            json.dumps({key: body, "next": next_id}).encode()
        return len(starts) / (time.perf_counter() - started)


def page_latency(base: str, start_id: int, repeats: int) -> float:
    session = requests.Session()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        signed_get(session, page_url(base, start_id, "records"))
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def full_pull(base: str) -> tuple[int, float]:
    session = requests.Session()
    url = f"{base}/api/v1/table-data/{SCHEMA}/{TABLE}?orientation=records"
    rows = 0
    started = time.perf_counter()
    while url:
        response, _ = signed_get(session, url)
        page = response.json()
        rows += len(page["results"])
        url = page["next"]
    return rows, time.perf_counter() - started


def main() -> None:
    # mohawk warns on every answer a client verifies (it keeps no nonces of answers).
    logging.getLogger("mohawk").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sample-pages", type=int, default=200)
    parser.add_argument("--redis", default="", help="keep nonces in this Redis (REDIS_URL)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the table afterwards (and reuse a kept one)"
    )
    options = parser.parse_args()

    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    if options.keep and existing_rows() == options.rows:
        print(f"reusing the {options.rows:,}-row table kept by an earlier run")
    else:
        print(f"building {options.rows:,} rows x 10 columns ...", flush=True)
        print(f"  built in {build_table(options.rows):.1f} s")
    HawkClient.objects.update_or_create(
        id=CLIENT_ID, defaults={"key": CLIENT_KEY, "scopes": ["table_data"]}
    )
    # The API serves only schemas the service created: register the table as an upload's.
    Pipeline.objects.get_or_create(organisation="bench", dataset="api")
    last_page = (options.rows - 1) // PAGE_SIZE
    step = max(1, last_page // options.sample_pages)
    starts = [page * PAGE_SIZE + 1 for page in range(0, last_page + 1, step)][
        : options.sample_pages
    ]
    variables = {"ALLOWED_HOSTS": "127.0.0.1", "DSS_PAGINATION_SIZE": str(PAGE_SIZE)}
    if options.redis:
        variables["REDIS_URL"] = options.redis
    with tempfile.TemporaryDirectory() as state:
        environment = service_environment(Path(state), **variables)
        try:
            with gunicorn(environment, Path(state) / "gunicorn.log", workers=2) as base:
                report(base, starts, options)
        finally:
            if not options.keep:
                with connection.cursor() as cursor:
                    cursor.execute('DROP SCHEMA IF EXISTS "bench.api" CASCADE')
            HawkClient.objects.filter(id=CLIENT_ID).delete()
            if not options.keep:
                Pipeline.objects.filter(organisation="bench", dataset="api").delete()


def report(base: str, starts: list[int], options: argparse.Namespace) -> None:
    cache = "Redis" if options.redis else "the database cache"
    print(f"gunicorn, 2 sync workers, nonces in {cache}; {len(starts)} sample pages")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    signed_get(requests.Session(), page_url(base, 1, "records"))  # warm both workers up
    signed_get(requests.Session(), page_url(base, 1, "records"))
    print()
    print(f"(a) pages/s at page size {PAGE_SIZE}, median of {ROUNDS} interleaved rounds")
    columns = ["API 1 client", "baseline", "ratio", "API 2 clients", "ratio", "page kB"]
    print(f"    {'orientation':<12}" + "".join(f"{name:>14}" for name in columns))
    for orientation in ("records", "tabular"):
        served, baseline, size = [], [], 0
        for _ in range(ROUNDS):
            baseline.append(baseline_pages_per_second(starts, orientation))
            rate, size = http_pages_per_second(base, starts, orientation)
            served.append(rate)
        concurrent = http_pages_per_second_concurrent(base, starts, orientation)
        served_median, baseline_median = statistics.median(served), statistics.median(baseline)
        print(
            f"    {orientation:<12}{served_median:>14.1f}{baseline_median:>14.1f}"
            f"{served_median / baseline_median:>13.2f}x{concurrent:>14.1f}"
            f"{concurrent / baseline_median:>13.2f}x{size / 1000:>14.0f}"
        )
    print("    API: clients sign each request and verify its Server-Authorization, one after")
    print("    another (1 client) or two at once (2 clients); baseline: the API's SQL run in this")
    print("    process, its rows json.dumps-ed in a plain loop, one thread; target ratio >= 0.5")
    print()
    first = page_latency(base, 1, repeats=31)
    deep_start = 899 * PAGE_SIZE + 1 if options.rows > 899 * PAGE_SIZE else starts[-1]
    deep = page_latency(base, deep_start, repeats=31)
    print("(b) median latency, records, 31 requests each")
    print(f"    page 1: {first * 1000:.1f} ms   page at id {deep_start:,}: {deep * 1000:.1f} ms")
    print(f"    ratio deep/first: {deep / first:.2f} (target <= 1.5)")
    print()
    rows, seconds = full_pull(base)
    print("(c) full pull following next (records, one client)")
    print(f"    {rows:,} rows in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
