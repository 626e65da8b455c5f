from django import forms
from django.contrib import admin

from api.models import HawkClient


class HawkClientForm(forms.ModelForm):
    key = forms.CharField(
        widget=forms.PasswordInput,
        min_length=16,
        required=False,
        help_text="At least 16 characters. Leave empty to keep the current key.",
    )

    class Meta:
        model = HawkClient
        fields = ["id", "key", "scopes", "description"]

    def clean_key(self) -> str:
        # The key is never shown again: an empty field on an existing client keeps it.
        key = self.cleaned_data["key"]
        if key:
            return key
        if self.instance._state.adding:
            raise forms.ValidationError("A new client needs a key.")
        return self.instance.key


@admin.register(HawkClient)
class HawkClientAdmin(admin.ModelAdmin):
    form = HawkClientForm
    list_display = ["id", "scope_list", "description", "created"]
    search_fields = ["id", "description"]
    readonly_fields = ["created"]

    @admin.display(description="scopes")
    def scope_list(self, obj: HawkClient) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request, obj=None):
        # The HAWK id is the primary key: changing it would add a second client.
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields
