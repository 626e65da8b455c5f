"""Benchmark of the upload journey's engine: inspection, processing, and the web process's
memory while a large file streams in.

    python bench/upload.py [--rows 1000000] [--inspect-mb 500] [--stream-mb 1000] [--repeat 2]

Three figures, each from its own process:

  (1) inspection: the verify page's ``inspect_upload`` of a stored CSV of ``--inspect-mb``
      MB (its server time; it reads no further than ``DSS_UPLOAD_INFERENCE_ROWS`` rows);
      target <= 3 s;
  (2) processing: a verified upload of ``--rows`` rows (bench/ingest.py's rows, ~100 MB
      per million) loaded by ``uploads.processing.process``, against a plain COPY of the same
      file into a table of the same column types in the same process; target >= 0.8x;
      and for information a plain COPY into a table that also has an id drawn from a
      sequence and its primary key (the least a served table costs);
  (3) memory: the web service (gunicorn, one worker, the local login) receives a
      ``--stream-mb`` MB upload through its upload page; the worker's resident memory is
      sampled every 50 ms, and its peak before and during the upload is given.

Database: DATABASE_URL, or postgres://postgres@127.0.0.1:5432/dss_bench_uploads (created and
migrated if missing). Files are written under bench/data/.
"""

import argparse
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import DATA_DIR, checkpoint, generate  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dss_bench_uploads"
STORAGE_DIR = DATA_DIR / "upload-storage"
INSPECT_TARGET_SECONDS = 3.0
PROCESS_TARGET_RATIO = 0.8
PASSWORD = "bench-only-password"  # a throwaway local account of the bench database


def environment(url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dss.test_settings",
        "DATABASE_URL": url,
        "DSS_STORAGE_DIR": str(STORAGE_DIR),
        "DSS_ENV_FILE": os.devnull,
        "DSS_LOG_FORMAT": "text",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_COOKIES": "false",  # the bench speaks plain HTTP on 127.0.0.1
    }


def prepare(url: str) -> None:
    """Create the bench database if missing and migrate it; empty the bench's storage
    folder (the uploads of earlier runs)."""
    shutil.rmtree(STORAGE_DIR, ignore_errors=True)
    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=environment(url),
        check=True,
    )


def sized_file(megabytes: int) -> Path:
    """A bench CSV of about ``megabytes`` MB (bench/ingest.py's rows, ~100 bytes each)."""
    rows = megabytes * 8_800  # bench/ingest.py's rows are ~113 bytes
    path = DATA_DIR / f"upload-{rows}-rows.csv"
    generate(path, rows)
    return path


def setup_django() -> None:
    import django

    django.setup()


def store(path: Path):
    from uploads.journey import store_upload
    from uploads.models import Pipeline

    pipeline, _ = Pipeline.objects.get_or_create(organisation="bench", dataset="uploads")
    with path.open("rb") as stream:
        data_file = store_upload(pipeline, stream, path.name)
    assert data_file.state == "uploaded", data_file.error_message
    return data_file


def case_inspect(path: Path, repeat: int) -> dict:
    setup_django()
    from uploads.inspection import inspect_upload

    data_file = store(path)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        inspection = inspect_upload(data_file)
        times.append(time.perf_counter() - started)
    assert inspection.ok, inspection.problem
    return {
        "file_mb": path.stat().st_size / 1e6,
        "seconds": min(times),
        "rows_seen": inspection.rows_seen,
        "types": [column.type for column in inspection.columns],
    }


def case_process(path: Path, repeat: int) -> dict:
    setup_django()
    from django.db import connection

    from uploads.inspection import inspect_upload
    from uploads.journey import verify_upload
    from uploads.models import PipelineDataFile
    from uploads.processing import process

    data_file = store(path)
    inspection = inspect_upload(data_file)
    assert inspection.ok, inspection.problem
    verify_upload(data_file, inspection.names_and_types)
    connection.ensure_connection()
    conn = connection.connection
    engine, baseline, keyed = [], [], []
    rows = 0
    for _ in range(repeat):
        checkpoint(conn)
        baseline.append(_plain_copy(conn, path, inspection.names_and_types))
        checkpoint(conn)
        keyed.append(_plain_copy(conn, path, inspection.names_and_types, keyed=True))
        PipelineDataFile.objects.filter(pk=data_file.pk).update(state="verified")
        checkpoint(conn)
        started = time.perf_counter()
        state = process(str(data_file.pk))
        engine.append(time.perf_counter() - started)
        assert state == "completed", PipelineDataFile.objects.get(pk=data_file.pk).error_message
        rows = PipelineDataFile.objects.get(pk=data_file.pk).row_count
    return {
        "rows": rows,
        "engine_seconds": min(engine),
        "copy_seconds": min(baseline),
        "keyed_copy_seconds": min(keyed),
    }


def _plain_copy(conn: psycopg.Connection, path: Path, names_and_types, keyed=False) -> float:
    """COPY the file into a new plain table of the same types; the seconds it took.

    ``keyed``: the table also has what every served table needs, an ``id`` drawn from a
    sequence as the rows arrive and its primary key, added after the COPY; nothing else.
    """
    table = sql.Identifier("bench", "plain_copy")
    definitions = [
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
        for name, kind in names_and_types
    ]
    if keyed:
        definitions.insert(0, sql.SQL("id integer GENERATED BY DEFAULT AS IDENTITY (CACHE 1000)"))
    columns = sql.SQL(", ").join(definitions)
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in names_and_types)
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute("CREATE SCHEMA IF NOT EXISTS bench")
        cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE TABLE {} ({})").format(table, columns))
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)")
        with cursor.copy(statement.format(table, names)) as copy, path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
        if keyed:
            cursor.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(table))
    return time.perf_counter() - started


class _MultipartBody:
    """A multipart/form-data body streamed from a file (its length known up front), so the
    client never holds it in memory."""

    def __init__(self, path: Path, fields: dict[str, str], boundary: str):
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
        )
        self.parts = [
            io.BytesIO(head.encode()),
            path.open("rb"),
            io.BytesIO(f"\r\n--{boundary}--\r\n".encode()),
        ]
        self.length = sum(len(part.getvalue()) for part in self.parts[::2]) + path.stat().st_size

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        while self.parts:
            data = self.parts[0].read(size if size and size > 0 else 1 << 20)
            if data:
                return data
            self.parts.pop(0).close()
        return b""


def case_memory(path: Path, url: str) -> dict:
    import psutil

    env = environment(url)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup();"
            "from django.contrib.auth import get_user_model;"
            "from uploads.models import Pipeline;"
            "User = get_user_model();"
            "user = User.objects.filter(username='bench').first() or User(username='bench');"
            f"user.set_password({PASSWORD!r}); user.save();"
            "Pipeline.objects.get_or_create(organisation='bench', dataset='uploads')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "dss.wsgi",
            "--workers",
            "1",
            "--timeout",
            "600",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        session = _logged_in(base)
        worker = psutil.Process(server.pid).children()[0]
        idle_mb = worker.memory_info().rss / 1e6
        page = session.get(f"{base}/upload/bench-uploads/")
        page.raise_for_status()
        token = _csrf_token(session, page)
        peak = [worker.memory_info().rss]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], worker.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        boundary = "benchboundary7d3a"
        body = _MultipartBody(path, {"csrfmiddlewaretoken": token}, boundary)
        started = time.perf_counter()
        answer = session.post(
            f"{base}/upload/bench-uploads/",
            data=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Referer": f"{base}/upload/bench-uploads/",
            },
            allow_redirects=False,
            timeout=900,
        )
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        if answer.status_code != 302:
            raise SystemExit(f"upload answered {answer.status_code}: {answer.text[:500]}")
        return {
            "file_mb": path.stat().st_size / 1e6,
            "seconds": seconds,
            "idle_mb": idle_mb,
            "peak_mb": peak[0] / 1e6,
        }
    finally:
        server.terminate()
        server.wait(timeout=30)


def _logged_in(base: str):
    import requests

    session = requests.Session()
    for _ in range(100):
        try:
            login = session.get(f"{base}/login/", timeout=5)
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    token = _csrf_token(session, login)
    answer = session.post(
        f"{base}/login/",
        data={"csrfmiddlewaretoken": token, "username": "bench", "password": PASSWORD},
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
    )
    if answer.status_code != 302:
        raise SystemExit(f"login answered {answer.status_code}")
    return session


def _csrf_token(session, page) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    if found is None:
        raise SystemExit(
            f"{page.url} answered {page.status_code} without a form: {page.text[:300]}"
        )
    return found.group(1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_case(case: str, path: Path, url: str, repeat: int) -> dict:
    child = subprocess.run(
        [sys.executable, __file__, "--case", case, "--file", str(path), "--repeat", str(repeat)],
        cwd=ROOT,
        env=environment(url),
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        raise SystemExit(f"{case} failed:\n{child.stderr[-3000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--inspect-mb", type=int, default=500)
    parser.add_argument("--stream-mb", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--only", choices=["inspect", "process", "memory"], help="run one of the three"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if args.case:
        path = Path(args.file)
        cases = {"inspect": case_inspect, "process": case_process}
        print(json.dumps(cases[args.case](path, args.repeat)))
        return
    prepare(url)
    if args.only in (None, "inspect"):
        report_inspection(args, url)
    if args.only in (None, "process"):
        report_processing(args, url)
    if args.only in (None, "memory"):
        report_memory(args, url)


def report_inspection(args, url: str) -> None:
    inspected = run_case("inspect", sized_file(args.inspect_mb), url, args.repeat)
    print(
        f"inspection: {inspected['file_mb']:.0f} MB file, {inspected['rows_seen']:,} rows read, "
        f"{inspected['seconds']:.2f} s (target <= {INSPECT_TARGET_SECONDS:.0f} s)"
    )


def report_processing(args, url: str) -> None:
    rows_file = DATA_DIR / f"upload-{args.rows}-rows.csv"
    generate(rows_file, args.rows)
    processed = run_case("process", rows_file, url, args.repeat)
    ratio = processed["copy_seconds"] / processed["engine_seconds"]
    print(
        f"processing: {processed['rows']:,} rows in {processed['engine_seconds']:.2f} s; plain "
        f"COPY {processed['copy_seconds']:.2f} s; {ratio:.2f}x (target >= {PROCESS_TARGET_RATIO}x)"
    )
    keyed = processed["keyed_copy_seconds"]
    print(
        f"  for information: a plain COPY into a table with an id sequence, then its primary "
        f"key (what a served table needs, nothing more): {keyed:.2f} s, "
        f"{processed['copy_seconds'] / keyed:.2f}x of the plain COPY; processing is "
        f"{keyed / processed['engine_seconds']:.2f}x of it"
    )


def report_memory(args, url: str) -> None:
    streamed = case_memory(sized_file(args.stream_mb), url)
    print(
        f"upload stream: {streamed['file_mb']:.0f} MB in {streamed['seconds']:.1f} s; web worker "
        f"memory {streamed['idle_mb']:.0f} MB before, peak {streamed['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
