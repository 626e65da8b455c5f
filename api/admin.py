from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from api.keys import MIN_KEY_LENGTH, key_problem, new_key
from api.models import HawkClient


class HawkClientForm(forms.ModelForm):
    key = forms.CharField(
        widget=forms.PasswordInput,
        required=False,
        strip=False,
        help_text=(
            f"At least {MIN_KEY_LENGTH} characters. Leave empty to keep the current key; "
            "the action “Rotate key” makes a new one."
        ),
    )

    class Meta:
        model = HawkClient
        fields = ["id", "key", "scopes", "description"]

    def clean_key(self) -> str:
        # The key is never shown again: an empty field on an existing client keeps it.
        key = self.cleaned_data["key"]
        if not key:
            if self.instance._state.adding:
                raise forms.ValidationError("A new client needs a key.")
            return self.instance.key
        problem = key_problem(key)
        if problem:
            raise forms.ValidationError(problem[:1].upper() + problem[1:] + ".")
        return key


@admin.register(HawkClient)
class HawkClientAdmin(admin.ModelAdmin):
    form = HawkClientForm
    list_display = ["id", "scope_list", "description", "created"]
    search_fields = ["id", "description"]
    readonly_fields = ["created"]
    actions = ["rotate_key"]

    @admin.display(description="scopes")
    def scope_list(self, obj: HawkClient) -> str:
        return ", ".join(obj.scopes)

    def get_readonly_fields(self, request, obj=None):
        # The HAWK id is the primary key: changing it would add a second client.
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields

    @admin.action(description="Rotate key", permissions=["change"])
    def rotate_key(self, request: HttpRequest, queryset: QuerySet[HawkClient]) -> TemplateResponse:
        """Asks first; then gives each selected client a new key and shows the keys once.

        The keys are shown on the answer to the confirming POST only: they are not kept in
        a message, a cookie or the session.
        """
        clients = list(queryset.order_by("id"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "clients": clients,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "title": "Rotate HAWK keys",
        }
        if request.POST.get("confirm") != "yes":
            return TemplateResponse(
                request, "admin/api/hawkclient/rotate_key_confirmation.html", context
            )
        with transaction.atomic():
            for client in clients:
                client.key = new_key()
                client.save(update_fields=["key"])
                self.log_change(request, client, "Rotated the HAWK key.")
        context["title"] = "New HAWK keys"
        response = TemplateResponse(request, "admin/api/hawkclient/rotated_keys.html", context)
        response["Cache-Control"] = "no-store"
        return response
