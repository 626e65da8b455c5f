import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from pipelines.date_formats import describe
from pipelines.names import check_identifier

NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9_]+$", "Use lower-case letters, digits and underscores only."
)


def normalise_name(value: str) -> str:
    """Organisation and dataset names are lower-case and dots become underscores."""
    return value.strip().lower().replace(".", "_")


def pipeline_slug(organisation: str, dataset: str) -> str:
    """The slug of a pipeline: its two names joined by ``-``, which neither name holds, so
    two pipelines never share a slug (``a_b``/``c`` and ``a``/``b_c`` stay apart)."""
    return f"{organisation}-{dataset}"


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
        self._normalise()
        super().save(*args, **kwargs)

    def clean_fields(self, exclude=None) -> None:
        # Names are normalised before the field validators see them (``ONS`` is ``ons``).
        self._normalise()
        super().clean_fields(exclude)

    def clean(self) -> None:
        """Normalise the names and refuse a schema name PostgreSQL would cut (over 63 bytes)."""
        self._normalise()
        if self.organisation and self.dataset:
            try:
                check_identifier(self.schema_name, "the schema name")
            except ValueError as error:
                raise ValidationError({"dataset": str(error)}) from error

    def _normalise(self) -> None:
        self.organisation = normalise_name(self.organisation)
        self.dataset = normalise_name(self.dataset)
        self.slug = pipeline_slug(self.organisation, self.dataset)

    @property
    def schema_name(self) -> str:
        return f"{self.organisation}.{self.dataset}"

    @property
    def table_name(self) -> str:
        return "L0"

    @property
    def storage_prefix(self) -> str:
        return f"uploads/{self.organisation}/{self.dataset}"

    def versions(self) -> models.QuerySet["PipelineDataFile"]:
        """Every completed file of the pipeline, the latest first: its versions."""
        return self.data_files.filter(state=PipelineDataFile.State.COMPLETED).order_by(
            "-processed_at"
        )

    def current_version(self) -> "PipelineDataFile | None":
        """The version the pipeline's table holds now (the latest completed file)."""
        return self.versions().first()


class PipelineDataFile(models.Model):
    """One uploaded file of a pipeline, how it is read, and how far its processing has gone.

    ``column_types`` are the chosen ``[name, type]`` pairs in the file's order and
    ``headers`` the file's header texts they load from. ``date_formats`` maps the name of a
    date or timestamp column whose values are not ISO 8601 to its declared ``strptime``
    format (``{"placed_on": "%d/%m/%Y"}``); a column it does not name is ISO 8601.
    ``storage_key`` is the file as uploaded; ``csv_key`` the CSV made from a workbook's sheet
    (empty for a CSV upload).
    """

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
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="uploads",
    )
    original_name = models.CharField(max_length=255, blank=True)
    storage_key = models.CharField(max_length=1000, blank=True)
    csv_key = models.CharField(max_length=1000, blank=True)
    size = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=30, choices=State.choices, blank=True, db_index=True)
    error_message = models.TextField(blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    started_processing_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    column_types = models.JSONField(
        default=list, blank=True, help_text="Ordered [column, type] pairs"
    )
    headers = models.JSONField(default=list, blank=True, help_text="The file's header texts")
    date_formats = models.JSONField(
        default=dict,
        blank=True,
        help_text='Column name -> the date format of its values, e.g. {"placed_on": "%d/%m/%Y"}',
    )
    delimiter = models.CharField(max_length=1, default=",")
    quote = models.CharField(max_length=1, default='"')
    encoding = models.CharField(max_length=40, blank=True)
    decimal_separator = models.CharField(max_length=1, default=".")
    sheet = models.CharField(max_length=255, blank=True)
    row_count = models.BigIntegerField(null=True, blank=True)
    restored_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="restorations"
    )

    class Meta:
        ordering = ["-uploaded_at"]
        verbose_name = "pipeline data file"

    def __str__(self) -> str:
        return f"{self.pipeline} {self.uploaded_at:%Y-%m-%d %H:%M} ({self.state or 'new'})"

    @property
    def data_key(self) -> str:
        """The stored CSV that is inspected and loaded."""
        return self.csv_key or self.storage_key

    @property
    def is_workbook(self) -> bool:
        return self.original_name.lower().endswith(".xlsx")

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.column_types]

    def date_format_of(self, name: str) -> str | None:
        """The declared date format of column ``name``; None for ISO 8601 or no date."""
        return (self.date_formats or {}).get(name)

    @property
    def columns_shown(self) -> list[tuple[str, str, str]]:
        """Each column's name, type and date format as a person reads it (``DD/MM/YYYY``;
        empty when it declares none)."""
        shown = []
        for name, kind in self.column_types:
            date_format = self.date_format_of(name)
            shown.append((name, kind, describe(date_format) if date_format else ""))
        return shown
