"""Processing verified uploads: a real ``db_worker`` loads them, a failure keeps the previous
version served, versions are restored, data-flow is triggered."""

import random
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.pipelines.conftest import dataflow, http_server  # noqa: F401 (fixtures)
from tests.uploads.builders import (
    PROJECT_DIR,
    data_of,
    make_pipeline,
    rows_of,
    run_worker,
    upload,
    upload_case,
    verified,
    workbook_bytes,
)
from uploads.journey import mark_stale_uploads, progress, restore_version
from uploads.models import PipelineDataFile
from uploads.processing import process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_environment(service_environment, database_url, storage_folder) -> dict[str, str]:
    return {
        **service_environment,
        "DJANGO_SETTINGS_MODULE": "dss.test_settings",
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
    }


def test_a_verified_upload_is_loaded_by_the_worker(worker_environment):
    data_file = verified(upload(b"name,count,day\na,1,2024-01-31\nb,NULL,\nc,N/A,None\n"))
    assert progress(data_file) == {
        "state": "verified",
        "progress": 30,
        "info": "Waiting for processing to start",
    }

    worker = run_worker(worker_environment)
    assert worker.returncode == 0, worker.stderr

    data_file.refresh_from_db()
    assert data_file.state == "completed", data_file.error_message
    assert data_file.row_count == 3
    assert data_file.started_processing_at <= data_file.processed_at
    assert progress(data_file)["progress"] == 100
    rows = data_of(rows_of(data_file.pipeline, "name"))
    assert [(row["name"], row["count"]) for row in rows] == [("a", 1), ("b", None), ("c", None)]
    assert rows[0]["day"].isoformat() == "2024-01-31" and rows[2]["day"] is None


def test_decimal_commas_load_as_numbers(worker_environment):
    data_file = verified(upload_case("semicolon-decimal-comma"))
    assert data_file.decimal_separator == "," and data_file.delimiter == ";"
    assert run_worker(worker_environment).returncode == 0
    data_file.refresh_from_db()
    assert data_file.state == "completed", data_file.error_message
    amounts = [row["montant"] for row in rows_of(data_file.pipeline, "ville")]
    assert amounts == [Decimal("12"), Decimal("1234.56"), Decimal("87.5")]


def test_spreadsheet_trailing_columns_load_without_them(worker_environment):
    data_file = verified(upload_case("excel-trailing-columns"))
    assert run_worker(worker_environment).returncode == 0
    data_file.refresh_from_db()
    assert data_file.state == "completed", data_file.error_message
    rows = data_of(rows_of(data_file.pipeline, "id"))
    assert set(rows[0]) == {"region", "month", "visits"}
    assert data_file.row_count == len(rows)


def test_a_value_that_does_not_fit_fails_and_the_previous_version_stays(worker_environment):
    pipeline = make_pipeline()
    first = verified(upload(b"name,count\na,1\nb,2\n", pipeline=pipeline))
    assert run_worker(worker_environment).returncode == 0
    before = rows_of(pipeline, "id")
    assert len(before) == 2

    # The person chooses integer for a column that holds a word in its third row.
    second = verified(upload(b"name,count\nc,3\nd,4\ne,many\n", pipeline=pipeline), count="integer")
    assert run_worker(worker_environment).returncode == 0
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.state == "failed"
    assert "line 4" in second.error_message
    assert "count" in second.error_message and "many" in second.error_message
    assert rows_of(pipeline, "id") == before
    assert pipeline.current_version() == first
    answer = progress(second)
    assert answer["state"] == "failed" and answer["progress"] == 100
    assert answer["info"].startswith("Sorry, the upload failed: ")


def test_each_version_replaces_the_table_and_an_older_one_is_restored(worker_environment):
    pipeline = make_pipeline()
    first = verified(upload(b"name,count\na,1\nb,2\n", pipeline=pipeline))
    assert run_worker(worker_environment).returncode == 0
    second = verified(upload(b"name\nz\n", pipeline=pipeline))
    assert run_worker(worker_environment).returncode == 0
    assert data_of(rows_of(pipeline, "id")) == [{"name": "z"}]
    assert list(pipeline.versions()) == [second, first]

    restored = restore_version(first)
    assert restored.state == "verified" and restored.restored_from == first
    assert run_worker(worker_environment).returncode == 0
    restored.refresh_from_db()
    assert restored.state == "completed", restored.error_message
    assert data_of(rows_of(pipeline, "id")) == [
        {"name": "a", "count": 1},
        {"name": "b", "count": 2},
    ]
    assert pipeline.current_version() == restored


def test_a_processed_upload_is_not_processed_twice():
    data_file = verified(upload(b"a\n1\n"))
    assert process(str(data_file.pk)) == "completed"
    assert process(str(data_file.pk)) == "completed"
    data_file.refresh_from_db()
    assert data_file.row_count == 1


def test_data_flow_is_triggered_and_polled_after_the_load(dataflow):  # noqa: F811
    data_file = verified(upload(b"a\n1\n"))
    assert process(str(data_file.pk)) == "completed"
    assert dataflow.triggered and dataflow.polls
    assert (
        dataflow.triggered[0]["conf"]["data_uploader_schema_name"] == data_file.pipeline.schema_name
    )


def test_a_failed_data_flow_run_fails_the_upload_saying_the_table_is_loaded(dataflow):  # noqa: F811
    dataflow.states = ["failed"]
    data_file = verified(upload(b"a\n1\n"))
    assert process(str(data_file.pk)) == "failed"
    data_file.refresh_from_db()
    assert data_file.error_message.startswith("the table holds this file's 1 rows, but data-flow")


def test_a_workbook_sheet_is_loaded_from_its_csv():
    data = workbook_bytes({"Data": [["name", "count", "day"], ["a", 1, date(2024, 1, 31)]]})
    data_file = verified(upload(data, "book.xlsx"))
    assert process(str(data_file.pk)) == "completed"
    rows = data_of(rows_of(data_file.pipeline, "id"))
    assert rows == [{"name": "a", "count": 1, "day": date(2024, 1, 31)}]


def test_a_value_under_no_header_past_the_window_fails_the_load(settings):
    settings.UPLOAD_INFERENCE_ROWS = 1
    data_file = verified(upload(b"a,b,\n1,2,\n3,4,stray\n"))
    assert process(str(data_file.pk)) == "failed"
    data_file.refresh_from_db()
    assert "line 3" in data_file.error_message and "stray" in data_file.error_message


def test_a_worker_killed_mid_load_leaves_the_previous_version_served(worker_environment):
    pipeline = make_pipeline()
    first = verified(upload(b"name,count\na,1\n", pipeline=pipeline))
    assert process(str(first.pk)) == "completed"
    big = b"name,count\n" + b"".join(b"row%d,%d\n" % (n, n) for n in range(1_000_000))
    second = verified(upload(big, pipeline=pipeline))

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
        cwd=PROJECT_DIR,
        env=worker_environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while PipelineDataFile.objects.get(pk=second.pk).state != "processing_dss":
            assert time.monotonic() < deadline and worker.poll() is None
            time.sleep(0.01)
        time.sleep(random.uniform(0, 0.5))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    second.refresh_from_db()
    assert second.state == "processing_dss"  # killed before it could record anything
    assert data_of(rows_of(pipeline, "id")) == [{"name": "a", "count": 1}]
    assert mark_stale_uploads(now=timezone.now() + timedelta(hours=25)) == 1
    second.refresh_from_db()
    assert second.state == "failed"
    assert pipeline.current_version() == first


def test_two_workers_never_process_one_upload_twice(worker_environment):
    data_file = verified(upload(b"a\n1\n2\n"))
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"]
            + ["--no-reload"],
            cwd=PROJECT_DIR,
            env=worker_environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read()
    data_file.refresh_from_db()
    assert data_file.state == "completed" and data_file.row_count == 2
    assert len(rows_of(data_file.pipeline, "id")) == 2


def test_a_day_first_file_loads_into_a_date_column(worker_environment):
    data_file = verified(upload_case("dates-day-first"))
    assert data_file.date_formats == {"placed_on": "%d/%m/%Y"}

    assert run_worker(worker_environment).returncode == 0

    data_file.refresh_from_db()
    assert data_file.state == "completed", data_file.error_message
    rows = data_of(rows_of(data_file.pipeline, "id"))
    assert [(row["order_ref"], row["placed_on"]) for row in rows] == [
        ("A-100", date(2020, 2, 1)),
        ("A-101", date(2020, 3, 12)),
        ("A-102", date(2020, 12, 31)),
    ]


def test_a_date_that_does_not_fit_its_format_fails_and_the_previous_version_stays(settings):
    pipeline = make_pipeline()
    first = verified(upload(b"ref,day\na,31/12/2024\n", pipeline=pipeline))
    assert process(str(first.pk)) == "completed"
    before = rows_of(pipeline, "id")
    # Inspection reads two rows; the third is written month first.
    settings.UPLOAD_INFERENCE_ROWS = 2
    data = b"ref,day\nb,31/12/2024\nc,05/01/2024\nd,12/31/2024\n"
    second = verified(upload(data, pipeline=pipeline))
    assert second.date_formats == {"day": "%d/%m/%Y"}

    assert process(str(second.pk)) == "failed"

    second.refresh_from_db()
    assert second.error_message == (
        'data.csv: row 3 (line 4), column day: the value "12/31/2024" does not fit the date '
        "format DD/MM/YYYY. Fix the value, or upload the file again and choose the date format "
        "its dates are written in (or the type text) for this column."
    )
    assert rows_of(pipeline, "id") == before
    assert pipeline.current_version() == first
