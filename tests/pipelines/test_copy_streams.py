"""A large file copied into a new table by several connections at once
(``pipelines.copy_streams``), against real PostgreSQL.

The threshold is lowered to 64 KiB and files are read in chunks of 16 KiB, so that files of
about 2 MB are streamed in over a hundred chunks. Each streamed load is compared with the
same file loaded by the load's own connection (``COPY_STREAMS = 1``): the same rows and ids,
the same error messages. That the streams really copied is read from the rows themselves:
each stream copies in a transaction of its own, so the rows of a streamed table carry as
many ``xmin`` as there were streams that took chunks (every stream, for a file that arrives
paced: ``read_paced``), those of a table filled by one COPY a single one.
"""

import faulthandler
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
import pytest
from psycopg import sql

from pipelines import copy_streams
from pipelines.copy_streams import WORK_SCHEMA, drop_abandoned_tables
from pipelines.datasets import Dataset, L1Column, Mode
from pipelines.loading import LoadError, LoadResult, load_file, swap_rebuilt_tables
from pipelines.locking import lock_dataset_for_transaction
from pipelines.reading import ReadError, ReadFile, read_bytes, read_stream
from tests.api.conftest import hawk_get  # noqa: F401 (fixture)
from tests.pipelines.conftest import ChunkStream, make_dataset, rows
from tests.uploads.builders import data_of, make_pipeline, rows_of, upload, verified
from uploads.models import Pipeline
from uploads.processing import process

STREAMED_BYTES = 64 << 10
READ_CHUNK = 16 << 10
COLUMNS = "n:integer note:text day:date"
# Rows of about 30 bytes: some 2 MB, 120 chunks of 16 KiB.
ROWS = 70_000
# Every BREAK_EVERY-th row's note holds a quoted line break: COPY counts it as a line, so
# the file's lines and its rows part ways.
BREAK_EVERY = 97


# A test taking longer has threads waiting for each other: the run ends, with their stacks.
STUCK_AFTER_SECONDS = 300


@pytest.fixture(autouse=True)
def streamed(monkeypatch, pg: psycopg.Connection) -> Iterator[None]:
    """Files above 64 KiB are streamed; ``dss_loads`` is emptied before and after. A test
    whose load hangs (streams waiting for a chunk that never comes) ends the test run with
    every thread's stack, instead of holding it up until CI's limit."""
    monkeypatch.setattr(copy_streams, "STREAMED_BYTES", STREAMED_BYTES)
    drop_abandoned_tables(pg)
    faulthandler.dump_traceback_later(STUCK_AFTER_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
    drop_abandoned_tables(pg)


@dataclass
class CsvFile:
    """A file of rows ``n, note, day`` (n = 1, 2, ... in file order) and the rows it loads
    as; ``lines[n]`` is the line on which row n ends, as COPY counts lines (the header is
    line 1, quoted line breaks count)."""

    data: bytes
    expected: list[tuple]
    lines: dict[int, int] = field(default_factory=dict)


def csv_file(
    count: int = ROWS,
    *,
    eol: bytes = b"\n",
    quoted_eol: bytes | None = None,
    days: dict[int, str] | None = None,
    replaced: dict[int, bytes] | None = None,
    first: int = 1,
    note: str = "note",
) -> CsvFile:
    """``count`` rows from n = ``first``, lines ending with ``eol``, line breaks in quoted
    values written ``quoted_eol`` (default ``eol``). Every 13th row has no day; a row in
    ``days`` has the day written there instead; a row in ``replaced`` (not one with a
    quoted line break) is written as the bytes given there. Their expected rows are then
    meaningless."""
    days = days or {}
    replaced = replaced or {}
    quoted_eol = quoted_eol or eol
    # COPY counts a quoted line break written with the character that ends the file's lines.
    counted = (b"\n" if eol == b"\n" else b"\r") in quoted_eol
    out = io.BytesIO()
    out.write(b"n,note,day" + eol)
    expected = []
    lines = {}
    line = 1
    for n in range(first, first + count):
        day = None if n % 13 == 0 else date(2024, 1, 1) + timedelta(days=n % 365)
        text = f"{note} {n}"
        if n % BREAK_EVERY == 0:
            text += quoted_eol.decode() + "continued, with a comma"
            line += counted
        line += 1
        lines[n] = line
        expected.append((n, n, text, day))
        quoted = f'"{text}"' if "," in text else text
        day_text = days.get(n, day.isoformat() if day else "")
        written = f"{n},{quoted},{day_text}".encode()
        out.write(replaced.get(n, written))
        if n != first + count - 1:
            out.write(eol)
    return CsvFile(out.getvalue(), expected, lines)


def difference(actual: list, expected: list) -> str | None:
    """None when the lists are equal, else where they first differ (pytest's own account
    of two lists of 70,000 rows that differ takes minutes to write)."""
    if actual == expected:
        return None
    index = next(
        (i for i, (a, e) in enumerate(zip(actual, expected, strict=False)) if a != e),
        min(len(actual), len(expected)),
    )
    found = actual[index] if index < len(actual) else "nothing"
    wanted = expected[index] if index < len(expected) else "nothing"
    return f"{len(actual)} rows for {len(expected)}; row {index}: {found!r}, not {wanted!r}"


def incremental(name: str = "things", **options) -> Dataset:
    return make_dataset(Mode.INCREMENTAL, COLUMNS, name=name, **options)


def load(
    pg: psycopg.Connection,
    dataset: Dataset,
    data: bytes,
    datafile: str = "big.csv",
    *,
    paced: bool = False,
    **options,
) -> LoadResult:
    """Load ``data`` as the file ``datafile``, read in chunks of 16 KiB (``paced``: arriving
    a millisecond apart, see ``read_paced``)."""
    read = read_paced if paced else read_bytes
    files = (read(data, dataset, datafile, chunk_size=READ_CHUNK) for _ in range(1))
    return load_file(pg, dataset, files, datafile=datafile, **options)


def read_paced(data: bytes, dataset: Dataset, label: str, chunk_size: int) -> ReadFile:
    """``data`` read as a file that arrives a chunk a millisecond (as from a network).

    So that every stream takes a share: read from memory, 2 MB are fed faster than a
    stream's thread starts, and the stream that started first may take them all (each
    buffers half a megabyte on its way to the server). Which stream takes a chunk does not
    change what is loaded, only how many transactions write the rows.
    """

    def arriving() -> Iterator[bytes]:
        for start in range(0, len(data), chunk_size):
            time.sleep(0.001)
            yield data[start : start + chunk_size]

    return read_stream(ChunkStream(arriving()), dataset, label, chunk_size=chunk_size)


def failure(pg: psycopg.Connection, dataset: Dataset, data: bytes, **options) -> LoadError:
    """The ``LoadError`` that loading ``data`` raises."""
    with pytest.raises(LoadError) as raised:
        load(pg, dataset, data, **options)
    return raised.value


def transactions(pg: psycopg.Connection, dataset: Dataset, where: str = "true") -> int:
    """How many transactions wrote the rows of the dataset's L0 (``where`` they are)."""
    return pg.execute(
        sql.SQL("SELECT count(DISTINCT xmin::text) FROM {} WHERE {}").format(
            sql.Identifier(dataset.schema, "L0"), sql.SQL(where)
        )
    ).fetchone()[0]


def written_by_other_transactions(pg: psycopg.Connection, schema: str) -> bool:
    """Whether no row of the new ``schema``.L0 was written by the transaction of the load
    that made it (the last to change its definition): true of a table the streams filled,
    however they shared the chunks."""
    table = sql.Identifier(schema, "L0")
    return pg.execute(
        sql.SQL(
            "SELECT NOT EXISTS (SELECT FROM {} WHERE xmin = "
            "(SELECT xmin FROM pg_class WHERE oid = to_regclass(%s)))"
        ).format(table),
        (table.as_string(pg),),
    ).fetchone()[0]


def work_tables(pg: psycopg.Connection) -> list[str]:
    """The datasets whose tables wait in dss_loads (a table's comment names its dataset)."""
    return [owner for _, owner in work_table_names(pg)]


def work_table_names(pg: psycopg.Connection) -> list[tuple[str, str]]:
    """The tables in dss_loads: (name, the dataset's schema)."""
    return pg.execute(
        "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r' "
        "ORDER BY 2, 1",
        (WORK_SCHEMA,),
    ).fetchall()


@dataclass
class Served:
    """A dataset whose L0 serves a small first file; the failures of later loads must leave
    it as it is."""

    dataset: Dataset
    before: list[tuple]

    def unchanged(self, pg: psycopg.Connection) -> bool:
        return rows(pg, self.dataset, "L0") == self.before and not rebuilt_table_left(
            pg, self.dataset
        )


def rebuilt_table_left(pg: psycopg.Connection, dataset: Dataset) -> bool:
    return pg.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        (sql.Identifier(dataset.schema, "L0.new").as_string(pg),),
    ).fetchone()[0]


@pytest.fixture
def served(pg: psycopg.Connection) -> Served:
    dataset = incremental()
    load(pg, dataset, b"n,note,day\n1,first,2024-01-31\n", "first.csv")
    return Served(dataset, rows(pg, dataset, "L0"))


def streamed_and_single_failures(
    pg: psycopg.Connection,
    served: Served,
    settings,
    data: bytes,
    streams: int = 2,
    *,
    paced: bool = False,
) -> tuple[LoadError, LoadError]:
    """The errors of rebuilding ``served`` from ``data`` through ``streams`` streams, then
    through the load's own connection; each failure leaves the served table as it was and
    nothing in ``dss_loads``. ``paced``: the streamed load reads ``data`` paced."""
    errors = []
    for count in (streams, 1):
        settings.COPY_STREAMS = count
        errors.append(failure(pg, served.dataset, data, rebuild=True, paced=paced and count > 1))
        assert served.unchanged(pg)
        assert work_tables(pg) == []
    return errors[0], errors[1]


# The same rows as one COPY, and really through the streams.


# Line breaks: the file's, and those inside quoted values (a spreadsheet's CSV ends its lines
# with CRLF and breaks its cells' lines with LF).
LINE_BREAKS = [
    pytest.param(b"\n", b"\n", id="LF"),
    pytest.param(b"\r\n", b"\r\n", id="CRLF"),
    pytest.param(b"\r\n", b"\n", id="CRLF-quoted-LF"),
    pytest.param(b"\r", b"\r", id="CR"),
]


@pytest.mark.parametrize(
    "eol, quoted_eol, streams",
    [pytest.param(*line_breaks.values, 2, id=line_breaks.id) for line_breaks in LINE_BREAKS]
    + [pytest.param(b"\n", b"\n", 3, id="LF-3-streams")],
)
def test_a_streamed_load_gives_the_rows_of_a_single_copy_with_dense_ids_in_file_order(
    pg, settings, eol, quoted_eol, streams
):
    big = csv_file(eol=eol, quoted_eol=quoted_eol)
    settings.COPY_STREAMS = streams
    streamed, single = incremental("streamed"), incremental("single")

    result = load(pg, streamed, big.data, paced=True)
    settings.COPY_STREAMS = 1
    load(pg, single, big.data, paced=True)

    assert result.rows_read == result.l0_rows_added == ROWS
    loaded = rows(pg, streamed, "L0", "id, n, note, day")
    assert difference(loaded, big.expected) is None
    assert difference(rows(pg, streamed, "L0"), rows(pg, single, "L0")) is None
    assert transactions(pg, streamed) == streams
    assert written_by_other_transactions(pg, streamed.schema)
    assert transactions(pg, single) == 1
    assert not written_by_other_transactions(pg, single.schema)


def test_a_file_below_the_threshold_is_copied_by_the_load_itself(pg, settings):
    settings.COPY_STREAMS = 2
    small = csv_file(1_000)
    assert len(small.data) < STREAMED_BYTES
    dataset = incremental()

    load(pg, dataset, small.data)

    assert difference(rows(pg, dataset, "L0", "id, n, note, day"), small.expected) is None
    assert transactions(pg, dataset) == 1
    assert not written_by_other_transactions(pg, dataset.schema)


def test_one_copy_stream_turns_streams_off(pg, settings):
    settings.COPY_STREAMS = 1
    dataset = incremental()

    load(pg, dataset, csv_file().data, paced=True)

    assert transactions(pg, dataset) == 1
    assert not written_by_other_transactions(pg, dataset.schema)


def test_blank_lines_in_a_streamed_file_are_skipped_and_counted_as_by_a_single_copy(pg, settings):
    big = csv_file()
    lines = big.data.split(b"\n")
    for position in (len(lines) // 3, 2 * len(lines) // 3, 4 * len(lines) // 5):
        lines[position] += b"\n\n,,"  # a blank line, and a line of empty values
    data = b"\n".join(lines)
    streamed, single = incremental("streamed"), incremental("single")

    settings.COPY_STREAMS = 2
    result = load(pg, streamed, data, paced=True)
    settings.COPY_STREAMS = 1
    expected = load(pg, single, data)

    assert transactions(pg, streamed) == 2
    assert result == expected
    assert result.rows_read == ROWS and result.skipped_rows == 6
    assert difference(rows(pg, streamed, "L0"), rows(pg, single, "L0")) is None
    data_rows = [row[1:] for row in rows(pg, streamed, "L0", "id, n, note, day")]
    assert difference(data_rows, [row[1:] for row in big.expected]) is None


def load_at_once(conninfo: str, datasets: list[Dataset], data: bytes) -> list[BaseException]:
    """Rebuild every dataset from ``data`` at once, each on a connection of its own, the
    loads let go together; what they raised."""
    together = threading.Barrier(len(datasets))
    failures: list[BaseException] = []

    def load_one(dataset: Dataset) -> None:
        try:
            with psycopg.connect(conninfo, autocommit=True) as own:
                together.wait()
                load(own, dataset, data, rebuild=True)
        except BaseException as error:  # reported by the test's thread
            failures.append(error)

    threads = [threading.Thread(target=load_one, args=(dataset,)) for dataset in datasets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_loads_of_several_datasets_stream_at_once_and_make_dss_loads_once(pg, conninfo, settings):
    settings.COPY_STREAMS = 2
    big = csv_file(10_000)  # 300 KB
    datasets = [incremental(f"things{number}") for number in range(4)]
    for _ in range(3):
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(WORK_SCHEMA)))

        assert load_at_once(conninfo, datasets, big.data) == []

        for dataset in datasets:
            assert difference(rows(pg, dataset, "L0", "id, n, note, day"), big.expected) is None
        assert work_tables(pg) == []


# What a streamed load leaves.


def test_a_streamed_l0_is_served_keyed_and_its_ids_continue_with_the_next_load(pg, settings):
    settings.COPY_STREAMS = 2
    dataset = incremental(l1=(L1Column("doubled", "integer", "n * 2"),))

    load(pg, dataset, csv_file().data, "one.csv", paced=True)
    assert transactions(pg, dataset) == 2
    more = csv_file(3, first=ROWS + 1, note="more")
    result = load(pg, dataset, more.data, "two.csv")

    assert work_tables(pg) == []
    assert result.l0_rows_added == 3
    assert rows(pg, dataset, "L0", "id, n, note, day")[-3:] == more.expected
    assert difference(rows(pg, dataset, "L0", "id"), [(n,) for n in range(1, ROWS + 4)]) is None
    created = pg.execute(
        sql.SQL("SELECT datafile_created, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(
            sql.Identifier(dataset.schema, "L0")
        )
    ).fetchall()
    assert created == [("one.csv", ROWS), ("two.csv", 3)]
    keys = pg.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = to_regclass(%s) AND contype = 'p'",
        (sql.Identifier(dataset.schema, "L0").as_string(pg),),
    ).fetchall()
    assert keys == [("L0_pkey", "PRIMARY KEY (id)")]
    # L1's ids follow L0's, in file order, as after a single COPY.
    l1 = rows(pg, dataset, "L1", "id, data_source_row_id, doubled")
    assert difference(l1, [(n, n, 2 * n) for n in range(1, ROWS + 4)]) is None


@pytest.mark.parametrize("one_load", [True, False], ids=["zip-like", "two-loads"])
def test_a_rebuild_from_two_files_streams_the_first_and_appends_the_second(
    pg, settings, served, one_load
):
    settings.COPY_STREAMS = 2
    dataset = served.dataset
    first, second = csv_file(), csv_file(first=ROWS + 1, note="second")

    if one_load:
        files = [
            read_paced(first.data, dataset, "all.zip: one.csv", chunk_size=READ_CHUNK),
            read_bytes(second.data, dataset, "all.zip: two.csv", chunk_size=READ_CHUNK),
        ]
        load_file(pg, dataset, iter(files), datafile="all.zip", rebuild=True)
        datafiles = ["all.zip", "all.zip"]
    else:
        with pg.transaction():
            load(pg, dataset, first.data, "one.csv", rebuild=True, swap=False, paced=True)
            load(pg, dataset, second.data, "two.csv", rebuild=True, swap=False)
            assert swap_rebuilt_tables(pg, dataset)
        datafiles = ["one.csv", "two.csv"]

    loaded = rows(pg, dataset, "L0", "id, n, note, day")
    assert difference(loaded, first.expected + second.expected) is None
    created = rows(pg, dataset, "L0", "datafile_created")
    assert difference(created, [(datafiles[0],)] * ROWS + [(datafiles[1],)] * ROWS) is None
    assert transactions(pg, dataset, f"id <= {ROWS}") == 2
    assert transactions(pg, dataset, f"id > {ROWS}") == 1
    assert work_tables(pg) == []


# A bad value names the file's line, as a single COPY names it.


NOT_A_DATE = (
    'invalid input syntax for type date: "not a date" (dates are read year first '
    "(ISO 8601); a column with other dates declares its format)"
)


def _missing_or_extra(n: int, how: str) -> dict[int, bytes]:
    assert n % BREAK_EVERY, "a row with a quoted line break is not replaced"
    extra = ",extra" if how == "extra" else ""
    day = ",2024-01-01" if how == "extra" else ""
    return {n: f"{n},bad row{day}{extra}".encode()}


BAD_ROW = ROWS * 4 // 5
# The bad row: deep in the file (in a chunk that the first stream may not take), in a row
# holding a quoted line break (COPY names the line on which the row ends), the last row (no
# line break after it), in the first chunk.
BAD_ROWS = {
    "deep": BAD_ROW,
    "deep-quoted-break": BAD_ROW - BAD_ROW % BREAK_EVERY,
    "last-row": ROWS,
    "first-chunk": 10,
}


@pytest.mark.parametrize(
    "eol, quoted_eol, bad",
    [
        pytest.param(*line_breaks.values, BAD_ROWS[where], id=f"{line_breaks.id}-{where}")
        for line_breaks in LINE_BREAKS
        for where in BAD_ROWS
        if line_breaks.id == "LF" or where in ("deep-quoted-break", "last-row")
    ],
)
def test_a_bad_value_names_the_files_line_column_and_value_as_a_single_copy(
    pg, settings, served, bad, eol, quoted_eol
):
    big = csv_file(eol=eol, quoted_eol=quoted_eol, days={bad: "not a date"})

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert str(streamed) == (
        f'big.csv: line {big.lines[bad]}, column day, value "not a date": {NOT_A_DATE}'
    )
    assert streamed.problem == single.problem


@pytest.mark.parametrize("how", ["extra", "missing"])
def test_a_row_with_another_number_of_values_names_the_files_line_as_a_single_copy(
    pg, settings, served, how
):
    bad = ROWS * 3 // 4
    big = csv_file(replaced=_missing_or_extra(bad, how))

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert streamed.problem.line == big.lines[bad]
    assert "bad row" in str(streamed)


def test_a_quote_never_closed_fails_as_a_single_copy(pg, settings, served):
    bad = ROWS - 5  # after the last quoted value: the file ends inside the quotes
    big = csv_file(replaced={bad: f'{bad},"never closed,2024-01-01'.encode()})

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert "unterminated CSV quoted field" in str(streamed)


@pytest.mark.parametrize("streams", [2, 3])
@pytest.mark.parametrize("offset", [0, 1, 2])
def test_bad_values_in_several_streams_fail_naming_the_first_in_file_order(
    pg, settings, served, streams, offset
):
    # A bad value in each of six chunks in a row. Paced, the streams take the chunks in
    # turn: each takes some of them, and as the first of them moves on by a chunk, the
    # stream that takes it changes (its error is not always the first stream's).
    per_chunk = ROWS * READ_CHUNK // len(csv_file().data)
    start = ROWS // 2 + offset * per_chunk
    numbers = [start + chunk * per_chunk for chunk in range(6)]
    big = csv_file(days=dict.fromkeys(numbers, "not a date"))

    streamed, single = streamed_and_single_failures(
        pg, served, settings, big.data, streams, paced=True
    )

    assert str(streamed) == str(single)
    assert streamed.problem.line == big.lines[numbers[0]]


def test_a_bad_value_in_a_non_utf8_file_is_named_as_a_single_copy_names_it(pg, settings, served):
    # Declared UTF-8 and strict UTF-8 up to a byte deep in the file: PostgreSQL refuses it.
    bad = ROWS * 4 // 5
    big = csv_file(replaced={bad: f"{bad},caf\xe9,2024-01-01".encode("cp1252")})

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert streamed.problem.line == big.lines[bad]
    assert 'invalid byte sequence for encoding "UTF8"' in str(streamed)


def test_a_bad_value_in_a_file_without_header_names_its_line_as_a_single_copy(pg, settings):
    dataset = incremental(header=False)
    load(pg, dataset, b"1,first,2024-01-31\n", "first.csv")
    served = Served(dataset, rows(pg, dataset, "L0"))
    bad = ROWS * 4 // 5
    big = csv_file(days={bad: "not a date"})
    headless = big.data.split(b"\n", 1)[1]

    streamed, single = streamed_and_single_failures(pg, served, settings, headless)

    assert str(streamed) == str(single)
    assert streamed.problem.line == big.lines[bad] - 1


# The reading layer refuses the file after the streams began.


@pytest.mark.parametrize(
    "early, late, says",
    [
        # UTF-8 from the first chunk on, then a byte that is not.
        ("café", b"caf\xe9", "the file mixes encodings"),
        # ASCII at first, Windows-1252 from a later chunk on, then a byte it does not have.
        ("cafe", b"caf\xe9 \x81", "cannot be read as cp1252"),
    ],
    ids=["mixes-encodings", "undefined-byte"],
)
def test_a_file_the_reading_layer_refuses_mid_stream_fails_with_its_message(
    pg, settings, early, late, says
):
    dataset = incremental(encoding="cp1252")
    load(pg, dataset, b"n,note,day\n1,first,2024-01-31\n", "first.csv")
    served = Served(dataset, rows(pg, dataset, "L0"))
    half, bad = ROWS // 2, ROWS * 4 // 5
    replaced = {3: f"3,{early},2024-01-01".encode(), bad: f"{bad},".encode() + late + b","}
    if early == "cafe":
        replaced[half] = f"{half},caf\xe9,2024-01-01".encode("cp1252")
    big = csv_file(replaced=replaced)

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert str(streamed).startswith(f"big.csv: line {big.lines[bad]}: ")
    assert says in str(streamed)
    assert isinstance(streamed.__cause__, ReadError)


# The streams read values with the load's settings.


@pytest.fixture
def day_first_by_default(pg: psycopg.Connection, conninfo: str) -> Iterator[None]:
    """New connections to the test database read dates day first (SQL, DMY)."""
    database = sql.Identifier(pg.info.dbname)
    pg.execute(sql.SQL("ALTER DATABASE {} SET DateStyle = 'SQL, DMY'").format(database))
    try:
        with psycopg.connect(conninfo) as other:
            assert other.execute("SELECT '31/12/2024'::date").fetchone() == (date(2024, 12, 31),)
        yield
    finally:
        pg.execute(sql.SQL("ALTER DATABASE {} RESET DateStyle").format(database))


def test_streams_read_dates_with_the_loads_date_style_not_the_servers(
    pg, settings, served, day_first_by_default
):
    bad = ROWS * 4 // 5
    big = csv_file(days={bad: "31/12/2024"})

    streamed, single = streamed_and_single_failures(pg, served, settings, big.data)

    assert str(streamed) == str(single)
    assert streamed.problem.line == big.lines[bad]
    assert streamed.problem.value == "31/12/2024"


# A load that fails after the streams committed; the API never serves dss_loads.


def test_a_load_failing_after_the_streams_leaves_its_table_unserved_until_dropped(
    pg,
    conninfo,
    settings,
    hawk_get,  # noqa: F811
):
    settings.COPY_STREAMS = 2
    Pipeline.objects.get_or_create(organisation="test", dataset="things")
    dataset = incremental(l1=(L1Column("inverse", "integer", f"1 / (n - {ROWS // 2})"),))
    load(pg, dataset, b"n,note,day\n1,first,2024-01-31\n", "first.csv")
    before = rows(pg, dataset, "L0")

    error = failure(pg, dataset, csv_file().data, rebuild=True)

    assert "division by zero" in str(error)
    assert rows(pg, dataset, "L0") == before
    # The streams had committed: the table waits in dss_loads for the next load of the
    # dataset, or for drop_abandoned_tables.
    [(work_name, owner)] = work_table_names(pg)
    assert owner == dataset.schema
    assert hawk_get(f"/api/v1/table-data/{dataset.schema}/L0").status_code == 200
    (name,) = pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (WORK_SCHEMA,))
    for endpoint in ("table-data", "table-structure"):
        answer = hawk_get(f"/api/v1/{endpoint}/{WORK_SCHEMA}/{work_name}")
        assert answer.status_code == 404, answer.content
    with psycopg.connect(conninfo) as loading, loading.transaction():
        lock_dataset_for_transaction(loading, dataset.schema)
        assert drop_abandoned_tables(pg) == []  # a load of the dataset holds its lock
    assert drop_abandoned_tables(pg) == [dataset.schema]
    assert work_tables(pg) == []


def test_a_table_left_in_dss_loads_is_replaced_by_the_next_streamed_load(pg, settings):
    settings.COPY_STREAMS = 2
    dataset = incremental(l1=(L1Column("inverse", "integer", f"1 / (n - {ROWS})"),))
    failure(pg, dataset, csv_file().data)
    assert work_tables(pg) == [dataset.schema]

    good = csv_file(ROWS - 1)
    load(pg, dataset, good.data)

    assert difference(rows(pg, dataset, "L0", "id, n, note, day"), good.expected) is None
    assert work_tables(pg) == []


# Uploads.


UPLOAD_ROWS = 100_000  # some 3 MB: three chunks of the reading layer's 1 MiB


def test_a_large_upload_is_streamed_into_its_table(pg, settings):
    settings.COPY_STREAMS = 2
    settings.UPLOAD_INFERENCE_ROWS = 1_000
    big = csv_file(UPLOAD_ROWS)
    data_file = verified(upload(big.data, pipeline=make_pipeline()))

    assert process(str(data_file.pk)) == "completed"

    data_file.refresh_from_db()
    assert data_file.row_count == UPLOAD_ROWS
    loaded = rows_of(data_file.pipeline, "id")
    assert set(data_of(loaded)[0]) == {"n", "note", "day"}
    read_back = [(row["id"], row["n"], row["note"], row["day"]) for row in loaded]
    assert difference(read_back, big.expected) is None
    assert written_by_other_transactions(pg, data_file.pipeline.schema_name)
    assert work_tables(pg) == []


def test_a_bad_value_deep_in_a_large_upload_fails_as_with_one_connection(pg, settings):
    settings.UPLOAD_INFERENCE_ROWS = 1_000
    pipeline = make_pipeline()
    first = verified(upload(b"n,note,day\n1,first,2024-01-31\n", pipeline=pipeline))
    assert process(str(first.pk)) == "completed"
    before = rows_of(pipeline, "id")
    bad = UPLOAD_ROWS * 4 // 5
    big = csv_file(UPLOAD_ROWS, days={bad: "2024-02-30"})

    messages = []
    for streams in (2, 1):
        settings.COPY_STREAMS = streams
        data_file = verified(upload(big.data, pipeline=pipeline))
        assert process(str(data_file.pk)) == "failed"
        data_file.refresh_from_db()
        messages.append(data_file.error_message)
        assert rows_of(pipeline, "id") == before
        assert work_tables(pg) == []

    assert messages[0] == messages[1]
    assert f"line {big.lines[bad]}" in messages[0] and "2024-02-30" in messages[0]
