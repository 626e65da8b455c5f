"""Signing the responses to HAWK-authenticated requests (the Server-Authorization header)."""

from collections.abc import Callable
from io import BytesIO

from django.http import HttpRequest, HttpResponse
from mohawk import Receiver


class HawkResponseSigning:
    """Adds ``Server-Authorization`` to every response of a HAWK-authenticated request.

    The header signs the response body and its Content-Type, as clients such as data-flow
    verify them. Errors answered after authentication (403, 404, 422, 503) are signed as well;
    a request that failed authentication has nothing to sign with. Put this middleware first
    so that it signs the body exactly as it leaves the service.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # DRF keeps the credentials an authentication returned, here the mohawk receiver, as
        # request.auth, also on Django's request.
        receiver = getattr(request, "auth", None)
        if isinstance(receiver, Receiver) and not response.streaming:
            # mohawk reads a file-like body in blocks; given bytes, it also pretty-prints the
            # whole body for a debug message, which costs far more than the hash itself.
            response["Server-Authorization"] = receiver.respond(
                content=BytesIO(response.content),
                content_type=response.get("Content-Type", ""),
            )
        return response
