"""Row ids written into a CSV stream (``pipelines.row_ids``): random files cut into random
chunks, read back by Python's csv module and by PostgreSQL's COPY, and through the loader."""

import csv
import io
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from pipelines import copy_streams, row_ids
from pipelines.datasets import Mode
from pipelines.loading import LoadError
from pipelines.reading import ReadError
from pipelines.row_ids import RowIds, _joined_ids
from tests.pipelines.conftest import load_bytes, make_dataset, rows

EOLS = [b"\n", b"\r\n", b"\r"]
DELIMITERS = [",", ";", "\t", "|"]
# Text that needs no quotes in any of the files made here: no delimiter, quote, line break
# or backslash (a line of only "\." would end COPY's data).
PLAIN = ["a", "b", "Z", "0", "7", " ", "é", "€", "日本", "ß", "😀", "x-y", "."]


@dataclass(frozen=True)
class Field:
    """A value as a file holds it: ``quoted`` or not (COPY reads an unquoted empty one as
    NULL)."""

    text: str
    quoted: bool

    def written(self, quote: str) -> str:
        if not self.quoted:
            return self.text
        return quote + self.text.replace(quote, quote * 2) + quote

    def copied(self) -> str | None:
        """The value COPY reads."""
        return None if self.text == "" and not self.quoted else self.text


@dataclass(frozen=True)
class CsvFile:
    """A random file and what it holds: ``header`` and ``records`` (fields), written with
    ``eol`` outside quotes (inside them, any line break)."""

    data: bytes
    header: list[Field] | None
    records: list[list[Field]]
    eol: bytes
    delimiter: str
    quote: str


def plain(rng: random.Random, least: int = 1) -> str:
    return "".join(rng.choice(PLAIN) for _ in range(rng.randint(least, 6)))


def random_field(rng: random.Random, delimiter: str, quote: str) -> Field:
    """Plain text, empty (quoted or not), or quoted text holding the delimiter, doubled
    quotes and line breaks of every kind (at its ends and one after another too)."""
    kind = rng.randrange(8)
    if kind == 0:
        return Field(plain(rng), quoted=False)
    if kind == 1:
        return Field("", quoted=False)
    if kind == 2:
        return Field("", quoted=True)
    if kind == 3:
        return Field(plain(rng, 0) + delimiter + plain(rng, 0), quoted=True)
    if kind == 4:
        return Field(quote.join(plain(rng, 0) for _ in range(rng.randint(2, 4))), quoted=True)
    if kind == 5:
        breaks = ["\n", "\r\n", "\r"]
        parts = [plain(rng, 0) for _ in range(rng.randint(2, 5))]
        return Field("".join(part + rng.choice(breaks) for part in parts), quoted=True)
    if kind == 6:
        pieces = [delimiter, quote, quote * 2, "\n", "\r", "\r\n", "\n\n", plain(rng)]
        return Field("".join(rng.choice(pieces) for _ in range(rng.randint(1, 8))), quoted=True)
    return Field(plain(rng), quoted=True)


def random_csv(
    rng: random.Random,
    eol: bytes,
    delimiter: str,
    *,
    header: bool,
    final_eol: bool,
    quote: str = '"',
) -> CsvFile:
    """A file of random width and length (no records at all, sometimes)."""
    width = rng.randint(1, 5)

    def record() -> list[Field]:
        fields = [random_field(rng, delimiter, quote) for _ in range(width)]
        if width == 1 and fields[0] == Field("", quoted=False):
            fields = [Field("", quoted=True)]  # not a blank line
        return fields

    head = [Field(plain(rng), quoted=rng.random() < 0.3) for _ in range(width)] if header else None
    if head and rng.random() < 0.2:
        head[0] = Field("multi\nline\r\nname", quoted=True)
    records = [record() for _ in range(rng.choice([0, 1, 2, rng.randint(3, 40)]))]
    lines = [head, *records] if head else records
    text = eol.decode().join(
        delimiter.join(field.written(quote) for field in line) for line in lines
    )
    if lines and final_eol:
        text += eol.decode()
    return CsvFile(text.encode(), head, records, eol, delimiter, quote)


def random_chunks(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` cut at random: whole, in single bytes, in small or larger pieces, or at the
    middle of every CRLF and every doubled quote; with empty chunks here and there."""
    way = rng.randrange(5)
    if way == 0:
        cuts = []
    elif way == 1:
        cuts = list(range(1, len(data)))
    elif way in (2, 3):
        largest = 8 if way == 2 else 300
        cuts = list(itertools.accumulate(rng.randint(1, largest) for _ in range(len(data))))
    else:
        cuts = [
            index
            for index in range(1, len(data))
            if data[index - 1 : index + 1] in (b"\r\n", b'""', b"''") or rng.random() < 0.05
        ]
    cuts = [0, *(cut for cut in cuts if 0 < cut < len(data)), len(data)]
    chunks = [data[start:end] for start, end in itertools.pairwise(cuts)]
    for _ in range(rng.randint(0, 3)):
        chunks.insert(rng.randint(0, len(chunks)), b"")
    return chunks


def parsed(data: bytes, delimiter: str, quote: str) -> list[list[str]]:
    return list(
        csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter, quotechar=quote)
    )


COMBINATIONS = list(itertools.product(EOLS, DELIMITERS, [True, False], [True, False]))
FIRST_IDS = [1, 999, 995, 9_990, 2_147_483_000, 123_456]


@pytest.mark.parametrize("seed", range(6 * len(COMBINATIONS)))
def test_every_record_gets_the_next_id_however_the_stream_is_cut(seed):
    rng = random.Random(seed)
    eol, delimiter, header, final_eol = COMBINATIONS[seed % len(COMBINATIONS)]
    quote = rng.choice(['"', '"', "'"])
    made = random_csv(rng, eol, delimiter, header=header, final_eol=final_eol, quote=quote)
    first_id = rng.choice(FIRST_IDS + [rng.randint(1, 3000)])
    chunks = random_chunks(made.data, rng)
    ids = RowIds(first_id, eol, delimiter, quote, header=header)

    out = list(ids.apply(chunks))

    expected = [[field.text for field in made.header]] if made.header else []
    expected += [
        [str(first_id + number), *(field.text for field in record)]
        for number, record in enumerate(made.records)
    ]
    assert parsed(b"".join(out), delimiter, quote) == expected, (seed, chunks)
    assert (ids.count, ids.next_id) == (len(made.records), first_id + len(made.records))
    # Chunks are cut at record ends (copy_streams sends them to different COPYs): each
    # parses on its own, and only the last may lack its line break.
    assert [row for chunk in out for row in parsed(chunk, delimiter, quote)] == expected
    assert all(chunk.endswith(eol) for chunk in out[:-1])
    if made.header and (made.records or final_eol):
        # The header on its own, first, as the file has it (copy_streams counts its lines).
        header_bytes = delimiter.join(field.written(quote) for field in made.header)
        assert out[0] == header_bytes.encode() + eol


@pytest.mark.parametrize(
    ("first", "end"),
    [
        (0, 0),
        (5, 5),
        (7, 3),
        (0, 1),
        (0, 2),
        (1, 999),
        (998, 1000),
        (999, 1000),
        (999, 1001),
        (1000, 1001),
        (1, 2500),
        (1999, 2001),
        (9998, 10002),
        (9999, 10000),
        (10000, 10001),
        (2_147_483_000, 2_147_483_647),
        (2_147_482_990, 2_147_484_010),
        (123_456_789_999, 123_456_790_001),
    ],
)
@pytest.mark.parametrize("separator", [",", "\t\x00\r\n", ""])
def test_joined_ids_are_the_ids_joined(first, end, separator):
    assert _joined_ids(first, end, separator) == separator.join(map(str, range(first, end)))


def apply(chunks: list[bytes], first_id: int = 1, eol: bytes = b"\n", *, header: bool):
    ids = RowIds(first_id, eol, ",", '"', header=header)
    return list(ids.apply(chunks)), ids.count, ids.next_id


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("chunks", [[], [b""], [b"", b""]])
def test_an_empty_stream_gives_nothing(chunks, header):
    assert apply(chunks, 5, header=header) == ([], 0, 5)


@pytest.mark.parametrize("data", [b"a,b", b"a,b\n", b'"a\nx",b\n', b'a,"b\n'])
def test_a_header_alone_passes_as_it_is(data):
    chunks = [data[index : index + 1] for index in range(len(data))]

    out, count, next_id = apply(chunks, 3, header=True)

    assert (b"".join(out), count, next_id) == (data, 0, 3)


@pytest.mark.parametrize("eol", EOLS)
def test_a_single_record_without_a_line_break_is_numbered(eol):
    assert apply([b'x,"y', b"\n", b'z"'], 41, eol, header=False) == ([b'41,x,"y\nz"'], 1, 42)
    assert apply([b"a,b" + eol + b"x,y"], 9, eol, header=True) == (
        [b"a,b" + eol, b"9,x,y"],
        1,
        10,
    )


@pytest.mark.parametrize("eol", EOLS)
def test_a_chunk_of_only_a_line_break_ends_the_record_before_it(eol):
    out, count, _ = apply([b"a,b", eol, b"1,x", eol, b"2,y", eol], 1, eol, header=True)

    assert out == [b"a,b" + eol, b"1,1,x" + eol, b"2,2,y" + eol]
    assert count == 2


def test_a_chunk_of_only_a_line_break_inside_quotes_ends_nothing():
    out, count, _ = apply([b'1,"x', b"\n", b'y"', b"\n", b"2,z", b"\n"], 1, header=False)

    assert out == [b'1,1,"x\ny"\n', b"2,2,z\n"]
    assert count == 2


def test_a_crlf_cut_in_two_is_one_line_break():
    data = b'h\r\n"a\r\nb"\r\nc\r\nd'
    chunks = [piece + b"\r" for piece in data.split(b"\r")]
    chunks[-1] = chunks[-1][:-1]

    out, count, _ = apply(chunks, 1, b"\r\n", header=True)

    assert b"".join(out) == b'h\r\n1,"a\r\nb"\r\n2,c\r\n3,d'
    assert count == 3


@pytest.mark.parametrize("eol", EOLS)
def test_a_value_of_megabytes_with_line_breaks_spanning_many_chunks_is_read_in_linear_time(eol):
    # ~8 MB in one quoted value, its line breaks of every kind, in 64 KiB chunks: a scan
    # of everything carried at each chunk would take minutes.
    value = b'line "" of text\n, more\r\nand\r' * (8_000_000 // 27)
    data = b"a,b" + eol + b'1,"' + value + b'"' + eol + b"2,after" + eol
    size = 64 * 1024
    chunks = [data[start : start + size] for start in range(0, len(data), size)]
    ids = RowIds(1, eol, ",", '"', header=True)

    started = time.perf_counter()
    out = b"".join(ids.apply(chunks))
    elapsed = time.perf_counter() - started

    expected = b"a,b" + eol + b'1,1,"' + value + b'"' + eol + b"2,2,after" + eol
    same = out == expected  # not inside assert: pytest's diff of megabytes takes minutes
    assert same, f"differs from byte {first_difference(out, expected)}"
    assert ids.count == 2
    assert elapsed < 3, elapsed


def first_difference(left: bytes, right: bytes) -> int:
    """The length of the longest common prefix (a binary search of C comparisons)."""
    low, high = 0, min(len(left), len(right))
    while low < high:
        middle = (low + high + 1) // 2
        if left[:middle] == right[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


@pytest.fixture
def scratch(pg: psycopg.Connection) -> Iterator[str]:
    """A schema of this test's own, dropped afterwards."""
    name = "row_ids_test"
    schema = sql.Identifier(name)
    pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
    pg.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
    yield name
    pg.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))


@pytest.mark.parametrize("seed", range(12))
def test_copy_reads_the_records_and_ids_that_row_ids_counted(pg, scratch, seed):
    rng = random.Random(1000 + seed)
    eol = EOLS[seed % 3]
    delimiter = DELIMITERS[seed % 4]
    header = seed % 2 == 0
    made = random_csv(rng, eol, delimiter, header=header, final_eol=rng.random() < 0.5)
    while len(made.records) < 5:
        made = random_csv(rng, eol, delimiter, header=header, final_eol=rng.random() < 0.5)
    width = len(made.records[0])
    table = sql.Identifier(scratch, "rows")
    pg.execute(
        sql.SQL("CREATE TABLE {} (id integer, {})").format(
            table, sql.SQL(", ").join(sql.SQL(f"c{index} text") for index in range(width))
        )
    )
    ids = RowIds(1, eol, delimiter, '"', header=header)
    statement = sql.SQL(
        "COPY {} FROM STDIN WITH (FORMAT csv, HEADER {}, DELIMITER {}, QUOTE '\"', ENCODING 'UTF8')"
    ).format(table, sql.SQL(str(header).lower()), sql.Literal(delimiter))

    with pg.cursor() as cursor, cursor.copy(statement) as copy:
        for chunk in ids.apply(random_chunks(made.data, rng)):
            copy.write(chunk)

    copied = pg.execute(sql.SQL("SELECT * FROM {} ORDER BY id").format(table)).fetchall()
    assert copied == [
        (number, *(field.copied() for field in record))
        for number, record in enumerate(made.records, 1)
    ]
    assert ids.count == len(made.records)


def numbered_file(numbers: range, eol: bytes) -> bytes:
    """A file of ``n,note`` whose notes hold quoted line breaks (of every kind), doubled
    quotes and delimiters; ``n`` numbers the records."""
    lines = [b"n,note"]
    for number in numbers:
        note = [b"plain", b'"two\nlines"', b'"a, ""b""\r\nc\rd"', b'""', b'"\n"'][number % 5]
        lines.append(str(number).encode() + b"," + note)
    return eol.join(lines) + eol


def notes(numbers: range) -> list[str | None]:
    texts = ["plain", "two\nlines", 'a, "b"\r\nc\rd', "", "\n"]
    return [texts[number % 5] for number in numbers]


@pytest.mark.parametrize("streams", [False, True])
@pytest.mark.parametrize("eol", EOLS)
def test_loads_give_ids_in_file_order_dense_from_load_to_load(pg, monkeypatch, eol, streams):
    if streams:  # the first load's new table filled by two COPYs, each sent every other chunk
        monkeypatch.setattr(copy_streams, "STREAMED_BYTES", 64)
    dataset = make_dataset(Mode.INCREMENTAL, columns="n:integer note:text")
    first, second = range(1, 41), range(41, 61)

    load_bytes(pg, dataset, numbered_file(first, eol), "one.csv")
    load_bytes(pg, dataset, numbered_file(second, eol), "two.csv")

    l0 = rows(pg, dataset, "L0", "id, n, note")
    numbers = range(1, 61)
    assert [(id_, n) for id_, n, _ in l0] == [(n, n) for n in numbers]
    assert [note for _, _, note in l0] == notes(numbers)


def test_a_quote_never_closed_is_refused_at_its_line_before_the_file_is_held(monkeypatch):
    monkeypatch.setattr(row_ids, "MAX_RECORD_BYTES", 1 << 20)
    data = b'a,b\n1,x\r\n2,12" pipe\n' + b"3,y\n" * 400_000  # 1.6 MB after the stray quote
    ids = RowIds(1, b"\n", ",", '"', header=True, label="pipes.csv")
    taken = []
    with pytest.raises(ReadError) as refused:
        for chunk in ids.apply(data[start : start + 65536] for start in range(0, len(data), 65536)):
            taken.append(chunk)
    assert str(refused.value) == (
        "pipes.csv: line 3: a record of over 1 MiB: a quoted value that is never closed?"
    )
    assert b"".join(taken) == b"a,b\n1,1,x\r\n"  # the rows before it, numbered


def test_a_load_with_a_quote_never_closed_fails_naming_its_line(pg, monkeypatch):
    monkeypatch.setattr(row_ids, "MAX_RECORD_BYTES", 4096)
    dataset = make_dataset(Mode.INCREMENTAL)
    load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")
    data = b'a,b\n1,x\n2,y\n3,"open\n' + b"4,z\n" * 2000

    with pytest.raises(LoadError, match=r"^bad\.csv: line 4: a record of over 0 MiB"):
        load_bytes(pg, dataset, data, "bad.csv", rebuild=True)
    assert rows(pg, dataset, "L0", "id, a, b") == [(1, 1, "x")]
