import uuid

from django.core.validators import RegexValidator
from django.db import models

NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9_]+$", "Use lower-case letters, digits and underscores only."
)


def normalise_name(value: str) -> str:
    """Organisation and dataset names are lower-case and dots become underscores."""
    return value.strip().lower().replace(".", "_")


class Pipeline(models.Model):
    """A dataset loaded from uploaded CSV files into ``"<organisation>.<dataset>"."L0"``."""

    organisation = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    dataset = models.CharField(max_length=100, validators=[NAME_VALIDATOR])
    slug = models.SlugField(max_length=210, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation", "dataset"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "dataset"], name="pipeline_organisation_dataset_unique"
            )
        ]

    def __str__(self) -> str:
        return self.schema_name

    def save(self, *args, **kwargs):
        self.organisation = normalise_name(self.organisation)
        self.dataset = normalise_name(self.dataset)
        if not self.slug:
            self.slug = f"{self.organisation}-{self.dataset}".replace("_", "-")
        super().save(*args, **kwargs)

    @property
    def schema_name(self) -> str:
        return f"{self.organisation}.{self.dataset}"

    @property
    def table_name(self) -> str:
        return "L0"


class PipelineDataFile(models.Model):
    """One uploaded CSV file of a pipeline and how far its processing has gone."""

    class State(models.TextChoices):
        UPLOADING = "uploading"
        UPLOADED = "uploaded"
        VERIFIED = "verified"
        PROCESSING_DSS = "processing_dss"
        PROCESSING_DATAFLOW = "processing_dataflow"
        COMPLETED = "completed"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="data_files")
    storage_key = models.CharField(max_length=1000, blank=True)
    state = models.CharField(max_length=30, choices=State.choices, blank=True, db_index=True)
    error_message = models.TextField(blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    started_processing_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    column_types = models.JSONField(
        default=list, blank=True, help_text="Ordered [column, type] pairs"
    )
    delimiter = models.CharField(max_length=1, default=",")
    quote = models.CharField(max_length=1, default='"')

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name = "pipeline data file"

    def __str__(self) -> str:
        return f"{self.pipeline} {self.uploaded_at:%Y-%m-%d %H:%M} ({self.state or 'new'})"
