"""The forms of the upload pages: a new pipeline, a file, and what the verify page changes."""

from collections.abc import Sequence

from django import forms

from dss.govuk_forms import GovukFormMixin
from uploads.journey import UPLOAD_TYPES
from uploads.models import Pipeline, normalise_name

TYPE_CHOICES = [(name, name) for name in UPLOAD_TYPES]
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
    """Each column's load name and type: fields ``name_<i>`` and ``type_<i>`` in file order."""

    def __init__(self, headers: Sequence[str], *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.headers = list(headers)
        for index, header in enumerate(self.headers):
            self.fields[f"name_{index}"] = forms.CharField(
                label=f"Column name for {header or '(empty header)'}",
                max_length=200,
                widget=forms.TextInput(
                    attrs={"class": "govuk-input--width-20", "spellcheck": "false"}
                ),
            )
            self.fields[f"type_{index}"] = forms.ChoiceField(
                label=f"Type of {header or '(empty header)'}", choices=TYPE_CHOICES
            )
        self.style_fields()

    def add_engine_errors(self, errors: dict[int, str]) -> None:
        """Show the engine's refusals (by 1-based column position; 0: the whole file)."""
        for position, message in errors.items():
            field = f"name_{position - 1}" if 0 < position <= len(self.headers) else None
            self.add_error(field, message[:1].upper() + message[1:])

    def column_types(self) -> list[tuple[str, str]]:
        """The chosen ``(name, type)`` pairs, in file order."""
        return [
            (self.cleaned_data[f"name_{i}"].strip(), self.cleaned_data[f"type_{i}"])
            for i in range(len(self.headers))
        ]

    def rows(self) -> list[dict]:
        """One entry per column for the template: header, its two bound fields."""
        return [
            {"header": header, "name": self[f"name_{i}"], "type": self[f"type_{i}"]}
            for i, header in enumerate(self.headers)
        ]
