from django.db import models


class DatafileRegistry(models.Model):
    """What the ingest run did with one file of one source."""

    class State(models.TextChoices):
        PROCESSING = "processing"
        FAILED = "failed"
        PROCESSED = "processed"
        IGNORED = "ignored"

    source = models.CharField(
        max_length=200, db_index=True, help_text="Source id, e.g. ons.postcode_directory"
    )
    file_name = models.CharField(
        max_length=1000, help_text="Name relative to the source's storage folder"
    )
    state = models.CharField(max_length=20, choices=State.choices, db_index=True)
    error_message = models.TextField(blank=True)
    notes = models.TextField(
        blank=True, help_text="What a successful load left out: ignored columns, skipped rows"
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "datafile"
        verbose_name_plural = "datafile registry"
        ordering = ["source", "file_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "file_name"], name="datafile_source_file_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.file_name} ({self.state})"
