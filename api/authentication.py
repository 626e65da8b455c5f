"""The DRF authentication class of the API: HAWK, see ``api.hawk``."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, ParseError
from rest_framework.request import Request

from api import hawk

# Where a refused request keeps the WWW-Authenticate value for its 401 answer.
CHALLENGE_ATTRIBUTE = "hawk_challenge"


class HawkAuthentication(BaseAuthentication):
    """Authenticates a HAWK-signed request as its ``api.HawkClient``.

    ``request.user`` is the client and ``request.auth`` the mohawk receiver, which
    ``api.middleware.HawkResponseSigning`` uses to sign the response. A request without a
    Hawk Authorization header is left unauthenticated (the scope permission answers 401).
    """

    def authenticate(self, request: Request):
        django_request = request._request
        if not hawk.has_hawk_header(django_request):
            return None
        try:
            client, receiver = hawk.authenticate(django_request)
        except hawk.MalformedHeader as error:
            raise ParseError(str(error)) from None
        except hawk.Rejected as error:
            setattr(django_request, CHALLENGE_ATTRIBUTE, error.www_authenticate)
            raise AuthenticationFailed(str(error)) from None
        return client, receiver

    def authenticate_header(self, request: Request) -> str:
        return getattr(request._request, CHALLENGE_ATTRIBUTE, "Hawk")
