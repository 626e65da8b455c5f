"""The reading layer's parts on their own: line breaks, header matching, encodings, date
formats and zip members (the loads themselves are in test_field_cases and test_loading)."""

import codecs
import io
import random
from contextlib import ExitStack

import pytest

from pipelines.archives import ArchiveError, is_documentation, zip_members
from pipelines.datasets import Column, FileFormat, Mode
from pipelines.date_formats import parse_date_format
from pipelines.encodings import EncodingError, EncodingTracker, guess_encoding
from pipelines.headers import HeaderError, match_header, normalise
from pipelines.line_breaks import LineBreaks
from pipelines.reading import ReadError, read_bytes
from tests.pipelines.conftest import make_dataset, read_chunks, zip_bytes


def rewrite(data: bytes, eol: bytes, chunk_size: int, width: int = 2) -> bytes:
    line_breaks = LineBreaks(eol, ",", '"', width)
    out = [line_breaks.feed(data[i : i + chunk_size]) for i in range(0, len(data), chunk_size)]
    return b"".join(out) + line_breaks.finish()


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1000])
def test_unquoted_line_breaks_take_the_first_lines_ending_and_quoted_ones_stay(chunk_size):
    data = b'a,b\r\n1,"x\ny"\n2,"p\r\nq"\r3,z\r\n\n4,w'

    assert rewrite(data, b"\r\n", chunk_size) == (
        b'a,b\r\n1,"x\ny"\r\n2,"p\r\nq"\r\n3,z\r\n,\r\n4,w'
    )


@pytest.mark.parametrize("seed", range(20))
def test_any_chunking_of_any_mixture_gives_the_same_bytes(seed):
    rng = random.Random(seed)
    pieces = [b"a", b",", b"\r", b"\n", b"\r\n", b'"', b'""', b"x y"]
    data = b"h,k\n" + b"".join(rng.choice(pieces) for _ in range(300))
    whole = rewrite(data, b"\n", len(data) + 1)

    assert rewrite(data, b"\n", rng.randint(1, 20)) == whole
    # Outside quotes, only LF remains.
    outside = whole.split(b'"')[::2]
    assert not any(b"\r" in part for part in outside)


def test_a_uniform_chunk_passes_unchanged():
    chunk = b'1,"a\nb"\n2,c\n' * 1000

    assert LineBreaks(b"\n", ",", '"', 2).feed(chunk) is chunk


@pytest.mark.parametrize(
    ("header", "normalised"),
    [
        ("Local authority district code", "localauthoritydistrictcode"),
        ("Local Enterprise Partnership (LEP1) code", "localenterprisepartnershiplep1code"),
        ("ctyCode", "ctycode"),
        ("ISO2-digit Alpha", "iso2digitalpha"),
        ("  Straße  ", "strasse"),
    ],
)
def test_headers_are_compared_without_case_spaces_or_punctuation(header, normalised):
    assert normalise(header) == normalised


def test_a_column_may_declare_the_header_it_expects():
    dataset = make_dataset(
        Mode.INCREMENTAL, columns=(Column("reporter", "integer", header="Reporter_ISO_N"),)
    )

    assert match_header(["reporter_iso_n"], dataset).targets == ("reporter",)


def test_two_columns_with_the_same_normalised_name_are_refused():
    dataset = make_dataset(Mode.INCREMENTAL, columns="a_b ab")

    with pytest.raises(ValueError, match="both named 'ab'"):
        match_header(["a_b", "ab"], dataset)


def test_a_column_with_no_header_between_named_ones_is_refused():
    dataset = make_dataset(Mode.INCREMENTAL)

    with pytest.raises(HeaderError, match="column 2 of the header has no name"):
        match_header(["a", "", "b"], dataset)


def test_an_encoding_is_decided_by_the_first_bytes_that_are_not_ascii():
    tracker = EncodingTracker("cp1252")

    assert tracker.feed(b"plain ascii\n") is None
    assert tracker.feed("caf\u00e9\n".encode()) == "utf-8"
    assert tracker.feed(b"more ascii\n") == "utf-8"
    with pytest.raises(EncodingError, match="mixes encodings; encodings tried: utf-8, cp1252"):
        tracker.feed("caf\u00e9\n".encode("cp1252"))


def test_a_utf8_character_cut_between_chunks_is_still_utf8():
    tracker = EncodingTracker("cp1252")
    data = "\u20ac".encode()

    assert tracker.feed(data[:1]) is None
    assert tracker.feed(data[1:], final=True) == "utf-8"


def test_a_file_not_utf8_is_in_the_declared_encoding():
    tracker = EncodingTracker("cp1252")

    # A last byte that may start a UTF-8 character decides nothing until the end.
    assert tracker.feed("caf\u00e9".encode("cp1252")) is None
    assert tracker.feed(b"", final=True) == "cp1252"


def test_the_detector_guesses_an_encoding_where_none_is_declared():
    text = "Der Fluß fließt schön durch Köln und Düsseldorf, über Brücken. " * 20
    data = text.encode("cp1252")

    assert data.decode(guess_encoding(data)) == text
    assert guess_encoding(text.encode()) == "utf-8"


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [(codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_a_utf16_file_is_read_by_its_byte_order_mark(bom, encoding):
    dataset = make_dataset(Mode.INCREMENTAL, encoding="cp1252")
    data = bom + "a,b\r\n1,caf\u00e9\r\n".encode(encoding)

    read_file = read_bytes(data, dataset, "wide.csv", chunk_size=5)

    assert read_file.header_fields == ["a", "b"]
    assert read_file.copy_encoding == "UTF8"
    assert b"".join(read_file.chunks) == "a,b\r\n1,caf\u00e9\r\n".encode()


def test_a_header_in_windows_1252_is_read_in_windows_1252():
    dataset = make_dataset(
        Mode.INCREMENTAL, columns=(Column("prix", header="Prix (\u20ac)"),), encoding="cp1252"
    )

    read_file = read_bytes("Prix (\u20ac)\n1\n".encode("cp1252"), dataset, "one.csv")

    assert read_file.match.targets == ("prix",)
    assert read_file.copy_encoding == "WIN1252"


def test_a_file_that_is_only_a_byte_order_mark_has_no_data():
    with pytest.raises(ReadError, match=r"^bom\.csv: no data rows \(the file is empty\)$"):
        read_bytes(codecs.BOM_UTF8, make_dataset(), "bom.csv")


DAY = "(?:0?[1-9]|[12][0-9]|3[01])"
MONTH = "(?:0?[1-9]|1[0-2])"
YEAR = "(?!0000)[0-9]{4}"


@pytest.mark.parametrize(
    ("text", "template", "pattern"),
    [
        ("%d/%m/%Y", 'DD"/"MM"/"YYYY', rf"^{DAY}/{MONTH}/{YEAR}$"),
        ("%Y%m%d", "YYYYMMDD", rf"^{YEAR}{MONTH}{DAY}$"),
        ("%d %b %Y %H:%M", 'DD" "Mon" "YYYY" "HH24":"MI', None),
    ],
)
def test_a_date_format_becomes_a_template_and_a_pattern(text, template, pattern):
    date_format = parse_date_format(text)

    assert date_format.template == template
    if pattern:
        assert date_format.pattern == pattern


@pytest.mark.parametrize(
    ("column", "message"),
    [
        (lambda: Column("d", "date", date_format="%d/%m/%Q"), "%Q is not one of"),
        (lambda: Column("d", "text", date_format="%d/%m/%Y"), "only date and timestamp"),
        (lambda: Column("d", "date", date_format="%d/%m/%Y %H:%M"), "has a time"),
        (lambda: Column("d", "date", date_format="day"), "has no directive"),
    ],
)
def test_a_date_format_that_cannot_be_read_is_refused_in_the_definition(column, message):
    with pytest.raises(ValueError, match=message):
        column()


def test_documentation_is_never_a_data_member():
    assert is_documentation("Docs/User Guide.pdf")
    assert is_documentation("README")
    assert is_documentation("bundle/Readme.txt")
    assert not is_documentation("Data/ONSPD_FEB_2018_UK.csv")
    assert not is_documentation("exporters1601")


def test_zip_members_are_taken_in_name_order_and_nested_zips_opened():
    inner = zip_bytes({"c.csv": b"x", "notes.docx": b"x"})
    data = zip_bytes({"b.csv": b"x", "inner.zip": inner, "a.csv": b"x", "__MACOSX/._a.csv": b""})
    file_format = FileFormat(member_pattern=r"\.csv$", many_members=True)

    with ExitStack() as stack:
        members = zip_members(io.BytesIO(data), file_format, stack)

        assert [member.path for member in members] == ["a.csv", "b.csv", "inner.zip/c.csv"]


def test_a_zip_with_only_folders_is_refused_saying_so():
    with ExitStack() as stack, pytest.raises(ArchiveError, match="it holds nothing but folders"):
        zip_members(io.BytesIO(zip_bytes({"Data/": b""})), FileFormat(), stack)


def test_a_byte_order_mark_read_on_its_own_is_followed_by_the_rest():
    dataset = make_dataset(Mode.INCREMENTAL, encoding="cp1252")
    chunks = iter([codecs.BOM_UTF8, "a,b\n1,caf\u00e9\n".encode()])

    [read_file] = read_chunks(chunks, dataset, "one.csv")

    assert read_file.header_fields == ["a", "b"]
    assert b"".join(read_file.chunks) == "a,b\n1,caf\u00e9\n".encode()
