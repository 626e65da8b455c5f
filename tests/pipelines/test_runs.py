"""Runs of sources are recorded, from the commands and from tasks: status, summary, log; a
run that breaks is recorded as failed with its cause, never left running."""

import io

import pytest
from django.core.management import CommandError, call_command

from pipelines.models import DefinedSource, RunRecord
from pipelines.tasks import queue_run, run_source
from tests.pipelines.test_defined_sources import defined, listing

pytestmark = pytest.mark.django_db


def test_a_failed_fetch_is_recorded_with_its_cause(http_server):
    listing(url=f"{http_server.url}/missing").save()

    with pytest.raises(CommandError):
        call_command("fetch_sources", "--acme.orders", stdout=io.StringIO(), stderr=io.StringIO())

    record = RunRecord.objects.get()
    assert (record.kind, record.status, record.started_by) == (
        "fetch",
        "failed",
        "manage.py fetch_sources",
    )
    assert "failed: GET http://127.0.0.1" in record.summary and "404" in record.summary
    assert record.started <= record.finished


def test_a_fetch_from_a_listing_records_what_it_downloaded(http_server):
    http_server.routes["/list"] = (200, {}, b'<a href="/f/orders-2024-03.csv">x</a>')
    http_server.routes["/f/orders-2024-03.csv"] = (200, {}, b"code,Amount\na,1\n")
    listing(url=f"{http_server.url}/list").save()

    call_command("fetch_sources", "--acme.orders", stdout=io.StringIO())

    record = RunRecord.objects.get()
    assert record.status == "succeeded"
    assert record.summary == (
        "1 file(s) downloaded, 0 already stored\ndownloaded orders_2024-03.csv"
    )
    assert "downloaded http://127.0.0.1" in record.log


@pytest.mark.django_db(transaction=True)
def test_a_failed_file_makes_the_ingest_run_failed_with_the_files_error(store, pg):
    defined().save()
    store("acme/orders/bad.csv", b"code,Amount\nab,lots\n")

    with pytest.raises(CommandError):
        call_command("ingest_sources", "--acme.orders", stdout=io.StringIO(), stderr=io.StringIO())

    record = RunRecord.objects.get()
    assert record.status == "failed"
    assert 'bad.csv failed: bad.csv: line 2, column amount, value "lots"' in record.summary


def test_a_queued_run_of_a_source_deleted_meanwhile_fails_naming_it():
    row = defined()
    row.save()
    record = queue_run("acme.orders", RunRecord.Kind.INGEST, "admin: someone")
    DefinedSource.objects.all().delete()

    assert run_source.call(record.pk) == "failed"

    record.refresh_from_db()
    assert record.status == "failed"
    assert record.summary == "KeyError: \"unknown source 'acme.orders'\""
