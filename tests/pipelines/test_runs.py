"""Runs of sources are recorded, from the commands and from tasks: status, summary, log; a
run that breaks is recorded as failed with its cause, never left running, and one whose
process was killed is found interrupted."""

import io
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from pipelines.catalogue import CATALOGUE
from pipelines.desk import last_runs
from pipelines.models import DefinedSource, RunRecord
from pipelines.runs import RUN_LOCK_CLASS, settle_interrupted_runs
from pipelines.tasks import queue_run, run_source
from tests.pipelines.test_defined_sources import defined, listing

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


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


def _killed_mid_ingest(env: dict[str, str]) -> None:
    """Start ``manage.py ingest_sources --dit.baci`` and SIGKILL it once it is loading."""
    child = subprocess.Popen(
        [sys.executable, "manage.py", "ingest_sources", "--dit.baci"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert any(b"dit.baci: loading" in line for line in child.stderr)
    child.kill()
    child.wait()
    child.stderr.close()


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_process_was_killed_is_marked_interrupted_and_a_live_one_is_not(
    database_url, storage_folder, service_environment, store, conninfo, pg
):
    rows = "\n".join(f"2001,{number},4,8,1.5,2" for number in range(400_000))
    store("dit/baci/2001.csv", f"t,hs6,i,j,v,q\n{rows}\n".encode())
    env = {
        **service_environment,
        "DATABASE_URL": database_url,
        "DSS_STORAGE_DIR": str(storage_folder),
        "DEBUG": "1",
    }
    _killed_mid_ingest(env)
    killed = RunRecord.objects.get()
    assert killed.status == "running"  # it could not record its end
    live = RunRecord.objects.create(source="dit.baci", kind="ingest", status="running")
    with psycopg.connect(conninfo, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (RUN_LOCK_CLASS, live.pk))

        assert settle_interrupted_runs() == 1
        shown = {run.pk: run for run in last_runs(CATALOGUE.get("dit.baci"))}

    assert shown[killed.pk].status == "failed"
    assert shown[killed.pk].summary.startswith("interrupted: the process running it stopped")
    assert shown[killed.pk].finished is not None
    assert shown[live.pk].status == "running"
    # Its lock gone with its connection, the live run is found interrupted as well.
    assert settle_interrupted_runs() == 1


@pytest.mark.django_db(transaction=True)
def test_a_run_that_ends_releases_its_lock_and_is_left_as_it_recorded_itself(store, pg):
    store("dit/baci/2002.csv", b"t,hs6,i,j,v,q\n2002,1,4,8,1.5,2\n")

    call_command("ingest_sources", "--dit.baci", stdout=io.StringIO())

    assert settle_interrupted_runs() == 0
    assert RunRecord.objects.get().status == "succeeded"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
            [RUN_LOCK_CLASS],
        )
        assert cursor.fetchone()[0] == 0
