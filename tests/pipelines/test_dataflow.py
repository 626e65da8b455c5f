"""The data-flow trigger against a stand-in on 127.0.0.1 that checks HAWK signatures."""

import pytest

from pipelines.dataflow import (
    DataflowConfig,
    DataflowError,
    execution_date,
    run_dataflow,
    trigger_dag,
    wait_for_dag_run,
)
from tests.pipelines.conftest import DATAFLOW_ID


def test_trigger_posts_the_table_signed_and_returns_the_run_id(dataflow):
    config = DataflowConfig.from_settings()

    run_id = trigger_dag(config, "ons.postcode_directory", "L1")

    assert run_id == "manual__2024-01-31T10:00:00+00:00"
    assert dataflow.refused == 0
    assert dataflow.triggered == [
        {
            "conf": {
                "data_uploader_schema_name": "ons.postcode_directory",
                "data_uploader_table_name": "L1",
            }
        }
    ]
    [request] = dataflow.server.requests
    assert request.path == "/api/experimental/dags/DSSGenericPipeline/dag_runs"
    assert request.headers["Authorization"].startswith("Hawk ")
    assert f'id="{DATAFLOW_ID}"' in request.headers["Authorization"]
    assert request.headers["Content-Type"] == "application/json"


def test_a_wrong_key_is_refused_by_dataflow(dataflow, settings):
    settings.DATAFLOW_HAWK_KEY = "not-the-key"

    with pytest.raises(DataflowError, match="401"):
        trigger_dag(DataflowConfig.from_settings(), "s.t", "L0")
    assert dataflow.refused == 1 and dataflow.triggered == []


def test_the_run_is_polled_by_execution_date_until_it_is_no_longer_running(dataflow):
    dataflow.states = ["running", "running", "success"]
    naps = []

    state = wait_for_dag_run(
        DataflowConfig.from_settings(),
        "manual__2024-01-31T10:00:00+00:00",
        poll_interval=5,
        sleep=naps.append,
    )

    assert state == "success"
    assert dataflow.polls == ["2024-01-31T10:00:00"] * 3
    assert naps == [5, 5]
    assert dataflow.refused == 0


def test_polling_gives_up_after_the_timeout(dataflow):
    dataflow.states = ["running"]

    with pytest.raises(DataflowError, match="still running"):
        wait_for_dag_run(
            DataflowConfig.from_settings(),
            "manual__2024-01-31T10:00:00+00:00",
            poll_interval=0.01,
            timeout=0.05,
        )


def test_run_dataflow_fails_when_the_run_fails(dataflow):
    dataflow.states = ["running", "failed"]

    with pytest.raises(DataflowError, match="ended 'failed'"):
        run_dataflow(DataflowConfig.from_settings(), "s.t", "L0", poll_interval=0)


def test_run_dataflow_returns_when_the_run_succeeds(dataflow):
    run_dataflow(DataflowConfig.from_settings(), "s.t", "L0", poll_interval=0)

    assert len(dataflow.triggered) == 1 and len(dataflow.polls) == 1


def test_no_configuration_without_a_base_url(settings):
    settings.DATAFLOW_BASE_URL = ""

    assert DataflowConfig.from_settings() is None


def test_execution_date_is_the_run_id_between_the_prefix_and_the_offset():
    assert execution_date("manual__2024-01-31T10:00:00+00:00") == "2024-01-31T10:00:00"
    with pytest.raises(DataflowError):
        execution_date("no-separator")
