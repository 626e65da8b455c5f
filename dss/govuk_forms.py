"""Django forms drawn as GOV.UK Design System fields: each widget gets the component's class,
the error modifier when its field has an error, and ``aria-describedby`` naming its hint and
error message (the ids that templates/field.html gives them)."""

from django import forms
from django.contrib.auth.forms import AuthenticationForm

WIDGET_CLASSES = {
    forms.Select: "govuk-select",
    forms.FileInput: "govuk-file-upload",
    forms.Textarea: "govuk-textarea",
}
ERROR_CLASSES = {
    "govuk-input": "govuk-input--error",
    "govuk-select": "govuk-select--error",
    "govuk-file-upload": "govuk-file-upload--error",
    "govuk-textarea": "govuk-textarea--error",
}


def widget_class(widget: forms.Widget) -> str:
    for kind, name in WIDGET_CLASSES.items():
        if isinstance(widget, kind):
            return name
    return "govuk-input"


class GovukFormMixin:
    """Mix into a form (before ``forms.Form``) to style its widgets as GOV.UK components."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.style_fields()

    def style_fields(self) -> None:
        """Style every field (again, for fields a form adds after its own __init__)."""
        for name, field in self.fields.items():
            base = widget_class(field.widget)
            classes = field.widget.attrs.get("class", "")
            if base not in classes.split():
                field.widget.attrs["class"] = f"{base} {classes}".strip()
            if field.help_text:
                field.widget.attrs["aria-describedby"] = f"{self[name].id_for_label}-hint"

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:
            if name not in self.fields:
                continue
            widget = self.fields[name].widget
            classes = widget.attrs.get("class", "")
            base = classes.split()[0] if classes else "govuk-input"
            if ERROR_CLASSES.get(base, "") not in classes:
                widget.attrs["class"] = f"{classes} {ERROR_CLASSES.get(base, '')}".strip()
            described = [f"{self[name].id_for_label}-error"]
            if self.fields[name].help_text:
                described.insert(0, f"{self[name].id_for_label}-hint")
            widget.attrs["aria-describedby"] = " ".join(described)


class LoginForm(GovukFormMixin, AuthenticationForm):
    """Django's username and password form (local use, without single sign-on)."""
