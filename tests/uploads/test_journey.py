"""The verify step's checks of the chosen date formats (``uploads.journey.verify_upload``)."""

import pytest

from tests.uploads.builders import upload, upload_case
from uploads.inspection import inspect_upload
from uploads.journey import VerificationError, restore_version, verify_upload
from uploads.models import PipelineDataFile

pytestmark = pytest.mark.django_db

ORDERS = [("order_ref", "text"), ("placed_on", "date"), ("amount", "numeric")]


def refusal(data_file: PipelineDataFile, pairs, date_formats) -> VerificationError:
    with pytest.raises(VerificationError) as refused:
        verify_upload(data_file, pairs, date_formats=date_formats)
    data_file.refresh_from_db()
    assert data_file.state == "uploaded" and data_file.date_formats == {}
    return refused.value


def test_the_detected_date_formats_are_stored_with_the_column_types():
    data_file = upload_case("dates-day-first")

    verify_upload(data_file, ORDERS)

    data_file.refresh_from_db()
    assert data_file.column_types == [list(pair) for pair in ORDERS]
    assert data_file.date_formats == {"placed_on": "%d/%m/%Y"}
    restored = restore_version(_completed(data_file))
    assert restored.date_formats == {"placed_on": "%d/%m/%Y"}


def test_a_chosen_format_is_stored_and_one_for_another_type_is_ignored():
    data_file = upload_case("dates-day-first", "input-ambiguous.csv")
    pairs = [("order_ref", "text"), ("placed_on", "timestamp"), ("amount", "numeric")]

    verify_upload(data_file, pairs, date_formats=["%d/%m/%Y", "%m/%d/%Y", ""])

    data_file.refresh_from_db()
    assert data_file.date_formats == {"placed_on": "%m/%d/%Y"}


def test_a_format_a_value_does_not_fit_is_refused_naming_column_row_and_value():
    data_file = upload_case("dates-day-first")

    error = refusal(data_file, ORDERS, ["", "%m/%d/%Y", ""])

    assert error.errors == {
        2: "column 2 (placed_on): row 3's value '31/12/2020' does not fit the date format "
        "MM/DD/YYYY; choose the format its dates are written in, or the type text"
    }
    assert error.fields == {2: "date_format"}


def test_iso_8601_is_checked_too():
    data_file = upload_case("dates-day-first")

    error = refusal(data_file, ORDERS, ["", "", ""])

    assert error.errors[2].startswith(
        "column 2 (placed_on): row 1's value '01/02/2020' does not fit the date format "
        "YYYY-MM-DD (ISO 8601)"
    )


@pytest.mark.parametrize(
    ("kind", "date_format", "message"),
    [
        ("date", "%d %B %Y", "'%d %B %Y' is not a date format an upload takes; choose one of"),
        ("date", "%d/%m/%Y %H:%M", "the date format DD/MM/YYYY HH:MM has a time"),
    ],
)
def test_a_format_an_upload_does_not_take_is_refused(kind, date_format, message):
    data_file = upload_case("dates-day-first")
    pairs = [("order_ref", "text"), ("placed_on", kind), ("amount", "numeric")]

    error = refusal(data_file, pairs, ["", date_format, ""])

    assert error.errors[2].startswith(f"column 2 (placed_on): {message}")


def test_a_timestamp_column_with_a_time_format_is_checked_against_its_values():
    data_file = upload(b"seen_at\n31/12/2024 23:59\n01/02/2024 7:05\n")
    verify_upload(data_file, [("seen_at", "timestamp")], date_formats=["%d/%m/%Y %H:%M"])
    data_file.refresh_from_db()
    assert data_file.date_formats == {"seen_at": "%d/%m/%Y %H:%M"}


def _completed(data_file: PipelineDataFile) -> PipelineDataFile:
    data_file.state = "completed"
    data_file.save(update_fields=["state"])
    return data_file


def test_an_upload_streams_into_an_s3_bucket(s3_storage, s3_client):
    data = b"name,count\n" + b"".join(b"row %d,%d\n" % (n, n) for n in range(50_000))

    data_file = upload(data, "counts.csv")

    stored = s3_client.get_object(Bucket=s3_storage, Key=data_file.storage_key)["Body"].read()
    assert stored == data
    assert inspect_upload(data_file).ok
