from django.contrib import admin

from uploads.models import Pipeline, PipelineDataFile


class PipelineDataFileInline(admin.TabularInline):
    model = PipelineDataFile
    fields = [
        "id",
        "state",
        "uploader",
        "uploaded_at",
        "processed_at",
        "row_count",
        "error_message",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["organisation", "dataset", "slug", "created"]
    list_filter = ["organisation"]
    search_fields = ["organisation", "dataset", "slug"]
    readonly_fields = ["created"]
    inlines = [PipelineDataFileInline]


@admin.register(PipelineDataFile)
class PipelineDataFileAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "pipeline",
        "original_name",
        "state",
        "short_error",
        "uploader",
        "uploaded_at",
        "processed_at",
        "row_count",
    ]
    list_filter = ["state", "pipeline__organisation"]
    search_fields = [
        "id",
        "original_name",
        "pipeline__organisation",
        "pipeline__dataset",
        "storage_key",
        "uploader__username",
        "uploader__email",
    ]
    list_select_related = ["pipeline", "uploader"]
    readonly_fields = [
        "id",
        "uploader",
        "uploaded_at",
        "verified_at",
        "started_processing_at",
        "processed_at",
        "row_count",
        "restored_from",
    ]

    @admin.display(description="error")
    def short_error(self, data_file: PipelineDataFile) -> str:
        message = data_file.error_message
        return message if len(message) <= 120 else message[:120] + "…"

    date_hierarchy = "uploaded_at"
