"""Inspection of stored uploads: what the verify page shows, and the refusals."""

import codecs

import pytest

from pipelines.names import MAX_IDENTIFIER_BYTES, identifier_bytes
from tests.uploads.builders import make_pipeline, upload, upload_case, workbook_bytes
from uploads.inspection import InspectionOptions, compare_columns, inspect_upload

pytestmark = pytest.mark.django_db


def types_of(inspection) -> dict[str, str]:
    return {column.name: column.type for column in inspection.columns}


def test_types_are_inferred_from_the_values():
    data_file = upload(
        b"id_code,count,price,flag,day,moment,label,big\n"
        b"1,10,1.5,true,2024-01-31,2024-01-31 10:00:00,a,3000000000\n"
        b"2,-3,2,no,2024-02-29,2024-02-29T23:59,b,1\n"
    )
    inspection = inspect_upload(data_file)
    assert inspection.ok, inspection.problem
    assert types_of(inspection) == {
        "id_code": "integer",
        "count": "integer",
        "price": "numeric",
        "flag": "boolean",
        "day": "date",
        "moment": "timestamp",
        "label": "text",
        "big": "numeric",  # over PostgreSQL's integer
    }
    assert inspection.delimiter == "," and inspection.quote == '"'
    assert inspection.encoding == "utf-8" and inspection.decimal_separator == "."
    assert inspection.rows_seen == 2 and inspection.complete
    assert inspection.columns[0].samples == ["1", "2"]


def test_an_impossible_date_makes_the_column_text():
    inspection = inspect_upload(upload(b"day\n2024-02-30\n2024-01-01\n"))
    assert types_of(inspection) == {"day": "text"}


def test_null_spellings_fit_every_type():
    data_file = upload(b"amount,label\n1,a\nNULL,b\nN/A,c\nNone,d\n,e\n")
    assert types_of(inspect_upload(data_file)) == {"amount": "integer", "label": "text"}


def test_semicolon_and_decimal_comma_are_detected():
    inspection = inspect_upload(upload_case("semicolon-decimal-comma"))
    assert inspection.ok, inspection.problem
    assert inspection.delimiter == ";"
    assert inspection.decimal_separator == ","
    assert types_of(inspection) == {"ville": "text", "montant": "numeric", "annee": "integer"}


def test_detected_options_can_be_overridden():
    data_file = upload_case("semicolon-decimal-comma")
    inspection = inspect_upload(data_file, InspectionOptions(decimal_separator="."))
    assert inspection.decimal_separator == "."
    assert types_of(inspection)["montant"] == "text"
    inspection = inspect_upload(data_file, InspectionOptions(delimiter=","))
    # Read with commas, the decimal commas split values: the verify page says where.
    assert inspection.problem == (
        "input.csv: row 1 (line 2) has 2 values where the header has 1 column"
    )


def test_spreadsheet_trailing_columns_are_dropped():
    inspection = inspect_upload(upload_case("excel-trailing-columns"))
    assert inspection.ok, inspection.problem
    assert [column.name for column in inspection.columns] == ["region", "month", "visits"]


def test_a_value_under_no_header_is_refused():
    inspection = inspect_upload(upload(b"a,b,\n1,2,\n3,4,x\n"))
    assert inspection.problem == (
        'data.csv: row 2 (line 3) has the value "x" in column 3, which has no header'
    )


def test_long_headers_get_unique_names_of_at_most_63_bytes():
    inspection = inspect_upload(upload_case("long-headers"))
    assert inspection.ok, inspection.problem
    names = [column.name for column in inspection.columns]
    assert len(set(names)) == len(names)
    assert all(identifier_bytes(name) <= MAX_IDENTIFIER_BYTES for name in names)
    assert names[0] == "area"
    assert all(column.renamed for column in inspection.columns[1:])


def test_reserved_and_repeated_headers_are_renamed():
    inspection = inspect_upload(upload(b"id,Name,name,2nd\n1,a,b,c\n"))
    assert [column.name for column in inspection.columns] == ["id_1", "name_1", "name", "c_2nd"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty.csv", "empty.csv: no data rows (the file is empty)"),
        ("header_only.csv", "header_only.csv: no data rows (the file has only its header)"),
    ],
)
def test_empty_files_are_refused(name, message):
    inspection = inspect_upload(upload_case("empty-files", name))
    assert inspection.problem == message


def test_the_full_file_of_the_empty_files_case_is_accepted():
    assert inspect_upload(upload_case("empty-files", "full.csv")).ok


def test_a_file_without_a_header_row_is_refused():
    inspection = inspect_upload(upload(b"1,2024-01-01,3.5\n2,2024-01-02,4\n"))
    assert inspection.problem.startswith("data.csv: no header row: the first line")


def test_a_row_with_another_number_of_values_is_refused_naming_it():
    inspection = inspect_upload(upload(b"a,b,c\n1,2,3\n4,5\n"))
    assert (
        inspection.problem == "data.csv: row 2 (line 3) has 2 values where the header has 3 columns"
    )


def test_an_undecodable_file_is_refused_naming_the_row():
    # A UTF-8 byte-order mark decides the encoding; the bytes after it are not UTF-8.
    data_file = upload(codecs.BOM_UTF8 + b'name\n"two\nlines"\ncaf\xe9\n')
    inspection = inspect_upload(data_file)
    assert inspection.problem == (
        "data.csv: row 2 (line 4) cannot be read as UTF-8 (invalid continuation byte); "
        "choose the file's encoding"
    )


def test_a_workbook_s_refusal_names_its_sheet_and_the_row_in_the_sheet():
    data_file = upload(workbook_bytes({"Data": [["a", None], [1, None], [2, "x"]]}), "book.xlsx")
    inspection = inspect_upload(data_file)
    assert inspection.problem == (
        'book.xlsx, sheet "Data": row 2 (row 3 of the sheet) has the value "x" in column 2, '
        "which has no header"
    )


def test_a_windows_1252_file_is_read_in_its_encoding():
    inspection = inspect_upload(upload("ville\nCôte d'Ivoire\n".encode("cp1252") * 200))
    assert inspection.ok, inspection.problem
    assert inspection.columns[0].samples[0] == "Côte d'Ivoire"


def test_more_columns_than_a_table_holds_are_refused():
    header = ",".join(f"c{index}" for index in range(1599))
    row = ",".join("1" for _ in range(1599))
    inspection = inspect_upload(upload(f"{header}\n{row}\n".encode()))
    assert "1601 columns" in inspection.problem and "at most 1600" in inspection.problem


def test_a_file_over_the_size_limit_is_refused_on_upload(settings):
    settings.UPLOAD_MAX_BYTES = 100
    data_file = upload(b"a\n" + b"1\n" * 100)
    assert data_file.state == "failed"
    assert data_file.error_message == (
        "data.csv: the file is larger than 100 bytes, the most an upload takes"
    )


def test_types_are_inferred_from_the_window_only(settings):
    settings.UPLOAD_INFERENCE_ROWS = 3
    # Row 4 is text and row 5 has a value too many: neither is read.
    inspection = inspect_upload(upload(b"n\n1\n2\n3\nfour\n5,6\n"))
    assert inspection.ok, inspection.problem
    assert types_of(inspection) == {"n": "integer"}
    assert inspection.rows_seen == 3 and not inspection.complete


def test_changes_from_the_current_version_are_listed():
    pipeline = make_pipeline()
    upload(b"a,b\n1,x\n", pipeline=pipeline).__class__.objects.filter(pipeline=pipeline).update(
        state="completed", column_types=[["a", "integer"], ["b", "text"]]
    )
    inspection = inspect_upload(upload(b"a,c\nx,1\n", pipeline=pipeline))
    assert inspection.current_columns == [("a", "integer"), ("b", "text")]
    changes = compare_columns(inspection.current_columns, inspection.names_and_types)
    assert [change.message for change in changes] == [
        "column b is in the current version but not in this file",
        "column a changes type from integer to text",
        "column c is new",
    ]


def test_a_workbook_is_inspected_from_its_first_sheet_or_the_chosen_one():
    data = workbook_bytes(
        {"First": [["name", "count"], ["a", 1], ["b", 2]], "Second": [["day"], ["2024-01-31"]]}
    )
    data_file = upload(data, "book.xlsx")
    assert data_file.state == "uploaded", data_file.error_message
    inspection = inspect_upload(data_file)
    assert inspection.ok, inspection.problem
    assert inspection.sheet == "First"
    assert types_of(inspection) == {"name": "text", "count": "integer"}
    inspection = inspect_upload(data_file, InspectionOptions(sheet="Second"))
    assert types_of(inspection) == {"day": "date"}
    data_file.refresh_from_db()
    assert data_file.csv_key == f"{data_file.storage_key}.csv" and data_file.sheet == "Second"


def test_a_sheet_the_workbook_lacks_is_refused_naming_its_sheets():
    data_file = upload(workbook_bytes({"Only": [["a"], [1]]}), "book.xlsx")
    inspection = inspect_upload(data_file, InspectionOptions(sheet="Other"))
    assert inspection.problem == "book.xlsx: no sheet 'Other'; its sheets are 'Only'"


def test_a_file_named_xlsx_that_is_no_workbook_fails_on_upload():
    data_file = upload(b"a,b\n1,2\n", "book.xlsx")
    assert data_file.state == "failed"
    assert data_file.error_message.startswith("book.xlsx: not an Excel workbook")


def test_day_first_dates_are_proposed_as_dates_with_their_format():
    inspection = inspect_upload(upload_case("dates-day-first"))
    assert inspection.ok, inspection.problem
    placed_on = inspection.columns[1]
    assert (placed_on.name, placed_on.type, placed_on.date_format) == (
        "placed_on",
        "date",
        "%d/%m/%Y",
    )
    assert placed_on.also_fits == []  # 31/12/2020 proves day first
    assert placed_on.misfit("date", "%m/%d/%Y") == (3, "31/12/2020")
    assert placed_on.misfit("date", None) == (1, "01/02/2020")


def test_dates_that_fit_day_and_month_first_are_proposed_day_first():
    inspection = inspect_upload(upload_case("dates-day-first", "input-ambiguous.csv"))
    placed_on = inspection.columns[1]
    assert (placed_on.type, placed_on.date_format) == ("date", "%d/%m/%Y")
    assert placed_on.also_fits == ["%m/%d/%Y"]


def test_the_date_format_is_inferred_beside_a_decimal_comma():
    inspection = inspect_upload(upload(b"day;amount\n31.12.2024;1,5\n01.02.2024;2\n"))
    assert inspection.decimal_separator == ","
    assert [(c.type, c.date_format) for c in inspection.columns] == [
        ("date", "%d.%m.%Y"),
        ("numeric", None),
    ]
