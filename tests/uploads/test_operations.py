"""Operations on uploads: stale uploads marked failed, the scheduler, admin, model rules."""

import os
import signal
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tests.uploads.builders import make_pipeline, make_user, upload
from uploads.models import Pipeline, PipelineDataFile

State = PipelineDataFile.State


def stuck(state: str, hours: float, **fields) -> PipelineDataFile:
    data_file = upload(b"a\n1\n")
    since = timezone.now() - timedelta(hours=hours)
    PipelineDataFile.objects.filter(pk=data_file.pk).update(
        state=state, verified_at=since, **fields
    )
    return data_file


@pytest.mark.django_db
def test_uploads_stuck_for_over_a_day_are_marked_failed(capsys):
    old_verified = stuck(State.VERIFIED, 25)
    old_processing = stuck(
        State.PROCESSING_DSS, 30, started_processing_at=timezone.now() - timedelta(hours=25)
    )
    recent = stuck(State.PROCESSING_DATAFLOW, 30, started_processing_at=timezone.now())
    old_uploaded = stuck(State.UPLOADED, 48)

    call_command("mark_stale_uploads")

    assert "2 upload(s) stuck for over 24 hours marked failed" in capsys.readouterr().out
    states = {
        data_file.pk: PipelineDataFile.objects.get(pk=data_file.pk).state
        for data_file in (old_verified, old_processing, recent, old_uploaded)
    }
    assert states == {
        old_verified.pk: State.FAILED,
        old_processing.pk: State.FAILED,
        recent.pk: State.PROCESSING_DATAFLOW,
        old_uploaded.pk: State.UPLOADED,
    }
    failed = PipelineDataFile.objects.get(pk=old_verified.pk)
    assert (
        failed.error_message == "processing did not finish within 24 hours; upload the file again"
    )


@pytest.mark.django_db(transaction=True)
def test_the_scheduler_runs_mark_stale_uploads_at_start_and_stops_on_sigterm(start_scheduler):
    data_file = stuck(State.VERIFIED, 25)
    scheduler = start_scheduler()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            data_file.refresh_from_db()
            if data_file.state == State.FAILED:
                break
            assert scheduler.poll() is None, scheduler.communicate()
            time.sleep(0.2)
        assert data_file.state == State.FAILED
        assert scheduler.poll() is None  # still running: the next run is in an hour
    finally:
        os.kill(scheduler.pid, signal.SIGTERM)
        out, err = scheduler.communicate(timeout=30)
    assert scheduler.returncode == 0, err
    assert (
        "Scheduler running: mark_stale_uploads, drop_expired_versions, drop_abandoned_tables."
        in out
    )
    assert "Scheduler stopped." in out


@pytest.mark.django_db
def test_admin_lists_uploads_with_state_error_and_uploader(admin_client):
    data_file = upload(b"a\n1\n")
    PipelineDataFile.objects.filter(pk=data_file.pk).update(
        state=State.FAILED, error_message="line 3, column count: 'many' is not an integer"
    )
    page = admin_client.get(reverse("admin:uploads_pipelinedatafile_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "line 3, column count: &#x27;many&#x27; is not an integer" in text
    assert make_user().username in text
    assert ">failed<" in text.replace("Failed", "failed")


@pytest.mark.django_db
def test_pipeline_names_are_normalised_in_clean():
    pipeline = Pipeline(organisation=" ONS ", dataset="Postcode.Directory")
    pipeline.full_clean()
    assert (pipeline.organisation, pipeline.dataset) == ("ons", "postcode_directory")
    assert pipeline.slug == "ons-postcode_directory"


@pytest.mark.django_db
def test_a_schema_name_over_63_bytes_is_refused_in_clean():
    pipeline = Pipeline(organisation="o" * 40, dataset="d" * 40)
    with pytest.raises(ValidationError) as error:
        pipeline.full_clean()
    assert "is 81 bytes long" in str(error.value)


@pytest.mark.django_db
def test_slugs_of_different_pipelines_never_collide():
    first = make_pipeline("a_b", "c")
    second = make_pipeline("a", "b_c")
    assert first.slug != second.slug
