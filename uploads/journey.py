"""The steps of an upload that the pages call: store, verify, follow, restore, discard.

Each step is a thin layer over the engine and keeps the upload's record
(``uploads.models.PipelineDataFile``) in the state DESIGN.md "Data flow 2" gives. Processing
itself runs in the background (``uploads.tasks``), never in a web request.
"""

import posixpath
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import IO

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from pipelines import storage
from pipelines.column_types import COLUMN_TYPES
from pipelines.date_formats import UPLOAD_FORMATS, describe, parse_date_format
from pipelines.names import MAX_IDENTIFIER_BYTES, RESERVED_COLUMNS, is_valid_column_name
from pipelines.type_inference import TEMPORAL
from uploads.inspection import (
    InspectedColumn,
    InspectionOptions,
    inspect_upload,
    too_large_message,
)
from uploads.models import Pipeline, PipelineDataFile

State = PipelineDataFile.State

# The progress each state shows, in per cent (DESIGN.md "Data flow 2").
PROGRESS = {
    "": 0,
    State.UPLOADING: 10,
    State.UPLOADED: 20,
    State.VERIFIED: 30,
    State.PROCESSING_DSS: 40,
    State.PROCESSING_DATAFLOW: 70,
    State.COMPLETED: 100,
    State.FAILED: 100,
}
INFO = {
    "": "Waiting for the file",
    State.UPLOADING: "Uploading the file",
    State.UPLOADED: "Uploaded; waiting for the columns to be checked",
    State.VERIFIED: "Waiting for processing to start",
    State.PROCESSING_DSS: "Loading the data into the Data Store",
    State.PROCESSING_DATAFLOW: "Waiting for data-flow to copy the data",
    State.COMPLETED: "Completed",
    State.FAILED: "Sorry, the upload failed",
}
STALE_AFTER = timedelta(hours=24)
STALE_STATES = (State.VERIFIED, State.PROCESSING_DSS, State.PROCESSING_DATAFLOW)
# The types a person may choose for an uploaded column, in the order they are offered.
UPLOAD_TYPES = tuple(name for name, kind in COLUMN_TYPES.items() if kind.uploadable)
# How the page and messages name the dates of a column without a declared format.
ISO_LABELS = {"date": "YYYY-MM-DD (ISO 8601)", "timestamp": "YYYY-MM-DD HH:MM:SS (ISO 8601)"}


class UploadTooLarge(ValueError):
    """The file is over ``DSS_UPLOAD_MAX_BYTES``."""


class VerificationError(ValueError):
    """The chosen names, types or date formats cannot be used: ``errors`` maps a column's
    position (1-based; 0 for the file as a whole) to what is wrong with it, and ``fields``
    a position to the choice that is wrong (``"name"`` unless it says ``"date_format"``)."""

    def __init__(self, errors: dict[int, str], fields: dict[int, str] | None = None):
        self.errors = errors
        self.fields = fields or {}
        super().__init__("; ".join(errors.values()))


class WrongState(ValueError):
    """The upload is not in a state that allows the step asked for."""


def store_upload(
    pipeline: Pipeline, stream: IO[bytes], filename: str, user=None
) -> PipelineDataFile:
    """Stream ``stream`` into storage under ``uploads/<organisation>/<dataset>/<uuid>``.

    The record goes ``uploading`` -> ``uploaded``; a workbook (``.xlsx``) has its first sheet
    stored as CSV beside it. On failure (over ``DSS_UPLOAD_MAX_BYTES``, storage errors, not a
    workbook) the record is ``failed`` with the reason, nothing stays stored, and the record
    is returned all the same. ``user`` is the uploader (a user or None).
    """
    file_id = uuid.uuid4()
    data_file = PipelineDataFile.objects.create(
        id=file_id,
        pipeline=pipeline,
        uploader=user if getattr(user, "pk", None) else None,
        original_name=posixpath.basename(filename.replace("\\", "/"))[:255],
        storage_key=f"{pipeline.storage_prefix}/{file_id}",
        state=State.UPLOADING,
    )
    limit = settings.UPLOAD_MAX_BYTES
    try:
        storage.save_stream(data_file.storage_key, _Limited(stream, limit, data_file.original_name))
        data_file.size = storage.size(data_file.storage_key)
        if data_file.is_workbook:
            from uploads.workbooks import store_sheet_as_csv

            store_sheet_as_csv(data_file)
    except (UploadTooLarge, ValueError, OSError) as error:
        _discard_files(data_file)
        _fail(data_file, str(error) or type(error).__name__)
        return data_file
    data_file.state = State.UPLOADED
    data_file.save(update_fields=["state", "size"])
    return data_file


class _Limited:
    """A stream that raises ``UploadTooLarge`` once more than ``limit`` bytes are read."""

    def __init__(self, stream: IO[bytes], limit: int, label: str):
        self.stream = stream
        self.limit = limit
        self.label = label
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.read_so_far += len(data)
        if self.read_so_far > self.limit:
            raise UploadTooLarge(too_large_message(self.label, self.limit))
        return data

    def seekable(self) -> bool:
        # The storage reads it as a stream, once: S3's upload asks before it rewinds.
        return False

    def __getattr__(self, name: str):
        if name in ("seek", "tell"):
            raise AttributeError(name)
        return getattr(self.stream, name)

    def chunks(self, chunk_size: int = 1 << 20):
        while data := self.read(chunk_size):
            yield data


def check_names_and_types(
    names_and_types: Sequence[tuple[str, str]], width: int
) -> list[tuple[str, str]]:
    """The chosen [name, type] pairs, checked: one per column of the file (``width``), each
    name ``^[a-z][a-z0-9_]*$``, at most 63 bytes, not reserved, used once; each type one an
    upload may take. Raises ``VerificationError``."""
    pairs = [(str(name).strip(), str(kind)) for name, kind in names_and_types]
    errors: dict[int, str] = {}
    if len(pairs) != width:
        errors[0] = f"the file has {width} columns but {len(pairs)} names were given"
    seen: dict[str, int] = {}
    for position, (name, kind) in enumerate(pairs, start=1):
        if name in RESERVED_COLUMNS:
            errors[position] = f"column {position}: {name!r} is reserved for the service"
        elif not is_valid_column_name(name):
            errors[position] = (
                f"column {position}: {name!r} is not a column name: use lower-case letters, "
                f"digits and _, starting with a letter, at most {MAX_IDENTIFIER_BYTES} bytes"
            )
        elif name in seen:
            errors[position] = f"column {position}: {name!r} is also column {seen[name]}'s name"
        if kind not in UPLOAD_TYPES:
            errors.setdefault(
                position,
                f"column {position}: type {kind!r} is not one of {', '.join(UPLOAD_TYPES)}",
            )
        seen.setdefault(name, position)
    if errors:
        raise VerificationError(errors)
    return pairs


def check_date_formats(
    columns: Sequence[InspectedColumn],
    pairs: Sequence[tuple[str, str]],
    date_formats: Sequence[str | None] | None,
) -> dict[str, str]:
    """The declared format of each date or timestamp column, by name: ``{name: format}``.

    ``date_formats`` gives one format per column in file order (None or empty: ISO 8601;
    ignored for other types); None takes the formats inspection detected. Each must be one
    of ``UPLOAD_FORMATS``, have no time in a date column, and fit every value inspection
    read. Raises ``VerificationError`` naming the column, the row and the value.
    """
    if date_formats is None:
        date_formats = [column.date_format for column in columns]
    errors: dict[int, str] = {}
    chosen: dict[str, str] = {}
    for position, (column, (name, kind), date_format) in enumerate(
        zip(columns, pairs, date_formats, strict=True), start=1
    ):
        if kind not in TEMPORAL:
            continue
        where = f"column {position} ({name})"
        if date_format and date_format not in UPLOAD_FORMATS:
            known = ", ".join(describe(text) for text in UPLOAD_FORMATS)
            errors[position] = (
                f"{where}: {date_format!r} is not a date format an upload takes; choose one "
                f"of {known}, or ISO 8601"
            )
            continue
        shown = describe(date_format) if date_format else ISO_LABELS[kind]
        if date_format and parse_date_format(date_format).has_time and kind == "date":
            errors[position] = (
                f"{where}: the date format {shown} has a time; choose a format without one, "
                "or the type timestamp"
            )
            continue
        misfit = column.misfit(kind, date_format or None)
        if misfit is not None:
            row, value = misfit
            errors[position] = (
                f"{where}: row {row}'s value {value!r} does not fit the date format {shown}; "
                "choose the format its dates are written in, or the type text"
            )
            continue
        if date_format:
            chosen[name] = date_format
    if errors:
        raise VerificationError(errors, dict.fromkeys(errors, "date_format"))
    return chosen


def verify_upload(
    data_file: PipelineDataFile,
    names_and_types: Sequence[tuple[str, str]],
    options: InspectionOptions | None = None,
    date_formats: Sequence[str | None] | None = None,
) -> None:
    """ "Yes" on the verify page: check and store the chosen names, types and date formats
    and the reading options, state ``verified``, and queue processing (after the
    transaction commits). ``date_formats``: see ``check_date_formats`` (None: as detected).

    Raises ``WrongState`` unless the upload is ``uploaded``, ``VerificationError`` for names,
    types or date formats that cannot be used, or a file the options cannot read.
    """
    if data_file.state != State.UPLOADED:
        raise WrongState(f"the upload is {data_file.state or 'new'}, not uploaded")
    inspection = inspect_upload(data_file, options)
    if not inspection.ok:
        raise VerificationError({0: inspection.problem})
    pairs = check_names_and_types(names_and_types, len(inspection.columns))
    if date_formats is not None and len(date_formats) != len(pairs):
        raise VerificationError(
            {0: f"the file has {len(pairs)} columns but {len(date_formats)} date formats"}
        )
    data_file.date_formats = check_date_formats(inspection.columns, pairs, date_formats)
    data_file.column_types = [list(pair) for pair in pairs]
    data_file.headers = [column.header for column in inspection.columns]
    data_file.delimiter = inspection.delimiter
    data_file.quote = inspection.quote
    data_file.encoding = inspection.encoding
    data_file.decimal_separator = inspection.decimal_separator
    data_file.verified_at = timezone.now()
    data_file.state = State.VERIFIED
    data_file.error_message = ""
    data_file.save()
    _enqueue(data_file)


def discard_upload(data_file: PipelineDataFile) -> None:
    """ "No" on the verify page: delete the stored file(s) and the record."""
    if data_file.state not in (State.UPLOADED, State.FAILED, State.UPLOADING):
        raise WrongState(f"a {data_file.state} upload is kept")
    if not data_file.pipeline.data_files.filter(
        ~Q(pk=data_file.pk), storage_key=data_file.storage_key
    ).exists():
        _discard_files(data_file)
    data_file.delete()


def progress(data_file: PipelineDataFile) -> dict:
    """``{"state", "progress", "info"}``: the state, its per cent (0/10/20/30/40/70/100)
    and a sentence for a person (a failed upload's says sorry and gives the reason)."""
    data_file.refresh_from_db(fields=["state", "error_message"])
    state = data_file.state or ""
    info = INFO[state]
    if state == State.FAILED and data_file.error_message:
        info = f"{info}: {data_file.error_message}"
    return {"state": state, "progress": PROGRESS[state], "info": info}


def restore_version(data_file: PipelineDataFile, user=None) -> PipelineDataFile:
    """Make the earlier version ``data_file`` the pipeline's table again: a new upload
    record of the same stored file, names and options, ``verified`` and queued.

    Raises ``WrongState`` unless ``data_file`` is a version (completed).
    """
    data_file.refresh_from_db(fields=["state"])
    if data_file.state != State.COMPLETED:
        raise WrongState("only a completed upload is a version that can be restored")
    copy = PipelineDataFile.objects.create(
        pipeline=data_file.pipeline,
        uploader=user if getattr(user, "pk", None) else data_file.uploader,
        original_name=data_file.original_name,
        storage_key=data_file.storage_key,
        csv_key=data_file.csv_key,
        size=data_file.size,
        state=State.VERIFIED,
        verified_at=timezone.now(),
        column_types=data_file.column_types,
        date_formats=data_file.date_formats,
        headers=data_file.headers,
        delimiter=data_file.delimiter,
        quote=data_file.quote,
        encoding=data_file.encoding,
        decimal_separator=data_file.decimal_separator,
        sheet=data_file.sheet,
        restored_from=data_file,
    )
    _enqueue(copy)
    return copy


def mark_stale_uploads(now=None, older_than: timedelta = STALE_AFTER) -> int:
    """Uploads in ``verified``/``processing_*`` since more than ``older_than`` become
    ``failed``; their number."""
    now = now or timezone.now()
    stale = PipelineDataFile.objects.annotate(
        since=Coalesce("started_processing_at", "verified_at", "uploaded_at")
    ).filter(state__in=STALE_STATES, since__lt=now - older_than)
    hours = older_than.total_seconds() / 3600
    return PipelineDataFile.objects.filter(pk__in=stale.values("pk")).update(
        state=State.FAILED,
        error_message=f"processing did not finish within {hours:g} hours; upload the file again",
    )


def _enqueue(data_file: PipelineDataFile) -> None:
    from uploads.tasks import process_upload

    file_id = str(data_file.pk)
    transaction.on_commit(lambda: process_upload.enqueue(file_id))


def _fail(data_file: PipelineDataFile, message: str) -> None:
    data_file.state = State.FAILED
    data_file.error_message = message
    data_file.save(update_fields=["state", "error_message", "size"])


def _discard_files(data_file: PipelineDataFile) -> None:
    for key in (data_file.storage_key, data_file.csv_key):
        if key:
            storage.delete(key)
