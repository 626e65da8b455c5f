"""HAWK request authentication over the ``api.HawkClient`` table, with mohawk.

The MAC is checked against the absolute URL Django builds for the request (scheme and host
from ``X-Forwarded-Proto``/``X-Forwarded-Host`` when ``DSS_TRUST_FORWARDED_HEADERS`` is on),
the method, and the body and Content-Type when the client hashed its payload. Nonces are kept
in a cache of their own (``api.cache``: Redis or the database, shared by every process) so
that a replay is refused by any server process.
"""

import hashlib
import logging
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest
from mohawk import Receiver
from mohawk.exc import (
    AlreadyProcessed,
    CredentialsLookupError,
    HawkFail,
    MacMismatch,
    MisComputedContentHash,
    TokenExpired,
)
from mohawk.util import parse_authorization_header

from api.cache import nonce_cache
from api.models import HawkClient

logger = logging.getLogger(__name__)

ALGORITHM = "sha256"
REQUIRED_ATTRIBUTES = ("id", "ts", "nonce", "mac")


class MalformedHeader(Exception):
    """The Authorization header uses the Hawk scheme but cannot be parsed (answer 400)."""


class Rejected(Exception):
    """Valid-looking HAWK credentials that do not authenticate the request (answer 401).

    ``www_authenticate`` is the header value to answer with when HAWK prescribes one (a stale
    timestamp answers with the server's time so that the client can correct its clock).
    """

    def __init__(self, message: str, www_authenticate: str = "Hawk") -> None:
        super().__init__(message)
        self.www_authenticate = www_authenticate


def has_hawk_header(request: HttpRequest) -> bool:
    scheme = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0]
    return scheme.lower() == "hawk"


def authenticate(request: HttpRequest) -> tuple[HawkClient, Receiver]:
    """The client that signed ``request`` and the receiver that signs the response.

    Raises MalformedHeader or Rejected. Call only when ``has_hawk_header(request)``.
    """
    header = request.META["HTTP_AUTHORIZATION"]
    check_well_formed(header)
    clients: dict[str, HawkClient | None] = {}

    def credentials(client_id: str) -> dict:
        if client_id not in clients:
            clients[client_id] = HawkClient.objects.filter(id=client_id).first()
        client = clients[client_id]
        if client is None:
            raise LookupError(client_id)
        return {"id": client.id, "key": client.key, "algorithm": ALGORITHM}

    urls = signable_urls(request)
    for url in urls:
        try:
            receiver = Receiver(
                credentials,
                header,
                url,
                request.method,
                content=request.body,
                content_type=request.META.get("CONTENT_TYPE", ""),
                seen_nonce=seen_nonce,
                timestamp_skew_in_seconds=settings.HAWK_SKEW_SECONDS,
            )
        except MacMismatch as error:
            # The nonce is only remembered once the MAC matches, so trying the next
            # spelling of the URL is safe.
            if url is urls[-1]:
                raise refused(error, header) from None
        except HawkFail as error:
            raise refused(error, header) from None
        else:
            return next(client for client in clients.values() if client), receiver
    raise AssertionError("unreachable: signable_urls is never empty")


def signable_urls(request: HttpRequest) -> list[str]:
    """The spellings of the request's absolute URL that a client may have signed.

    The MAC covers the URL as the client wrote it, but WSGI servers hand Django the path
    percent-decoded. The raw request line, when the server passes it on (gunicorn does), is
    exact; otherwise the path is re-encoded as Django encodes it (which is how ``next`` links
    are written) and with every reserved character encoded.
    """
    origin = f"{request.scheme}://{request.get_host()}"
    query = request.META.get("QUERY_STRING", "")
    urls = []
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI") or ""
    if raw.startswith("/"):
        urls.append(f"{origin}{raw}")
    urls.append(request.build_absolute_uri())
    encoded = quote(request.path, safe="/")
    urls.append(f"{origin}{encoded}?{query}" if query else f"{origin}{encoded}")
    return list(dict.fromkeys(urls))


def check_well_formed(header: str) -> None:
    """Raise MalformedHeader naming what is wrong with a Hawk Authorization header."""
    try:
        attributes = parse_authorization_header(header)
    except (HawkFail, ValueError) as error:
        raise MalformedHeader(f"Malformed HAWK Authorization header: {error}") from None
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise MalformedHeader(f"Malformed HAWK Authorization header: missing {', '.join(missing)}")
    if not attributes["ts"].isdigit():
        raise MalformedHeader("Malformed HAWK Authorization header: ts is not a whole number")


def refused(error: HawkFail, header: str) -> Rejected:
    """The Rejected error for ``error``, logged with the client's id (mohawk's own messages
    hold MACs, which stay out of the logs)."""
    rejected = rejection(error)
    client_id = parse_authorization_header(header).get("id")
    logger.warning("HAWK authentication refused for id %r: %s", client_id, rejected)
    return rejected


def rejection(error: HawkFail) -> Rejected:
    """The Rejected error, with a message a client can act on, for a mohawk failure."""
    if isinstance(error, TokenExpired):
        return Rejected(
            f"HAWK timestamp is more than {settings.HAWK_SKEW_SECONDS} seconds away from "
            "the server's time",
            www_authenticate=error.www_authenticate,
        )
    messages = [
        (CredentialsLookupError, "Unknown HAWK id"),
        (MacMismatch, "HAWK MAC does not match the request"),
        (MisComputedContentHash, "HAWK payload hash does not match the request body"),
        (AlreadyProcessed, "HAWK nonce has already been used"),
    ]
    for kind, message in messages:
        if isinstance(error, kind):
            return Rejected(message)
    return Rejected("Invalid HAWK credentials")


def seen_nonce(client_id: str, nonce: str, timestamp: str) -> bool:
    """Remember ``nonce`` for ``client_id``; True when it was already remembered.

    ``cache.add`` is atomic in Redis and in the database cache (the second insert of a key
    fails), so two processes receiving the same request at once cannot both accept it.
    """
    digest = hashlib.sha256(f"{client_id}\n{nonce}".encode()).hexdigest()
    # A request is accepted while its timestamp is within the skew of the server's clock on
    # either side, so the nonce must be remembered for twice the skew.
    timeout = 2 * settings.HAWK_SKEW_SECONDS + 1
    return not nonce_cache().add(f"hawk-nonce:{digest}", True, timeout=timeout)
