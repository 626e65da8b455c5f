"""The reading layer's parts for uploads: null spellings, columns by position, text rows,
and the guesses of delimiter, quote and encoding."""

import codecs
import io

import pytest

from pipelines.datasets import Column, Dataset, FileFormat, Mode
from pipelines.dialects import detect_delimiter, detect_encoding, detect_quote
from pipelines.headers import HeaderError, header_by_position
from pipelines.null_values import NullValues
from pipelines.reading import ReadError, UndecodableBytes, read_bytes, read_rows
from pipelines.type_inference import TypeInference

SPELLINGS = ("NULL", "None", "N/A")


def blanked(data: bytes, chunk_size: int) -> bytes:
    chunks = [data[start : start + chunk_size] for start in range(0, len(data), chunk_size)]
    return b"".join(NullValues(SPELLINGS, ",", '"').apply(chunks))


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 1 << 20])
def test_null_spellings_become_empty_fields_wherever_chunks_are_cut(chunk_size):
    data = b'a,b,c\nNULL,None,N/A\nx,"N/A",NULLS\nNone,"a\nNULL",N/A'
    assert blanked(data, chunk_size) == b'a,b,c\n,,\nx,"N/A",NULLS\n,"a\nNULL",'


def test_a_file_without_null_spellings_passes_unchanged():
    data = b"a,b\n1,2\n" * 1000
    assert blanked(data, 4096) == data


def dataset(*names: str, **format_options) -> Dataset:
    return Dataset(
        "test",
        "upload",
        Mode.INCREMENTAL,
        tuple(Column(name) for name in names),
        FileFormat(columns_by_position=True, **format_options),
    )


def test_columns_by_position_take_any_header_text_and_trailing_empty_columns():
    match = header_by_position(["Name", "Name", "", ""], dataset("name", "name_1"))
    assert match.targets == ("name", "name_1", None, None) and match.unnamed == 2


def test_columns_by_position_refuse_another_number_of_columns():
    with pytest.raises(HeaderError, match="the header has 3 named columns where 2 are expected"):
        header_by_position(["a", "b", "c"], dataset("a", "b"))


def test_read_file_blanks_null_spellings_when_the_format_lists_them():
    read_file = read_bytes(b"a,b\nNULL,x\n", dataset("a", "b", null_values=SPELLINGS), "f.csv")
    assert b"".join(read_file.chunks) == b"a,b\n,x\n"


def test_text_rows_come_with_their_line_numbers_and_stop_where_asked():
    stream = io.BytesIO(b'a,b\n1,"two\nlines"\r\n3,4\r5,6\n')
    text_rows = read_rows(stream, FileFormat(), "f.csv", chunk_size=4)
    assert text_rows.header == ["a", "b"]
    assert list(text_rows.rows) == [(3, ["1", "two\nlines"]), (4, ["3", "4"]), (5, ["5", "6"])]


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        # Passed through as UTF-8, decoded where the rows are read.
        ("utf-8", b'a,b\n1,"two\nlines"\n2,caf\xc3\xa9\n3,caf\xe9\n4,x\n'),
        # Passed through in its own encoding (decided on its first chunk).
        ("cp1252", b'a,b\n1,"two\nlines"\n2,caf\xe9\n3,\x81\n4,x\n'),
        # Transcoded by the reading layer after its byte-order mark.
        (
            "utf-8",
            codecs.BOM_UTF16_LE
            + 'a,b\n1,"two\nlines"\n2,caf\u00e9\n3,'.encode("utf-16-le")
            + b"\x00\xdc"
            + "\n4,x\n".encode("utf-16-le"),
        ),
    ],
    ids=["utf-8", "cp1252", "utf-16"],
)
@pytest.mark.parametrize("chunk_size", [7, 1 << 20])
def test_rows_before_bytes_that_cannot_be_decoded_are_read_and_the_error_names_their_row(
    encoding, data, chunk_size
):
    file_format = FileFormat(encoding=encoding)
    text_rows = read_rows(io.BytesIO(data), file_format, "bad.csv", chunk_size=chunk_size)
    read = []

    with pytest.raises(UndecodableBytes) as failure:
        for _, row in text_rows.rows:
            read.append(row)

    assert read == [["1", "two\nlines"], ["2", "caf\u00e9"]]
    assert (failure.value.row, failure.value.line) == (3, 5)
    assert str(failure.value).startswith("bad.csv: line 5: cannot be read as ")


def test_text_rows_of_a_windows_1252_file():
    stream = io.BytesIO("nom\nCôte\n".encode("cp1252"))
    text_rows = read_rows(stream, FileFormat(encoding="cp1252"), "f.csv")
    assert list(text_rows.rows) == [(2, ["Côte"])]
    assert text_rows.encoding == "cp1252"


def test_text_rows_of_an_empty_file_are_refused():
    with pytest.raises(ReadError, match="no data rows"):
        read_rows(io.BytesIO(b""), FileFormat(), "f.csv")


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2;3\n", ";"),
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ('name,"x;y"\n"a;b",2\n', ","),
        ("single\nvalue\n", ","),
    ],
)
def test_the_delimiter_is_guessed_from_the_first_lines(text, delimiter):
    assert detect_delimiter(text) == delimiter


def test_the_quote_is_a_single_quote_only_when_values_use_it():
    assert detect_quote("a,b\n'x,y',2\n", ",") == "'"
    assert detect_quote('a,b\n"x,y",\'2\n', ",") == '"'


@pytest.mark.parametrize(
    ("sample", "encoding"),
    [
        ("Côte".encode(), "utf-8"),
        ("Côte".encode()[:-2] + "ô".encode()[:1], "utf-8"),  # a character cut at the end
        (b"\xef\xbb\xbfa", "utf-8"),
        ("a\n".encode("utf-16"), "utf-16-le"),
        ("Côte d'Ivoire".encode("cp1252"), "cp1252"),
    ],
)
def test_the_encoding_is_guessed_from_the_first_bytes(sample, encoding):
    assert detect_encoding(sample) == encoding


def test_type_inference_with_decimal_commas():
    inference = TypeInference(3, decimal_comma=True)
    inference.add(["1.234,56", "1.234", "x"])
    inference.add(["87,5", "12", "2"])
    assert inference.types == ["numeric", "integer", "text"]


def test_codes_with_leading_zeros_stay_text():
    inference = TypeInference(3)
    inference.add(["007", "0", "0.5"])
    inference.add(["120", "10", "-0.25"])
    assert inference.types == ["text", "integer", "numeric"]
