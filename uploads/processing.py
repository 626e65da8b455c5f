"""Processing a verified upload: its file loaded into the pipeline's table, then data-flow.

An upload is an incremental L0 loaded with force: each processed file replaces the table
(``pipelines.loading.load_file`` with ``rebuild``), atomically, so a file that fails leaves the
previous version served. States: ``verified`` -> ``processing_dss`` -> ``processing_dataflow``
(only when ``DATAFLOW_BASE_URL`` is set) -> ``completed``, or ``failed`` with a message in the
uploader's terms (``uploads.failures``): the file's name, the row as the verify page counts
rows, the column and value that broke, why, and what to do.
"""

import logging

from django.db import connection
from django.utils import timezone

from pipelines.dataflow import DataflowConfig, DataflowError, run_dataflow
from pipelines.datasets import Column, Dataset, Mode
from pipelines.loading import LoadError, LoadResult, load_file
from pipelines.reading import ReadError, open_datafile
from uploads.failures import Place, failure_message
from uploads.inspection import upload_file_format
from uploads.models import PipelineDataFile

logger = logging.getLogger(__name__)

State = PipelineDataFile.State


def upload_dataset(data_file: PipelineDataFile) -> Dataset:
    """The dataset definition of an upload: its chosen names, types and date formats, read
    as verified."""
    pipeline = data_file.pipeline
    return Dataset(
        organisation=pipeline.organisation,
        name=pipeline.dataset,
        mode=Mode.INCREMENTAL,
        columns=tuple(
            Column(name, kind, date_format=data_file.date_format_of(name))
            for name, kind in data_file.column_types
        ),
        file_format=upload_file_format(
            data_file.delimiter,
            data_file.quote,
            data_file.encoding or "utf-8",
            decimal_comma=data_file.decimal_separator == ",",
        ),
    )


def process(file_id: str) -> str:
    """Process the upload ``file_id`` if it is ``verified``; returns its final state.

    Runs outside any transaction (the load is one transaction of its own). An upload that
    is not ``verified`` (taken by another worker, marked stale) is left alone.
    """
    claimed = PipelineDataFile.objects.filter(pk=file_id, state=State.VERIFIED).update(
        state=State.PROCESSING_DSS, started_processing_at=timezone.now(), error_message=""
    )
    data_file = PipelineDataFile.objects.select_related("pipeline").get(pk=file_id)
    if not claimed:
        logger.info("upload %s is %s, not verified; not processed", file_id, data_file.state)
        return data_file.state
    dataset = None
    try:
        dataset = upload_dataset(data_file)
        result = _load(data_file, dataset)
    except (LoadError, ReadError, ValueError, OSError) as error:
        file_format = dataset.file_format if dataset is not None else None
        message = failure_message(data_file, file_format, error)
        return _failed(data_file, message, f" (the load said: {error})")
    data_file.row_count = result.rows_read
    data_file.save(update_fields=["row_count"])
    config = DataflowConfig.from_settings()
    if config is not None:
        _set_state(data_file, State.PROCESSING_DATAFLOW)
        try:
            run_dataflow(config, data_file.pipeline.schema_name, data_file.pipeline.table_name)
        except DataflowError as error:
            return _failed(
                data_file,
                f"the table holds this file's {result.rows_read} rows, but data-flow did not "
                f"copy them: {error}",
            )
    data_file.processed_at = timezone.now()
    _set_state(data_file, State.COMPLETED, "processed_at")
    return State.COMPLETED


def _load(data_file: PipelineDataFile, dataset: Dataset) -> LoadResult:
    connection.ensure_connection()
    label = Place.of(data_file).file
    with open_datafile(data_file.data_key, dataset, label=label) as opened:
        return load_file(
            connection.connection,
            dataset,
            opened.files,
            datafile=f"{data_file.original_name or 'upload'} ({data_file.pk})",
            member=data_file.original_name or None,
            rebuild=True,
        )


def _set_state(data_file: PipelineDataFile, state: str, *fields: str) -> None:
    data_file.state = state
    data_file.save(update_fields=["state", *fields])


def _failed(data_file: PipelineDataFile, message: str, detail: str = "") -> str:
    logger.error("upload %s failed: %s%s", data_file.pk, message, detail)
    data_file.error_message = message
    _set_state(data_file, State.FAILED, "error_message")
    return State.FAILED
