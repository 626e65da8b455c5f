"""The forms of the upload pages: a new pipeline, a file, and what the verify page changes."""

from collections.abc import Mapping, Sequence

from django import forms

from dss.govuk_forms import GovukFormMixin
from pipelines.date_formats import UPLOAD_FORMATS, describe
from uploads.edits import Choice
from uploads.journey import UPLOAD_TYPES
from uploads.models import Pipeline, normalise_name

TYPE_CHOICES = [(name, name) for name in UPLOAD_TYPES]
# A date or timestamp column's format; "" is ISO 8601, read without a declared format.
DATE_FORMAT_CHOICES = [
    ("", "YYYY-MM-DD (ISO 8601)"),
    *((text, describe(text)) for text in UPLOAD_FORMATS),
]
NAME_MAX_LENGTH = 200
DELIMITER_CHOICES = [(",", "Comma (,)"), (";", "Semicolon (;)"), ("\t", "Tab"), ("|", "Pipe (|)")]
QUOTE_CHOICES = [('"', 'Double quote (")'), ("'", "Single quote (')")]
DECIMAL_CHOICES = [(".", "Full stop (1.5)"), (",", "Comma (1,5)")]
ENCODING_CHOICES = [
    ("utf-8", "UTF-8"),
    ("utf-8-sig", "UTF-8 with byte-order mark"),
    ("cp1252", "Windows-1252"),
    ("iso-8859-1", "ISO-8859-1 (Latin-1)"),
    ("utf-16", "UTF-16"),
]


def fitting_size(value: str | None) -> int:
    """The ``size`` (in characters) of a name input that shows ``value`` whole: two more
    than its length, at least 10, at most 65 (a PostgreSQL name has at most 63 bytes)."""
    return min(max(len(value or "") + 2, 10), 65)


class NameField(forms.CharField):
    """A pipeline name, normalised as the model does before it is checked."""

    def to_python(self, value) -> str:
        return normalise_name(super().to_python(value))


class PipelineForm(GovukFormMixin, forms.ModelForm):
    """A new pipeline: organisation and dataset, normalised as the model does; a pair that
    exists already is refused naming it."""

    class Meta:
        model = Pipeline
        fields = ["organisation", "dataset"]
        field_classes = {"organisation": NameField, "dataset": NameField}
        help_texts = {
            "organisation": "Lower-case letters, digits and underscores, for example dit",
            "dataset": "Lower-case letters, digits and underscores; dots become underscores",
        }

    def clean(self) -> dict:
        data = super().clean()
        organisation, dataset = data.get("organisation"), data.get("dataset")
        if (
            organisation
            and dataset
            and Pipeline.objects.filter(organisation=organisation, dataset=dataset).exists()
        ):
            raise forms.ValidationError(
                f"A pipeline for {organisation}.{dataset} exists already: choose it from the "
                "list instead",
                code="duplicate",
            )
        return data

    def validate_unique(self) -> None:
        """Already checked in clean(), with a message that names the pipeline."""


class UploadForm(GovukFormMixin, forms.Form):
    file = forms.FileField(
        label="Upload a file",
        help_text="A CSV file, or an Excel workbook (.xlsx)",
        error_messages={"required": "Choose a file to upload"},
    )


class DialectForm(GovukFormMixin, forms.Form):
    """How the file is read; each starts as what was detected. A workbook's form also
    chooses its sheet (``sheets``: the names it has)."""

    delimiter = forms.ChoiceField(label="Delimiter", choices=DELIMITER_CHOICES)
    quote = forms.ChoiceField(label="Quote character", choices=QUOTE_CHOICES)
    encoding = forms.ChoiceField(label="Encoding", choices=ENCODING_CHOICES)
    decimal_separator = forms.ChoiceField(label="Decimal separator", choices=DECIMAL_CHOICES)

    def __init__(self, *args, sheets: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if sheets:
            self.fields["sheet"] = forms.ChoiceField(
                label="Sheet", choices=[(name, name) for name in sheets]
            )
            self.style_fields()
        # A detected encoding outside the usual list is offered too.
        encoding = (self.initial or {}).get("encoding")
        if encoding and encoding not in dict(ENCODING_CHOICES):
            self.fields["encoding"].choices = [(encoding, encoding), *ENCODING_CHOICES]
        if self.is_bound and self.data.get(self.add_prefix("encoding")) not in (
            None,
            *dict(self.fields["encoding"].choices),
        ):
            value = self.data[self.add_prefix("encoding")]
            self.fields["encoding"].choices = [(value, value), *self.fields["encoding"].choices]


class ColumnsForm(GovukFormMixin, forms.Form):
    """Each column's load name, type and date format: fields ``name_<i>``, ``type_<i>`` and
    ``date_format_<i>`` in file order (the format counts for date and timestamp columns).
    ``date_hints``: a hint for a column's date format, by index."""

    def __init__(
        self,
        headers: Sequence[str],
        *args,
        date_hints: Mapping[int, str] | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.headers = list(headers)
        date_hints = date_hints or {}
        for index, header in enumerate(self.headers):
            shown = header or "(empty header)"
            self.fields[f"name_{index}"] = forms.CharField(
                label=f"Column name for {shown}",
                max_length=NAME_MAX_LENGTH,
                widget=forms.TextInput(attrs={"class": "dss-input--fit", "spellcheck": "false"}),
            )
            self.fields[f"type_{index}"] = forms.ChoiceField(
                label=f"Type of {shown}", choices=TYPE_CHOICES
            )
            self.fields[f"date_format_{index}"] = forms.ChoiceField(
                label=f"Date format of {shown}",
                choices=DATE_FORMAT_CHOICES,
                required=False,
                help_text=date_hints.get(index, ""),
                error_messages={
                    "invalid_choice": f"Date format of {shown}: %(value)s is not a date format "
                    "an upload takes; choose one from the list"
                },
            )
        self.style_fields()
        for index in range(len(self.headers)):
            name = f"name_{index}"
            self.fields[name].widget.attrs["size"] = fitting_size(self[name].value())

    def add_engine_errors(self, errors: dict[int, str], fields: dict[int, str]) -> None:
        """Show the engine's refusals (by 1-based column position; 0: the whole file) on
        the field ``fields`` names (the name when it names none)."""
        for position, message in errors.items():
            field = None
            if 0 < position <= len(self.headers):
                field = f"{fields.get(position, 'name')}_{position - 1}"
            self.add_error(field, message[:1].upper() + message[1:])

    def column_types(self) -> list[tuple[str, str]]:
        """The chosen ``(name, type)`` pairs, in file order."""
        return [
            (self.cleaned_data[f"name_{i}"].strip(), self.cleaned_data[f"type_{i}"])
            for i in range(len(self.headers))
        ]

    def date_formats(self) -> list[str]:
        """The chosen date formats, in file order ("" for ISO 8601)."""
        return [self.cleaned_data[f"date_format_{i}"] for i in range(len(self.headers))]

    def rows(self) -> list[dict]:
        """One entry per column for the template: header, its three bound fields, and
        whether its type (as the page shows it) takes a date format."""
        rows = []
        for i, header in enumerate(self.headers):
            kind = self[f"type_{i}"]
            rows.append(
                {
                    "header": header,
                    "name": self[f"name_{i}"],
                    "type": kind,
                    "date_format": self[f"date_format_{i}"],
                    "dated": kind.value() in ("date", "timestamp"),
                }
            )
        return rows

    @staticmethod
    def initial_of(choices: Sequence[Choice]) -> dict[str, str]:
        """The form's initial values for ``choices`` (one per column, in file order)."""
        initial = {}
        for i, choice in enumerate(choices):
            initial |= {
                f"name_{i}": choice.name,
                f"type_{i}": choice.type,
                f"date_format_{i}": choice.date_format,
            }
        return initial

    @staticmethod
    def posted(data: Mapping[str, str], previous: Sequence[Choice]) -> list[Choice]:
        """The values a page posted for the columns it showed (``previous``, what it had
        detected); a value that is missing or not one to choose counts as unchanged."""
        posted = []
        formats = dict(DATE_FORMAT_CHOICES)
        for i, choice in enumerate(previous):
            name = str(data.get(f"name_{i}", choice.name)).strip()[:NAME_MAX_LENGTH]
            kind = data.get(f"type_{i}", choice.type)
            date_format = data.get(f"date_format_{i}", choice.date_format)
            posted.append(
                Choice(
                    choice.header,
                    name or choice.name,
                    kind if kind in UPLOAD_TYPES else choice.type,
                    date_format if date_format in formats else choice.date_format,
                )
            )
        return posted
