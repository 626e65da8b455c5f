from django.contrib import admin, messages

from pipelines.models import DatafileRegistry


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
