"""Builders of the upload engine's tests: pipelines, stored and verified uploads, workbooks,
a worker, and the rows a pipeline's table holds."""

import io
import subprocess
import sys
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import connection
from psycopg import sql

from uploads.inspection import inspect_upload
from uploads.journey import store_upload, verify_upload
from uploads.models import Pipeline, PipelineDataFile

PROJECT_DIR = Path(__file__).resolve().parents[2]
CASES = Path(__file__).resolve().parent / "cases"


def make_pipeline(organisation: str = "test_org", dataset: str = "things") -> Pipeline:
    return Pipeline.objects.get_or_create(organisation=organisation, dataset=dataset)[0]


def make_user(username: str = "analyst"):
    return get_user_model().objects.get_or_create(username=username)[0]


def upload(
    data: bytes, filename: str = "data.csv", pipeline: Pipeline | None = None
) -> PipelineDataFile:
    """``data`` stored as an upload of ``pipeline`` (a new test pipeline when None)."""
    return store_upload(pipeline or make_pipeline(), io.BytesIO(data), filename, make_user())


def upload_case(folder: str, name: str = "input.csv") -> PipelineDataFile:
    return upload((CASES / folder / name).read_bytes(), name)


def verified(data_file: PipelineDataFile, **changed_types: str) -> PipelineDataFile:
    """Verify the upload with the inferred names and types, ``changed_types`` applied."""
    inspection = inspect_upload(data_file)
    assert inspection.ok, inspection.problem
    pairs = [(name, changed_types.get(name, kind)) for name, kind in inspection.names_and_types]
    verify_upload(data_file, pairs)
    data_file.refresh_from_db()
    return data_file


def rows_of(pipeline, order_by: str) -> list[dict]:
    """Every row of the pipeline's table, as column -> value, ordered by ``order_by``."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("SELECT * FROM {} ORDER BY {}")
            .format(sql.Identifier(pipeline.schema_name, "L0"), sql.Identifier(order_by))
            .as_string(connection.connection)
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def data_of(rows: list[dict]) -> list[dict]:
    return [
        {key: value for key, value in row.items() if key not in ("id", "datafile_created")}
        for row in rows
    ]


def workbook_bytes(sheets: dict[str, list[list]]) -> bytes:
    """An .xlsx workbook with ``sheets`` (name -> rows), made with openpyxl."""
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def run_worker(environment: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``manage.py db_worker`` until the queue is empty; the finished process."""
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload"],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
