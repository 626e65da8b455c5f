from django.contrib import admin

from uploads.models import Pipeline, PipelineDataFile


class PipelineDataFileInline(admin.TabularInline):
    model = PipelineDataFile
    fields = ["id", "state", "uploaded_at", "processed_at", "error_message"]
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
    list_display = ["id", "pipeline", "state", "uploaded_at", "processed_at"]
    list_filter = ["state", "pipeline__organisation"]
    search_fields = ["id", "pipeline__organisation", "pipeline__dataset", "storage_key"]
    list_select_related = ["pipeline"]
    readonly_fields = ["id", "uploaded_at", "started_processing_at", "processed_at"]
    date_hierarchy = "uploaded_at"
