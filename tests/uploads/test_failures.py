"""A failed upload says, in its uploader's terms, what broke: the name of the file uploaded
(a workbook's, and its sheet), the row as the verify page counts rows, the column and the
value, why, and what to do. Every way processing can fail goes through
``uploads.processing.process`` on the real database, and the previous version stays served.
"""

import codecs
import io
from dataclasses import dataclass

import pytest

from pipelines import storage
from tests.uploads.builders import make_pipeline, rows_of, upload, verified, workbook_bytes
from uploads.failures import find_row
from uploads.inspection import InspectionOptions, inspect_upload
from uploads.models import Pipeline, PipelineDataFile
from uploads.processing import process, upload_dataset

pytestmark = pytest.mark.django_db(transaction=True)

FIX_OR_TEXT = "Fix the value, or choose the type text for this column, then upload the file again."
FIX_OR_DATE_FORMAT = (
    "Fix the value, or upload the file again and choose the date format its dates are written "
    "in (or the type text) for this column."
)
FIX_OR_NUMERIC = (
    "Fix the value, or choose the type numeric (or text) for this column, then upload the "
    "file again."
)
ONE_VALUE_PER_COLUMN = (
    "Give every row one value per column (a value that holds the delimiter goes in quotes), "
    "then upload the file again."
)
CHOOSE_ENCODING = (
    "Save the file as UTF-8, or upload it again and choose its encoding on the check page."
)
# More than the 64 KB the encoding is guessed from (10,000 rows).
PADDING = b"".join(b"row %d,%d\n" % (n, n) for n in range(10_000))


@dataclass
class Served:
    """A pipeline whose table serves a first version."""

    pipeline: Pipeline
    first: PipelineDataFile
    rows: list[dict]

    def failure(self, data_file: PipelineDataFile) -> str:
        """Process ``data_file``; assert that it fails and that the first version is still
        served, unchanged. Returns the failure's message."""
        assert process(str(data_file.pk)) == "failed"
        data_file.refresh_from_db()
        assert data_file.state == "failed"
        assert rows_of(self.pipeline, "id") == self.rows
        assert self.pipeline.current_version() == self.first
        return data_file.error_message

    def upload(self, data: bytes, name: str = "data.csv", **types: str) -> PipelineDataFile:
        """``data`` uploaded as ``name`` and verified, with ``types`` chosen for columns."""
        return verified(upload(data, name, self.pipeline), **types)


@pytest.fixture
def served() -> Served:
    pipeline = make_pipeline()
    first = verified(upload(b"name,count\na,1\nb,2\n", "first.csv", pipeline))
    assert process(str(first.pk)) == "completed"
    return Served(pipeline, first, rows_of(pipeline, "id"))


@pytest.fixture
def window(settings):
    """Inference reads only the first data row: what fails comes after it."""
    settings.UPLOAD_INFERENCE_ROWS = 1


def test_a_row_after_a_quoted_line_break_is_counted_as_the_verify_page_counts_it(served):
    # COPY says line 5: it counts the line break inside "b\nc". The row is the third.
    data = b'name,Unit Price\na,1\n"b\nc",2\nd,abc\n'
    data_file = served.upload(data, "prices.csv", unit_price="numeric")

    assert served.failure(data_file) == (
        'prices.csv: row 3 (line 5), column "Unit Price" (loaded as unit_price): the value '
        f'"abc" is not a number written with a decimal point, such as 1234.56. {FIX_OR_TEXT}'
    )
    # The verify page numbers the same row the same way.
    refused = inspect_upload(upload(b'name,price\na,1\n"b\nc",2\nd,abc,x\n', "prices.csv"))
    assert refused.problem == (
        "prices.csv: row 3 (line 5) has 3 values where the header has 2 columns"
    )


@pytest.mark.parametrize(
    ("kind", "value", "why"),
    [
        ("integer", "many", "is not a whole number"),
        ("boolean", "maybe", "is not true or false"),
        (
            "date",
            "2024-02-30",
            "is not a valid date: dates are written year first, such as 2024-01-31",
        ),
        (
            "date",
            "31/01/2024",
            "is not a valid date: dates are written year first, such as 2024-01-31",
        ),
        (
            "timestamp",
            "noon",
            "is not a valid date and time: they are written year first, such as "
            "2024-01-31 14:30:00",
        ),
    ],
)
def test_a_value_that_does_not_fit_its_type_names_row_column_and_value(
    served, settings, kind, value, why
):
    # Past the rows inspection reads (it would refuse a date that fits no format).
    settings.UPLOAD_INFERENCE_ROWS = 1
    data_file = served.upload(f"name,x\na,\nb,{value}\n".encode(), x=kind)

    todo = FIX_OR_DATE_FORMAT if kind in ("date", "timestamp") else FIX_OR_TEXT
    assert served.failure(data_file) == (
        f'data.csv: row 2 (line 3), column x: the value "{value}" {why}. {todo}'
    )


def test_a_decimal_comma_value_that_is_not_a_number(served, settings):
    settings.UPLOAD_INFERENCE_ROWS = 2
    data_file = served.upload(b'ville;montant\nParis;1,5\n"Aix\nen";2,5\nNice;x,5\n')
    assert (data_file.decimal_separator, data_file.column_types[1]) == (",", ["montant", "numeric"])

    assert served.failure(data_file) == (
        'data.csv: row 3 (line 5), column montant: the value "x,5" is not a number written '
        f"with a decimal comma, such as 1.234,56. {FIX_OR_TEXT}"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"a,b\n1,2\n3,4,5\n",
            f"data.csv: row 2 (line 3) has 3 values where the header has 2 columns. "
            f"{ONE_VALUE_PER_COLUMN}",
        ),
        (
            b'a,b\nx,y\n"p\nq"\n',
            f"data.csv: row 2 (line 4) has 1 value where the header has 2 columns. "
            f"{ONE_VALUE_PER_COLUMN}",
        ),
        (
            b'a,b\n1,2\n3,"4\n5,6\n',
            'data.csv: row 2 (line 4): a quoted value has no closing quote ("), so the rest of '
            "the file was read as part of it. Close the quote, then upload the file again.",
        ),
        (
            b"a,b,\n1,2,\n3,4,stray\n",
            'data.csv: row 2 (line 3) has the value "stray" in column 3, which has no header. '
            "Give the column a header, or delete the value, then upload the file again.",
        ),
    ],
    ids=["a value too many", "a value too few", "a quote never closed", "a value under no header"],
)
def test_a_row_with_the_wrong_number_of_values(served, window, data, message):
    assert served.failure(served.upload(data)) == message


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"name,note\nr\xc3\xa9sum\xc3\xa9,x\n" + PADDING + b"bad,\xff\n",
            "data.csv: row 10002 (line 10003) cannot be read as UTF-8 (invalid start byte)",
        ),
        (
            b"name,note\nr\xe9sum\xe9,x\n" + PADDING + b"bad,\x81\n",
            "data.csv: row 10002 (line 10003) cannot be read as Windows-1252 (character maps to "
            "<undefined>)",
        ),
        (
            codecs.BOM_UTF16_LE
            + ('name,note\n"two\nlines",x\n'.encode("utf-16-le"))
            + PADDING.decode().encode("utf-16-le")
            + "bad,".encode("utf-16-le")
            + b"\x00\xdc\n\x00",
            "data.csv: row 10002 (line 10004) cannot be read as UTF-16 (illegal encoding)",
        ),
    ],
    ids=["utf-8", "windows-1252", "utf-16"],
)
def test_bytes_that_cannot_be_decoded_name_their_row(served, window, data, message):
    data_file = served.upload(data, note="text")

    assert served.failure(data_file) == f"{message}. {CHOOSE_ENCODING}"


def test_a_file_whose_rows_have_no_values_has_no_data_rows(served):
    data_file = served.upload(b"a,b\n,\n\n,\n")

    assert served.failure(data_file) == (
        "data.csv has no data rows: there is nothing under the header, or only rows with no "
        "values. Add the data under the header, then upload the file again."
    )


def test_a_file_found_empty_when_it_is_processed(served):
    data_file = served.upload(b"a\n1\n", "later-empty.csv")
    storage.save_stream(data_file.data_key, io.BytesIO(b""))

    assert served.failure(data_file) == (
        "later-empty.csv is empty. Upload a file with a header row and data rows."
    )


@pytest.mark.parametrize(
    ("data", "value", "row"),
    [
        (b"name,n\na,1\nb,99999999999\n", "99999999999", "row 2 (line 3)"),
        (
            b"name;n;montant\na;1;1,5\nb;2;2,5\nc;2.147.483.648;3,5\n",
            "2.147.483.648",
            "row 3 (line 4)",
        ),
    ],
    ids=["decimal point", "decimal comma"],
)
def test_a_whole_number_too_large_for_an_integer(served, settings, data, value, row):
    settings.UPLOAD_INFERENCE_ROWS = 2
    data_file = served.upload(data, n="integer")

    assert served.failure(data_file) == (
        f'data.csv: {row}, column n: the value "{value}" is too large for the type integer '
        f"(whole numbers from -2,147,483,648 to 2,147,483,647). {FIX_OR_NUMERIC}"
    )


def test_a_workbook_s_failure_names_the_workbook_its_sheet_and_the_row_in_the_sheet(served):
    # The cell with a line break is quoted in the CSV made from the sheet: COPY says line 5.
    data = workbook_bytes(
        {"Notes": [["x"]], "Counts": [["name", "count"], ["a", 1], ["b\nc", 2], ["d", "lots"]]}
    )
    data_file = upload(data, "budget.xlsx", served.pipeline)
    inspect_upload(data_file, InspectionOptions(sheet="Counts"))
    data_file = verified(data_file, count="integer")

    assert served.failure(data_file) == (
        'budget.xlsx, sheet "Counts": row 3 (row 4 of the sheet), column count: the value '
        f'"lots" is not a whole number. {FIX_OR_TEXT}'
    )


def test_a_storage_error_while_finding_the_row_still_words_the_failure(
    s3_storage, s3_client, caplog
):
    data_file = verified(upload(b"name,count\na,1\nb,x\n", "data.csv", make_pipeline()))
    # The bucket goes away between the load and the message: S3's own error, not OSError.
    s3_client.delete_object(Bucket=s3_storage, Key=data_file.data_key)
    s3_client.delete_bucket(Bucket=s3_storage)

    found = find_row(data_file, upload_dataset(data_file).file_format, 3)

    assert found is None
    assert "could not read the file again to find its row" in caplog.text
