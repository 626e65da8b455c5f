"""Builders of the upload engine's tests: pipelines, stored uploads, workbooks, a worker."""

import io
import subprocess
import sys
from pathlib import Path

from django.contrib.auth import get_user_model

from uploads.journey import store_upload
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
