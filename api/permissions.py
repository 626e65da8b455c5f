"""The scope permission: a client may call an endpoint whose scope it holds (or ``*``)."""

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from api.models import HawkClient

if TYPE_CHECKING:
    # DRF imports its default permission while it loads rest_framework.views.
    from rest_framework.views import APIView


class HasEndpointScope(BasePermission):
    """Allows HAWK clients whose scopes contain ``*`` or the view's ``scope``.

    DRF's default permission: a view without a ``scope`` is refused to every client.
    """

    def has_permission(self, request: Request, view: "APIView") -> bool:
        client = request.user
        scope = getattr(view, "scope", "")
        # DRF answers with this message when the permission is refused.
        self.message = f"This client's scopes do not include {scope}"
        if not scope:
            self.message = "This endpoint names no scope, so no client may call it"
            return False
        return isinstance(client, HawkClient) and client.allows(scope)
