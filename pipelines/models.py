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


class DefinedSource(models.Model):
    """A source defined by operators in admin, without code: what a built-in definition
    holds (``pipelines.catalogue``), as data. ``pipelines.defined_sources`` turns it into a
    ``pipelines.sources.Source``; ``clean`` refuses a definition that would not load."""

    class Origin(models.TextChoices):
        LISTING = "listing", "a listing page linking the files"
        FIXED_URL = "fixed_url", "one URL whose content changes"
        BY_HAND = "by_hand", "placed by hand (no fetching)"

    class Mode(models.TextChoices):
        SNAPSHOT = "snapshot", "snapshot (each file is the whole dataset)"
        INCREMENTAL = "incremental", "incremental (each file adds rows)"

    organisation = models.CharField(
        max_length=63, help_text="[a-z0-9_]; the schema is <organisation>.<dataset>"
    )
    dataset = models.CharField(max_length=63, help_text="[a-z0-9_]")
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.SNAPSHOT)
    origin = models.CharField(max_length=20, choices=Origin.choices, default=Origin.LISTING)
    url = models.URLField(
        max_length=2000, blank=True, help_text="the listing page, or the file's fixed URL"
    )
    link_pattern = models.CharField(
        max_length=1000,
        blank=True,
        help_text="listing: regular expression the file links match (re.match), with a "
        "(?P<date>...) group, e.g. .*/things-(?P<date>\\d{4}-\\d{2})\\.csv$",
    )
    link_date_format = models.CharField(
        max_length=100, blank=True, help_text="listing: strptime format of the date group"
    )
    download_pattern = models.CharField(
        max_length=1000,
        blank=True,
        help_text="listing: when a link leads to a page, the pattern of the file's link on it",
    )
    file_name_pattern = models.CharField(
        max_length=200,
        blank=True,
        help_text="name a downloaded file is stored under, with {date}, e.g. things_{date}.csv",
    )
    file_date_format = models.CharField(
        max_length=100, blank=True, help_text="strptime format of {date}, e.g. %Y-%m-%d"
    )
    encoding = models.CharField(
        max_length=40, default="utf-8", help_text="assumed when a file is not UTF-8"
    )
    delimiter = models.CharField(max_length=1, default=",")
    quote = models.CharField(max_length=1, default='"')
    member_pattern = models.CharField(
        max_length=1000,
        blank=True,
        help_text="zips: regular expression (re.search) picking the members to load",
    )
    many_members = models.BooleanField(
        default=False, help_text="zips: load every matching member, in name order"
    )
    ignore_extra_columns = models.BooleanField(
        default=False, help_text="load files with columns the dataset does not have"
    )
    force_null = models.BooleanField(
        default=False, help_text='a quoted empty value "" is NULL in text columns too'
    )
    decimal_comma = models.BooleanField(default=False, help_text="numbers are written 1.234,56")
    columns = models.JSONField(
        default=list,
        help_text='L0 columns, in order: [{"name": "code", "type": "integer", "header": '
        '"Code", "date_format": "%d/%m/%Y"}, ...]; type, header and date_format are optional',
    )
    l1_columns = models.JSONField(
        default=list,
        blank=True,
        help_text='L1 columns (none: no L1): [{"name": "code", "type": "integer", '
        '"expression": "nullif(code_text, \'\')::integer"}, ...]; without an expression '
        "the L0 column of that name is copied",
    )
    trigger_dataflow = models.BooleanField(
        default=False, help_text="trigger data-flow after a run that loaded a file"
    )
    depends_on = models.JSONField(
        default=list, blank=True, help_text='source ids ingested first: ["dit.baci"]'
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "defined source"
        ordering = ["organisation", "dataset"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "dataset"], name="defined_source_unique"
            )
        ]

    def __str__(self) -> str:
        return self.source_id

    @property
    def source_id(self) -> str:
        return f"{self.organisation}.{self.dataset}"

    def clean(self) -> None:
        from pipelines.defined_sources import validate_definition

        validate_definition(self)


class RunRecord(models.Model):
    """One fetch, ingest or rebuild of one source, from a command or a background task:
    when, how it ended, its summary and its log."""

    class Kind(models.TextChoices):
        FETCH = "fetch"
        INGEST = "ingest"
        REBUILD = "rebuild"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    source = models.CharField(max_length=200, db_index=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    started_by = models.CharField(
        max_length=200, help_text="the command, or the admin user who queued it"
    )
    queued = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True)
    log = models.TextField(blank=True)

    class Meta:
        verbose_name = "source run"
        ordering = ["-queued", "-pk"]

    def __str__(self) -> str:
        return f"{self.source}: {self.kind} ({self.status})"


class SourceDesk(models.Model):
    """No table: the admin's page of every source, built-in and defined (their actions,
    files, runs and tables). A model only so that admin lists it and grants it the usual
    permissions: view to see the desk, change to run its actions and place files."""

    class Meta:
        managed = False
        verbose_name = "source"
        verbose_name_plural = "sources (operators' desk)"

    def __str__(self) -> str:
        return "source"
