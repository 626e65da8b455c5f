"""The scope permission: a client may call an endpoint whose scope it holds (or ``*``)."""

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from api.models import HawkClient


class HasEndpointScope(BasePermission):
    """Allows HAWK clients whose scopes contain ``*`` or the view's ``scope``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        client = request.user
        # DRF answers with this message when the permission is refused.
        self.message = f"This client's scopes do not include {view.scope}"
        return isinstance(client, HawkClient) and client.allows(view.scope)
