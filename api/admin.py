from django import forms
from django.contrib import admin

from api.models import HawkClient


class HawkClientForm(forms.ModelForm):
    key = forms.CharField(widget=forms.PasswordInput(render_value=True), min_length=16)

    class Meta:
        model = HawkClient
        fields = ["id", "key", "scopes", "description"]


@admin.register(HawkClient)
class HawkClientAdmin(admin.ModelAdmin):
    form = HawkClientForm
    list_display = ["id", "scope_list", "description", "created"]
    search_fields = ["id", "description"]

    @admin.display(description="scopes")
    def scope_list(self, obj: HawkClient) -> str:
        return ", ".join(obj.scopes)
