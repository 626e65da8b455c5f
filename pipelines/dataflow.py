"""The data-flow trigger: start the DAG that copies a table downstream, and follow its run.

``POST {base}/api/experimental/dags/{dag_id}/dag_runs`` with
``{"conf": {"data_uploader_schema_name": ..., "data_uploader_table_name": ...}}``, HAWK-signed
(sha256); the run is then polled at ``.../dag_runs/<execution date>`` until its state is no
longer ``running``.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import mohawk
import requests
from django.conf import settings

logger = logging.getLogger(__name__)

TIMEOUT = (10, 60)
POLL_INTERVAL_SECONDS = 30.0
POLL_TIMEOUT_SECONDS = 30 * 60.0


class DataflowError(Exception):
    """The trigger was refused, the run could not be followed, or it did not succeed."""


@dataclass(frozen=True)
class DataflowConfig:
    base_url: str
    hawk_id: str
    hawk_key: str
    dag_id: str = "DSSGenericPipeline"

    @classmethod
    def from_settings(cls) -> "DataflowConfig | None":
        """The settings' configuration, or None when ``DATAFLOW_BASE_URL`` is unset."""
        if not settings.DATAFLOW_BASE_URL:
            return None
        return cls(
            base_url=settings.DATAFLOW_BASE_URL.rstrip("/"),
            hawk_id=settings.DATAFLOW_HAWK_ID,
            hawk_key=settings.DATAFLOW_HAWK_KEY,
            dag_id=settings.DATAFLOW_UPLOADER_DAG_ID or "DSSGenericPipeline",
        )

    @property
    def dag_runs_url(self) -> str:
        return f"{self.base_url}/api/experimental/dags/{self.dag_id}/dag_runs"


def trigger_dag(config: DataflowConfig, schema: str, table: str) -> str:
    """Start a DAG run for ``schema``.``table``; return its ``run_id``."""
    body = json.dumps(
        {"conf": {"data_uploader_schema_name": schema, "data_uploader_table_name": table}}
    )
    response = _signed(config, "POST", config.dag_runs_url, body, "application/json")
    try:
        run_id = response.json()["run_id"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataflowError(
            f"data-flow answered without a run_id: {response.text[:200]}"
        ) from error
    logger.info("data-flow: started %s for %s.%s (run %s)", config.dag_id, schema, table, run_id)
    return run_id


def execution_date(run_id: str) -> str:
    """``manual__2024-01-31T10:00:00+00:00`` -> ``2024-01-31T10:00:00``."""
    if "__" not in run_id:
        raise DataflowError(f"unexpected run id {run_id!r}")
    return run_id.split("__", 1)[1].split("+", 1)[0]


def dag_run_state(config: DataflowConfig, run_id: str) -> str:
    url = f"{config.dag_runs_url}/{execution_date(run_id)}"
    response = _signed(config, "GET", url, "", "")
    try:
        return response.json()["state"]
    except (ValueError, KeyError, TypeError) as error:
        raise DataflowError(f"data-flow answered without a state: {response.text[:200]}") from error


def wait_for_dag_run(
    config: DataflowConfig,
    run_id: str,
    *,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    timeout: float = POLL_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll the run until it is no longer running; return its final state.

    Raises ``DataflowError`` when it is still running after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        state = dag_run_state(config, run_id)
        if state != "running":
            return state
        if time.monotonic() >= deadline:
            raise DataflowError(f"data-flow run {run_id} still running after {timeout:.0f} s")
        sleep(poll_interval)


def run_dataflow(
    config: DataflowConfig,
    schema: str,
    table: str,
    *,
    poll_interval: float = POLL_INTERVAL_SECONDS,
    timeout: float = POLL_TIMEOUT_SECONDS,
) -> None:
    """Trigger the DAG for the table and wait for it; raise ``DataflowError`` unless it succeeds."""
    run_id = trigger_dag(config, schema, table)
    state = wait_for_dag_run(config, run_id, poll_interval=poll_interval, timeout=timeout)
    if state != "success":
        raise DataflowError(f"data-flow run {run_id} for {schema}.{table} ended {state!r}")


def _signed(
    config: DataflowConfig, method: str, url: str, body: str, content_type: str
) -> requests.Response:
    sender = mohawk.Sender(
        {"id": config.hawk_id, "key": config.hawk_key, "algorithm": "sha256"},
        url,
        method,
        content=body,
        content_type=content_type,
    )
    headers = {"Authorization": sender.request_header, "Content-Type": content_type}
    try:
        response = requests.request(
            method, url, data=body.encode() or None, headers=headers, timeout=TIMEOUT
        )
        response.raise_for_status()
    except requests.RequestException as error:
        raise DataflowError(f"data-flow {method} {url} failed: {error}") from error
    return response
