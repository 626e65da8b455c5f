"""Benchmark of the loading engine against a plain COPY, measured in the same run.

    python bench/ingest.py [--rows 1000000] [--repeat 2] [--no-scale-check] [--cases a,b]
                           [--documents 5000]

Generates a CSV of ``--rows`` rows x 10 columns (text, integer, numeric, date; ~100 MB per
million rows) under bench/data/, then loads it, each load in its own process:

  (a) baseline: COPY FROM STDIN into a plain table through psycopg;
  (b) the engine (reading layer included), incremental mode;
  (c) the engine, snapshot mode;
  (d) a Windows-1252 file of the same rows (with accented names) into a Windows-1252
      incremental source, against its own baseline: a plain COPY of that file with
      ENCODING WIN1252;
  (e) a zip of the same rows split into four members into an incremental source taking
      every member, against its own baseline: the members read with zipfile and COPYed;

  (f) the ONS postcode directory's shape: 50 quoted text columns, read from the CSV member of
      a release zip by the ONS source's own file format, into an incremental L0, against its
      own baseline: a plain COPY of the unzipped CSV (target >= 0.7x);

each into an empty dataset; and for information: the same file loaded a second time by (b)
and (c) (an append; a file whose rows are all present already), and the snapshot row hash
md5(ROW(...)::text) alone over the file's rows in one process (the engine spreads it over
parallel workers where it can);

and the Companies House parser's documents per second over a generated bulk zip of iXBRL
documents (``--documents``; parsing alone, and parsing and loading);

and prints rows per second, the ratio to (a), and each loading process's peak memory
(maximum resident set size), the best of ``--repeat`` rounds of every case. The scale check
loads a file five times larger with (b) and (c) and compares their peak memory. Targets:
(b) >= 0.7x, (c) >= 0.35x, peak <= 150 MB and within 20% at five times the size; (d) and
(e) are given for information.

Database: DATABASE_URL, or postgres://postgres@127.0.0.1:5432/dss_bench (created if missing).
"""

import argparse
import contextlib
import json
import os
import random
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.archives import open_member, zip_members  # noqa: E402
from pipelines.catalogue import (  # noqa: E402
    ONS_COLUMNS,
    companies_house_accounts,
    ons_postcode_directory,
)
from pipelines.companies_house import parse_accounts  # noqa: E402
from pipelines.datasets import Column, Dataset, FileFormat, Mode  # noqa: E402
from pipelines.loading import load_file  # noqa: E402
from pipelines.reading import CHUNK_SIZE, ReadFile, read_stream  # noqa: E402
from pipelines.steps import RowsAsCsv  # noqa: E402

DATA_DIR = ROOT / "bench" / "data"
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dss_bench"
COLUMNS = (
    Column("name", "text"),
    Column("city", "text"),
    Column("code", "text"),
    Column("note", "text"),
    Column("quantity", "integer"),
    Column("year", "integer"),
    Column("price", "numeric"),
    Column("weight", "numeric"),
    Column("start_date", "date"),
    Column("end_date", "date"),
)
TARGETS = {"incremental": 0.7, "snapshot": 0.35}
CASES = (
    "baseline",
    "incremental",
    "snapshot",
    "incremental-again",
    "snapshot-again",
    "md5-only",
    "cp1252-baseline",
    "cp1252-incremental",
    "zip-baseline",
    "zip-incremental",
    "ons-baseline",
    "ons-incremental",
)
# The baseline each case's ratio is taken against (the plain COPY of the same rows).
BASELINES = {
    "cp1252-incremental": "cp1252-baseline",
    "zip-incremental": "zip-baseline",
    "ons-incremental": "ons-baseline",
}
TARGETS["ons-incremental"] = 0.7
ONS_MEMBER = "Data/ONSPD_MAY_2019_UK.csv"
# Columns the ONSPD leaves unquoted.
ONS_UNQUOTED = {"lat", "long", "imd"}
ACCOUNTS_CASES = ("accounts-parse", "accounts-load")
CITIES = ["London", "Leeds", "Cardiff", "Belfast", "Glasgow", "Bristol", "York"]
ACCENTED_CITIES = ["Z\u00fcrich", "Besan\u00e7on", "Malm\u00f6", "K\u00f8ge", "Le\u00f3n", "York"]
ZIP_MEMBERS = 4
PEAK_LIMIT_MB = 150
SCALE_TOLERANCE = 0.2


def dataset(mode: Mode, variant: str = "") -> Dataset:
    if variant == "ons":
        # The ONS source's L0 columns and file format (its member pattern, quoted empties).
        ons = ons_postcode_directory.dataset
        return Dataset("bench", "ons", mode, ons.columns, file_format=ons.file_format)
    file_format = FileFormat()
    if variant == "cp1252":
        file_format = FileFormat(encoding="cp1252")
    elif variant == "zip":
        file_format = FileFormat(member_pattern=r"\.csv$", many_members=True)
    name = f"{variant}_{mode.value}" if variant else mode.value
    return Dataset("bench", name, mode, COLUMNS, file_format=file_format)


def generate(path: Path, rows: int, cities: list[str] = CITIES, encoding: str = "utf-8") -> None:
    """Write a deterministic CSV of ``rows`` rows (header included)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    start = date(2000, 1, 1)
    partial = path.with_suffix(".partial")
    with partial.open("w", newline="", encoding=encoding) as out:
        out.write(",".join(column.name for column in COLUMNS) + "\n")
        for number in range(rows):
            first = start + timedelta(days=rng.randrange(9000))
            out.write(
                f"{rng.choice(words)} {rng.choice(words)} {number},"
                f"{rng.choice(cities)},"
                f"C{rng.randrange(10**8):08d},"
                f'"{rng.choice(words)}, {rng.choice(words)} and {rng.choice(words)}",'
                f"{rng.randrange(100000)},"
                f"{rng.randrange(1990, 2030)},"
                f"{rng.randrange(10**7) / 100:.2f},"
                f"{rng.random() * 1000:.4f},"
                f"{first.isoformat()},"
                f"{(first + timedelta(days=rng.randrange(400))).isoformat()}\n"
            )
    partial.rename(path)


def ons_value_pools() -> dict[str, list[str]]:
    """Values in each ONSPD column's shape: postcodes, YYYYMM dates, GSS codes, grid
    references, coordinates; a few thousand per column, combined row by row."""
    rng = random.Random(50)
    letters = "ABCDEFGHJKLMNOPRSTUWYZ"
    pools = {}
    for name in ONS_COLUMNS:
        if name in ("pcd", "pcd2", "pcds"):
            values = [
                f"{rng.choice(letters)}{rng.choice(letters)}{rng.randrange(1, 99)} "
                f"{rng.randrange(10)}{rng.choice(letters)}{rng.choice(letters)}"
                for _ in range(5003)
            ]
        elif name in ("dointr", "doterm"):
            values = [f"{rng.randrange(1980, 2020)}{rng.randrange(1, 13):02d}" for _ in range(997)]
            if name == "doterm":
                values = values[:50] + [""] * 947  # most postcodes are live
        elif name in ("lat", "long"):
            values = [f"{rng.uniform(-8, 58):.6f}" for _ in range(4001)]
        elif name in ("oseast1m", "osnrth1m", "imd"):
            values = [str(rng.randrange(10**5, 10**6)) for _ in range(3001)]
        else:
            values = [f"E{rng.randrange(10**8):08d}" for _ in range(1009)]
        pools[name] = values
    return pools


def generate_ons(path: Path, rows: int) -> None:
    """A release zip: ``ONS_MEMBER`` (``rows`` rows) beside documentation and macOS debris;
    and the same CSV unzipped beside it (the baseline's file)."""
    csv_path = path.with_suffix(".csv")
    if path.exists() and csv_path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    pools = ons_value_pools()
    columns = [(name, pools[name], name in ONS_UNQUOTED) for name in ONS_COLUMNS]
    partial = csv_path.with_suffix(".partial")
    with partial.open("w", newline="") as out:
        out.write(",".join(f'"{name}"' for name in ONS_COLUMNS) + "\r\n")
        for number in range(rows):
            fields = []
            for index, (_, pool, unquoted) in enumerate(columns):
                value = pool[(number * (index + 7) + index) % len(pool)]
                fields.append(value if unquoted or value == "" else f'"{value}"')
            out.write(",".join(fields) + "\r\n")
    partial.rename(csv_path)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("Documents/", b"")
        archive.writestr("Documents/ONSPD User Guide.pdf", b"%PDF-1.4 not really" * 100)
        archive.writestr("__MACOSX/Data/._ONSPD_MAY_2019_UK.csv", b"\0\5\26\7")
        archive.write(csv_path, ONS_MEMBER)
    partial.rename(path)


def generate_accounts(path: Path, documents: int) -> None:
    """A bulk accounts zip of ``documents`` iXBRL documents (two periods each, a dozen
    values), named as Companies House names them."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    template = (ROOT / "bench" / "accounts_template.html").read_text()
    rng = random.Random(documents)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for number in range(documents):
            values = {f"v{index}": f"{rng.randrange(10**6):,}" for index in range(12)}
            document = template.format(company=f"{number:08d}", name=f"Company {number}", **values)
            archive.writestr(
                f"Accounts_Bulk_Data/Prod224_0001_{number:08d}_20200331.html", document
            )
    partial.rename(path)


def generate_zip(path: Path, source: Path) -> None:
    """Zip ``source``'s rows as ``ZIP_MEMBERS`` CSV members, each with the header."""
    if path.exists():
        return
    partial = path.with_suffix(".partial")
    with (
        source.open("rb") as lines,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
    ):
        header = lines.readline()
        rows = sum(1 for _ in lines)
        lines.seek(0)
        lines.readline()
        per_member = -(-rows // ZIP_MEMBERS)
        for number in range(ZIP_MEMBERS):
            with archive.open(f"part_{number}.csv", "w") as member:
                member.write(header)
                for _, line in zip(range(per_member), lines, strict=False):
                    member.write(line)
    partial.rename(path)


def prepare(url: str) -> None:
    """Create the database if missing and drop what earlier runs left."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    try:
        psycopg.connect(url).close()
    except psycopg.OperationalError:
        with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute('DROP SCHEMA IF EXISTS "bench.accounts" CASCADE')
        for mode in Mode:
            for variant in ("", "cp1252", "zip", "ons"):
                schema = dataset(mode, variant).schema
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
        conn.execute("DROP TABLE IF EXISTS bench_baseline")


def work(case: str, path: Path, url: str) -> dict:
    """Run one load in this process; return its row count and wall time.

    ``<mode>-again`` loads the file once untimed, then times loading it a second time (an
    append for incremental, a file whose rows are all present already for snapshot).
    """
    with psycopg.connect(url, autocommit=True) as conn:
        if case in ACCOUNTS_CASES:
            return _accounts(conn, path, load=case == "accounts-load")
        if case.endswith("baseline"):
            variant = case.partition("-")[0] if "-" in case else ""
            checkpoint(conn)
            started = time.perf_counter()
            rows = _baseline(conn, variant_file(path, variant), variant)
            return {"rows": rows, "seconds": time.perf_counter() - started}
        if case == "md5-only":
            return _hash_only(conn, path)
        variant = ""
        if case.startswith(("cp1252-", "zip-", "ons-")):
            variant, _, case = case.partition("-")
            path = variant_file(path, variant)
        mode, _, again = case.partition("-")
        definition = dataset(Mode(mode), variant)
        if again:
            _engine_load(conn, definition, path, "first")
        checkpoint(conn)
        started = time.perf_counter()
        rows = _engine_load(conn, definition, path, "timed")
        return {"rows": rows, "seconds": time.perf_counter() - started}


def _accounts(conn: psycopg.Connection, path: Path, load: bool) -> dict:
    """Parse every document of the bulk zip (and with ``load``, load the rows as the source
    does); the documents and the time taken."""
    definition = Dataset(
        "bench",
        "accounts",
        Mode.INCREMENTAL,
        companies_house_accounts.dataset.columns,
    )
    started = time.perf_counter()
    with path.open("rb") as stream:
        parsed = parse_accounts(stream, path.name)
        if load:
            csv_stream = RowsAsCsv(definition.column_names, parsed.rows)
            files = iter([read_stream(csv_stream, definition, path.name)])
            rows = load_file(conn, definition, files, datafile=path.name).rows_read
        else:
            rows = sum(1 for _ in parsed.rows)
    seconds = time.perf_counter() - started
    with zipfile.ZipFile(path) as archive:
        documents = len(archive.infolist())
    return {"rows": documents, "seconds": seconds, "table_rows": rows}


def _hash_only(conn: psycopg.Connection, path: Path) -> dict:
    """Time only the snapshot row hash, md5(ROW(...)::text), over the file's rows."""
    columns = sql.SQL(", ").join(map(sql.Identifier, (column.name for column in COLUMNS)))
    conn.execute(
        sql.SQL("CREATE TEMPORARY TABLE staged ({})").format(
            sql.SQL(", ").join(
                sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type))
                for column in COLUMNS
            )
        )
    )
    with conn.cursor() as cursor, path.open("rb") as stream:
        with cursor.copy("COPY staged FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while chunk := stream.read(CHUNK_SIZE):
                copy.write(chunk)
        rows = cursor.rowcount
    started = time.perf_counter()
    conn.execute(sql.SQL("SELECT count(md5(ROW({})::text)) FROM staged").format(columns))
    return {"rows": rows, "seconds": time.perf_counter() - started}


def variant_file(path: Path, variant: str) -> Path:
    """The bench file of a variant: the same rows in Windows-1252, or zipped in members."""
    if variant == "cp1252":
        return path.with_name(path.stem + "_cp1252.csv")
    if variant == "zip":
        return path.with_suffix(".zip")
    if variant == "ons":
        return path.with_name(path.stem + "_ons.zip")
    return path


def _engine_load(conn: psycopg.Connection, definition: Dataset, path: Path, name: str) -> int:
    with path.open("rb") as stream, contextlib.ExitStack() as stack:
        if path.suffix == ".zip":
            members = zip_members(stream, definition.file_format, stack)
            files = _member_files(members, definition)
        else:
            files = iter([read_stream(stream, definition, path.name)])
        return load_file(conn, definition, files, datafile=name).rows_read


def _member_files(members: list, definition: Dataset) -> Iterator[ReadFile]:
    for member in members:
        with open_member(member) as opened:
            yield read_stream(opened, definition, member.path)


def checkpoint(conn: psycopg.Connection) -> None:
    """Start each timed load with no dirty pages left by the previous one."""
    with contextlib.suppress(psycopg.Error):  # not a superuser: the figures are noisier
        conn.execute("CHECKPOINT")


def _baseline(conn: psycopg.Connection, path: Path, variant: str = "") -> int:
    table_columns = COLUMNS
    if variant == "ons":
        table_columns = ons_postcode_directory.dataset.columns
        path = path.with_suffix(".csv")  # the unzipped CSV
        variant = ""
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type))
        for column in table_columns
    )
    encoding = "WIN1252" if variant == "cp1252" else "UTF8"
    statement = sql.SQL(
        "COPY bench_baseline FROM STDIN WITH (FORMAT csv, HEADER true, ENCODING {})"
    ).format(sql.Literal(encoding))
    # Table and rows in one transaction, as the engine creates a dataset's first tables.
    with conn.transaction(), conn.cursor() as cursor, path.open("rb") as stream:
        cursor.execute(sql.SQL("CREATE TABLE bench_baseline ({})").format(columns))
        if variant != "zip":
            with cursor.copy(statement) as copy:
                while chunk := stream.read(CHUNK_SIZE):
                    copy.write(chunk)
            return cursor.rowcount
        rows = 0
        with zipfile.ZipFile(stream) as archive:
            for info in archive.infolist():
                with archive.open(info) as member, cursor.copy(statement) as copy:
                    while chunk := member.read(CHUNK_SIZE):
                        copy.write(chunk)
                rows += cursor.rowcount
        return rows


def measure(case: str, path: Path, url: str) -> dict:
    """Run ``case`` in a child process; add its peak resident memory in MB."""
    prepare(url)
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", case, "--file", str(path)],
        stdout=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": url},
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{case} load failed (status {status})")
    result = json.loads(output)
    result["peak_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-scale-check", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best counts")
    parser.add_argument("--cases", help="only these cases, comma-separated (default: all)")
    parser.add_argument("--documents", type=int, default=5000, help="Companies House documents")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if arguments.worker:
        print(json.dumps(work(arguments.worker, Path(arguments.file), url)))
        return

    cases = arguments.cases.split(",") if arguments.cases else [*CASES, *ACCOUNTS_CASES]
    path = DATA_DIR / f"bench_{arguments.rows}.csv"
    if any(not case.startswith(("ons-", "accounts-")) for case in cases):
        generate(path, arguments.rows)
        generate(variant_file(path, "cp1252"), arguments.rows, ACCENTED_CITIES, "cp1252")
        generate_zip(variant_file(path, "zip"), path)
        size_mb = path.stat().st_size / 1e6
        print(
            f"file: {path.name}, {arguments.rows:,} rows x {len(COLUMNS)} columns, {size_mb:.0f} MB"
        )
    if any(case.startswith("ons-") for case in cases):
        ons = variant_file(path, "ons")
        generate_ons(ons, arguments.rows)
        print(
            f"ONS file: {ons.name}, {arguments.rows:,} rows x {len(ONS_COLUMNS)} columns, "
            f"{ons.with_suffix('.csv').stat().st_size / 1e6:.0f} MB unzipped"
        )
    accounts = DATA_DIR / f"accounts_{arguments.documents}.zip"
    if any(case in ACCOUNTS_CASES for case in cases):
        generate_accounts(accounts, arguments.documents)
    # Best of --repeat rounds: other processes on the machine only ever slow a run down. Each
    # round runs every case, so a busy spell slows the baseline as much as the engine.
    runs = {case: [] for case in cases if case not in ACCOUNTS_CASES}
    document_runs = {case: [] for case in cases if case in ACCOUNTS_CASES}
    for _ in range(arguments.repeat):
        for case in runs:
            runs[case].append(measure(case, path, url))
        for case in document_runs:
            document_runs[case].append(measure(case, accounts, url))
    results = {}
    for case, case_runs in runs.items():
        results[case] = min(case_runs, key=lambda run: run["seconds"])
        results[case]["peak_mb"] = max(run["peak_mb"] for run in case_runs)
    print(f"{'load':<24}{'seconds':>9}{'rows/s':>12}{'ratio':>8}{'target':>8}{'peak MB':>9}")
    for case, result in results.items():
        rate = result["rows"] / result["seconds"]
        baseline = (
            result if case.endswith("baseline") else results.get(BASELINES.get(case, "baseline"))
        )
        ratio = rate / (baseline["rows"] / baseline["seconds"]) if baseline else float("nan")
        target = TARGETS.get(case)
        print(
            f"{case:<24}{result['seconds']:>9.2f}{rate:>12,.0f}{ratio:>8.2f}"
            f"{(f'>={target}' if target else ''):>8}{result['peak_mb']:>9.1f}"
        )
    for case, case_runs in document_runs.items():
        best = min(case_runs, key=lambda run: run["seconds"])
        print(
            f"{case:<24}{best['seconds']:>9.2f}{best['rows'] / best['seconds']:>12,.0f} "
            f"documents/s ({best['rows']:,} documents, {best['table_rows']:,} rows), "
            f"peak {max(run['peak_mb'] for run in case_runs):.1f} MB"
        )
    if arguments.no_scale_check or "incremental" not in results or "snapshot" not in results:
        return
    large_rows = arguments.rows * 5
    large = DATA_DIR / f"bench_{large_rows}.csv"
    generate(large, large_rows)
    print(f"scale check: {large.name}, {large.stat().st_size / 1e6:.0f} MB")
    for case in ("incremental", "snapshot"):
        result = measure(case, large, url)
        growth = result["peak_mb"] / results[case]["peak_mb"] - 1
        verdict = (
            "ok" if growth <= SCALE_TOLERANCE and result["peak_mb"] <= PEAK_LIMIT_MB else "MISSED"
        )
        print(
            f"{case:<12} 5x: {result['peak_mb']:.1f} MB peak vs {results[case]['peak_mb']:.1f} MB "
            f"({growth:+.0%}, limit +{SCALE_TOLERANCE:.0%}) {verdict}; "
            f"{result['rows'] / result['seconds']:,.0f} rows/s"
        )


if __name__ == "__main__":
    main()
