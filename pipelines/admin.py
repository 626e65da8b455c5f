"""Admin of the pipelines app: the datafile registry, sources defined without code, the runs
of sources, and the operators' desk (every source, built-in and defined: actions that queue
a fetch, ingest or rebuild as background tasks; files, runs and row counts; placing a file).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import connection, models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from pipelines import desk
from pipelines.defined_sources import current_catalogue, to_source
from pipelines.loading import create_empty_tables
from pipelines.models import DatafileRegistry, DefinedSource, RunRecord, SourceDesk
from pipelines.runs import settle_interrupted_runs
from pipelines.sources import Source
from pipelines.tasks import queue_run


@admin.register(DatafileRegistry)
class DatafileRegistryAdmin(admin.ModelAdmin):
    list_display = ["file_name", "source", "state", "short_error", "notes", "updated"]
    list_filter = ["state", "source"]
    search_fields = ["file_name", "source"]
    readonly_fields = ["created", "updated"]
    date_hierarchy = "updated"
    actions = ["mark_ignored", "reprocess"]

    @admin.display(description="error")
    def short_error(self, obj: DatafileRegistry) -> str:
        return obj.error_message[:120]

    @admin.action(description="Mark ignored (ingest runs skip them)")
    def mark_ignored(self, request, queryset):
        count = queryset.update(state=DatafileRegistry.State.IGNORED)
        self.message_user(request, f"{count} file(s) marked ignored.", messages.SUCCESS)

    @admin.action(description="Reprocess (the next ingest run loads them again)")
    def reprocess(self, request, queryset):
        # Deleting the entry is what makes the next run take the file: it only skips files
        # whose entry says processed or ignored.
        count, _ = queryset.delete()
        self.message_user(request, f"{count} file(s) will be processed by the next ingest run.")


def desk_url(source_id: str) -> str:
    return reverse("admin:pipelines_sourcedesk_desk", args=[source_id])


@admin.register(DefinedSource)
class DefinedSourceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "mode", "origin", "updated", "desk_link"]
    list_filter = ["mode", "origin"]
    search_fields = ["organisation", "dataset"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["organisation", "dataset", "mode"]}),
        (
            "Where the files come from",
            {
                "fields": [
                    "origin",
                    "url",
                    "link_pattern",
                    "link_date_format",
                    "download_pattern",
                    "file_name_pattern",
                    "file_date_format",
                ]
            },
        ),
        (
            "How a file is read",
            {
                "fields": [
                    "encoding",
                    "delimiter",
                    "quote",
                    "member_pattern",
                    "many_members",
                    "ignore_extra_columns",
                    "force_null",
                    "decimal_comma",
                ]
            },
        ),
        ("Tables", {"fields": ["columns", "l1_columns"]}),
        ("Runs", {"fields": ["depends_on", "trigger_dataflow"]}),
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        if obj is not None:
            # The schema is the source's id and holds its data: it is not renamed. Disabled
            # rather than read-only, so that an error about it still shows beside it.
            for name in ("organisation", "dataset"):
                form.base_fields[name].disabled = True
        return form

    @admin.display(description="desk")
    def desk_link(self, obj: DefinedSource) -> str:
        return format_html('<a href="{}">open</a>', desk_url(obj.source_id))

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # Its tables exist from now on, so the API answers an empty page before the first load.
        connection.ensure_connection()
        create_empty_tables(connection.connection, to_source(obj).dataset)
        if change and {"mode", "columns", "l1_columns"} & set(form.changed_data):
            self.message_user(
                request,
                "The tables keep their layout until the source is rebuilt: use “Rebuild” on "
                "its desk page.",
                messages.WARNING,
            )


@admin.register(RunRecord)
class RunRecordAdmin(admin.ModelAdmin):
    list_display = ["source", "kind", "status", "started_by", "queued", "finished", "short_summary"]
    list_filter = ["status", "kind", "source"]
    search_fields = ["source", "summary"]

    @admin.display(description="summary")
    def short_summary(self, obj: RunRecord) -> str:
        return obj.summary.splitlines()[0][:120] if obj.summary else ""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        settle_interrupted_runs()
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        settle_interrupted_runs()
        return super().change_view(request, object_id, form_url, extra_context)


class PlaceFileForm(forms.Form):
    file = forms.FileField()
    ingest = forms.BooleanField(required=False, initial=True, label="ingest it now")


@admin.register(SourceDesk)
class SourceDeskAdmin(admin.ModelAdmin):
    """Built-in sources are code, not rows: this model has no table, and its pages list and
    show the current catalogue (built-in, then defined sources)."""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<str:source_id>/", view(self.desk_view), name="pipelines_sourcedesk_desk"),
            path("<str:source_id>/run/", view(self.run_view), name="pipelines_sourcedesk_run"),
            path(
                "<str:source_id>/place/", view(self.place_view), name="pipelines_sourcedesk_place"
            ),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "can_act": self.has_change_permission(request),
            **extra,
        }

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        settle_interrupted_runs()
        defined = _defined_rows()
        latest = {
            run.source: run
            for run in RunRecord.objects.order_by("source", "-queued").distinct("source")
        }
        rows = [
            {"source": source, "defined": source.id in defined, "last_run": latest.get(source.id)}
            for source in current_catalogue()
        ]
        context = self._context(request, "Sources", rows=rows)
        return TemplateResponse(request, "admin/pipelines/sourcedesk/change_list.html", context)

    def desk_view(self, request: HttpRequest, source_id: str) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        source = _source(source_id)
        definition = _defined_rows().get(source.id)
        context = self._context(
            request,
            source.id,
            source=source,
            definition_url=(
                reverse("admin:pipelines_definedsource_change", args=[definition])
                if definition
                else None
            ),
            tables=desk.table_rows(source),
            files=desk.stored_files(source, settings.DATASETS_FOLDER),
            runs=desk.last_runs(source),
            place_form=PlaceFileForm() if source.origin is None else None,
        )
        return TemplateResponse(request, "admin/pipelines/sourcedesk/desk.html", context)

    def run_view(self, request: HttpRequest, source_id: str) -> HttpResponse:
        source = self._acting_on(request, source_id)
        kind = request.POST.get("kind")
        if kind not in RunRecord.Kind.values:
            raise Http404(f"no such run: {kind!r}")
        if kind == RunRecord.Kind.FETCH and source.origin is None:
            self.message_user(
                request, f"The files of {source.id} are placed by hand", messages.ERROR
            )
        else:
            queue_run(source.id, kind, f"admin: {request.user.get_username()}")
            self.message_user(request, f"Queued for the task workers: {kind} of {source.id}.")
        return HttpResponseRedirect(desk_url(source.id))

    def place_view(self, request: HttpRequest, source_id: str) -> HttpResponse:
        source = self._acting_on(request, source_id)
        form = PlaceFileForm(request.POST, request.FILES)
        if not form.is_valid():
            self.message_user(request, "Choose a file to place.", messages.ERROR)
            return HttpResponseRedirect(desk_url(source.id))
        upload = form.cleaned_data["file"]
        try:
            desk.place_file(source, settings.DATASETS_FOLDER, upload.name, upload)
        except desk.PlaceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(desk_url(source.id))
        message = f"Placed {upload.name} in the folder of {source.id}"
        if form.cleaned_data["ingest"]:
            user = request.user.get_username()
            queue_run(source.id, RunRecord.Kind.INGEST, f"admin: {user}")
            message += "; ingest queued for the task workers"
        self.message_user(request, message + ".", messages.SUCCESS)
        return HttpResponseRedirect(desk_url(source.id))

    def _acting_on(self, request: HttpRequest, source_id: str) -> Source:
        if request.method != "POST":
            raise Http404("actions are posted from the desk page")
        if not self.has_change_permission(request):
            raise PermissionDenied
        return _source(source_id)


def _source(source_id: str) -> Source:
    catalogue = current_catalogue()
    if source_id not in catalogue:
        raise Http404(f"no source {source_id!r}")
    return catalogue.get(source_id)


def _defined_rows() -> dict[str, int]:
    """Defined sources' ids -> their rows' primary keys."""
    return {row.source_id: row.pk for row in DefinedSource.objects.all()}
