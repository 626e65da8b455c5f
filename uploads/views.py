"""The upload journey's pages (DESIGN.md, "Data flow 2"): thin views over the engine.

Every page needs a logged-in person and works without JavaScript; only the progress page's
bar moves by itself when scripts run. Forms post with CSRF tokens. The engine does the work:
``uploads.inspection`` reads the file, ``uploads.journey`` stores, verifies, follows and
restores it, and ``uploads.tasks`` processes it in the background.
"""

import re

import orjson
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from api.pages import read_page, version_of
from api.served_tables import find_table
from pipelines.date_formats import describe
from uploads import edits, journey
from uploads.forms import ColumnsForm, DialectForm, PipelineForm, UploadForm
from uploads.inspection import Inspection, InspectionOptions, compare_columns, inspect_upload
from uploads.models import Pipeline, PipelineDataFile
from uploads.workbooks import sheet_names

State = PipelineDataFile.State
SAMPLE_ROWS = 10
# The verify page's column fields, and what it detected (``uploads.edits``).
_CARRIED_FIELD = re.compile(r"detected|(name|type|date_format)_[0-9]+")
# Where a URL shown on a page may break: after a "/" (not between two) or a ".".
_URL_BREAKS = re.compile(r"(?<=[/.])(?!/)")
# Where a file in each state is shown.
PAGE_OF_STATE = {
    State.UPLOADING: "uploads:processing",
    State.UPLOADED: "uploads:verify",
    State.VERIFIED: "uploads:processing",
    State.PROCESSING_DSS: "uploads:processing",
    State.PROCESSING_DATAFLOW: "uploads:processing",
    State.COMPLETED: "uploads:completed",
    State.FAILED: "uploads:failed",
}


def data_file_of(slug: str, file_id) -> PipelineDataFile:
    return get_object_or_404(
        PipelineDataFile.objects.select_related("pipeline", "uploader"),
        pipeline__slug=slug,
        pk=file_id,
    )


def page_of(data_file: PipelineDataFile) -> str:
    """The URL of the page that shows ``data_file`` in its present state."""
    name = PAGE_OF_STATE.get(data_file.state, "uploads:processing")
    return reverse(name, args=[data_file.pipeline.slug, data_file.pk])


def show_elsewhere(data_file: PipelineDataFile, *states: str) -> HttpResponse | None:
    """A redirect to the page of ``data_file``'s state when it is not one of ``states``."""
    if data_file.state in states:
        return None
    return redirect(page_of(data_file))


@login_required
@require_http_methods(["GET", "POST"])
def pipelines(request: HttpRequest) -> HttpResponse:
    """Choose a pipeline, or create one."""
    form = PipelineForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        pipeline = form.save()
        messages.success(request, f"Pipeline {pipeline.schema_name} created")
        return redirect("uploads:upload", pipeline.slug)
    return render(
        request,
        "uploads/pipelines.html",
        {"form": form, "pipelines": Pipeline.objects.all()},
        status=400 if form.errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Upload a file to a pipeline; it is streamed into storage, then verified."""
    pipeline = get_object_or_404(Pipeline, slug=slug)
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    errors = []
    if request.method == "POST" and form.is_valid():
        uploaded = form.cleaned_data["file"]
        data_file = journey.store_upload(pipeline, uploaded, uploaded.name, request.user)
        if data_file.state != State.FAILED:
            return redirect(page_of(data_file))
        # Nothing was stored; the failed record keeps the reason, and the page says it.
        errors = [("id_file", data_file.error_message)]
    return render(
        request,
        "uploads/upload.html",
        {"form": form, "errors": errors, "pipeline": pipeline},
        status=400 if form.errors or errors else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest, slug: str, file_id) -> HttpResponse:
    """How the file will load, with what can be changed; "Yes" queues it, "No" deletes it."""
    data_file = data_file_of(slug, file_id)
    elsewhere = show_elsewhere(data_file, State.UPLOADED)
    if elsewhere:
        return elsewhere
    action = request.POST.get("action", "")
    if action == "delete":
        pipeline = data_file.pipeline
        journey.discard_upload(data_file)
        messages.success(request, "The file was deleted; nothing was loaded")
        return redirect("uploads:upload", pipeline.slug)
    sheets = sheet_names(data_file) if data_file.is_workbook else []
    dialect = DialectForm(request.POST if request.method == "POST" else None, sheets=sheets)
    options = InspectionOptions(**dialect.cleaned_data) if dialect.is_valid() else None
    inspection = inspect_upload(data_file, options)
    if not inspection.ok:
        # The file cannot load as read: a person may read it another way, or delete it. The
        # column choices the page had travel on, hidden, to the next read.
        return render(
            request,
            "uploads/verify.html",
            {
                "data_file": data_file,
                "pipeline": data_file.pipeline,
                "inspection": inspection,
                "dialect": DialectForm(initial=dialect_of(inspection), sheets=sheets),
                "errors": [("id_delimiter", inspection.problem)],
                "carried_fields": carried_fields(request.POST),
            },
            status=400,
        )
    detected = edits.detected(inspection.columns)
    choices, carried = detected, None
    previous = edits.from_json(request.POST.get("detected", ""))
    # "Yes" on a page whose columns this read does not give (the person changed how the file
    # is read, then pressed "Yes" instead of reading it again) is a re-read: the columns are
    # shown to be checked, never loaded as the other read's fields by position.
    read_again = request.method == "POST" and (action != "load" or previous != detected)
    if read_again:
        # Read again another way: the column choices the person changed are kept.
        posted = ColumnsForm.posted(request.POST, previous)
        carried = edits.carry_edits(previous, posted, detected)
        carried.unchecked = action == "load"
        choices = carried.choices
    headers = [column.header for column in inspection.columns]
    columns = ColumnsForm(
        headers,
        request.POST if action == "load" and not read_again else None,
        initial=ColumnsForm.initial_of(choices),
        date_hints=date_hints(inspection),
    )
    if action == "load" and columns.is_valid():
        try:
            journey.verify_upload(
                data_file, columns.column_types(), options, columns.date_formats()
            )
        except journey.VerificationError as error:
            columns.add_engine_errors(error.errors, error.fields)
        else:
            return redirect(page_of(data_file))
    # The warnings follow the choices the form shows: as posted after a refused "Yes" (a
    # value it cannot take counts as unchanged), else the carried or detected ones.
    shown = ColumnsForm.posted(request.POST, choices) if columns.is_bound else choices
    changes = compare_columns(inspection.current_columns, [(c.name, c.type) for c in shown])
    return render(
        request,
        "uploads/verify.html",
        {
            "data_file": data_file,
            "pipeline": data_file.pipeline,
            "inspection": inspection,
            "dialect": DialectForm(initial=dialect_of(inspection), sheets=sheets),
            "form": columns,
            "columns": list(zip(inspection.columns, columns.rows(), strict=True)),
            "detected": edits.to_json(detected),
            "carried": carried,
            "changes": changes,
            "warnings": [change for change in changes if change.kind != "added"],
        },
        status=400 if columns.errors else 200,
    )


def date_hints(inspection: Inspection) -> dict[int, str]:
    """For each column whose values fit more than one date format (``01/02/2024``): which
    they fit, so that the person checks the one chosen."""
    hints = {}
    for index, column in enumerate(inspection.columns):
        if column.date_format and column.also_fits:
            shown = [describe(text) for text in (column.date_format, *column.also_fits)]
            hints[index] = f"Every value read fits {' or '.join(shown)}: check which is right"
    return hints


def carried_fields(data) -> list[tuple[str, str]]:
    """The column choices a posted page held (what it detected and the person's values),
    to carry, hidden, through a page that cannot show them."""
    return [(key, value) for key, value in data.items() if _CARRIED_FIELD.fullmatch(key)]


def dialect_of(inspection: Inspection) -> dict[str, str]:
    return {
        "delimiter": inspection.delimiter,
        "quote": inspection.quote,
        "encoding": inspection.encoding,
        "decimal_separator": inspection.decimal_separator,
        "sheet": inspection.sheet,
    }


@login_required
@require_GET
def processing(request: HttpRequest, slug: str, file_id) -> HttpResponse:
    """The progress page: a bar that moves with scripts, a link to look again without."""
    data_file = data_file_of(slug, file_id)
    elsewhere = show_elsewhere(
        data_file,
        "",
        State.UPLOADING,
        State.VERIFIED,
        State.PROCESSING_DSS,
        State.PROCESSING_DATAFLOW,
    )
    if elsewhere:
        return elsewhere
    return render(
        request,
        "uploads/processing.html",
        {
            "data_file": data_file,
            "pipeline": data_file.pipeline,
            "progress": journey.progress(data_file),
            "progress_url": reverse("uploads:progress", args=[data_file.pk]),
        },
    )


@login_required
@require_GET
def progress(request: HttpRequest, file_id) -> JsonResponse:
    """``{"state", "progress", "info"}`` of a file, for the progress page's script; the
    page to go to next in ``"next"`` once it is done."""
    data_file = get_object_or_404(PipelineDataFile.objects.select_related("pipeline"), pk=file_id)
    answer = dict(journey.progress(data_file))
    answer["next"] = page_of(data_file)
    return JsonResponse(answer)


@login_required
@require_GET
def completed(request: HttpRequest, slug: str, file_id) -> HttpResponse:
    """Where the data is: schema, table, the API URL, and the first rows loaded."""
    data_file = data_file_of(slug, file_id)
    elsewhere = show_elsewhere(data_file, State.COMPLETED)
    if elsewhere:
        return elsewhere
    pipeline = data_file.pipeline
    table = find_table(pipeline.schema_name, pipeline.table_name)
    headers, rows = [], []
    if table is not None:
        columns = [column for column in table.columns if column.name != "id"]
        page = read_page(table, columns, None, SAMPLE_ROWS, version_of(table))
        headers = [column.name for column in columns]
        rows = [[shown_value(value) for value in row[1:]] for row in page.rows]
    api_path = reverse("table-data", args=[pipeline.schema_name, pipeline.table_name])
    return render(
        request,
        "uploads/completed.html",
        {
            "data_file": data_file,
            "pipeline": pipeline,
            "current": pipeline.current_version(),
            "api_url_pieces": url_pieces(request.build_absolute_uri(api_path)),
            "headers": headers,
            "rows": rows,
        },
    )


def url_pieces(url: str) -> list[str]:
    """``url`` in the pieces that a page may break it between: after each ``/`` (``//``
    kept whole) and each ``.``, never inside a word (``table-data``)."""
    return _URL_BREAKS.split(url)


def shown_value(value) -> str:
    """A value of a served row (``api.pages.read_page``) as the page shows it: as the API
    writes it (numerics with the digits PostgreSQL stores, ``true``/``false``, dates and
    timestamps as ISO 8601 text), text unquoted, and NULL as nothing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


@login_required
@require_GET
def failed(request: HttpRequest, slug: str, file_id) -> HttpResponse:
    """What went wrong and what to do; the version the API serves is unchanged."""
    data_file = data_file_of(slug, file_id)
    elsewhere = show_elsewhere(data_file, State.FAILED)
    if elsewhere:
        return elsewhere
    pipeline = data_file.pipeline
    return render(
        request,
        "uploads/failed.html",
        {"data_file": data_file, "pipeline": pipeline, "current": pipeline.current_version()},
    )


@login_required
@require_GET
def history(request: HttpRequest, slug: str) -> HttpResponse:
    """Every version of a pipeline, the latest first, each one restorable."""
    pipeline = get_object_or_404(Pipeline, slug=slug)
    versions = list(pipeline.versions().select_related("uploader"))
    return render(
        request,
        "uploads/history.html",
        {
            "pipeline": pipeline,
            "versions": versions,
            "latest": versions[0] if versions else None,
            "others": pipeline.data_files.exclude(state=State.COMPLETED).select_related("uploader")[
                :20
            ],
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def restore(request: HttpRequest, slug: str, file_id) -> HttpResponse:
    """An older version beside the latest; confirming reprocesses it as the new latest."""
    version = data_file_of(slug, file_id)
    pipeline = version.pipeline
    latest = pipeline.current_version()
    if version.state != State.COMPLETED:
        raise Http404("Only a completed file is a version")
    if request.method == "POST":
        restored = journey.restore_version(version, request.user)
        return redirect(page_of(restored))
    return render(
        request,
        "uploads/restore.html",
        {
            "pipeline": pipeline,
            "version": version,
            "latest": latest,
            "changes": compare_columns(
                [tuple(pair) for pair in latest.column_types] if latest else [],
                [tuple(pair) for pair in version.column_types],
            ),
        },
    )
