"""HAWK request authentication over the ``api.HawkClient`` table, with mohawk.

The MAC is checked against the absolute URL Django builds for the request (scheme, host and
port from the forwarded headers when ``DSS_TRUST_FORWARDED_HEADERS`` is on, see
``dss.forwarded``) and the method. The payload hash, when the client sent one, is always
checked against the body and Content-Type; a request without a body and without a hash is
authenticated by its MAC alone (client libraries add a Content-Type of their own to a GET);
a body without a hash is refused. Nonces are kept in a cache of their own (``api.cache``:
Redis or the database, shared by every process) so that a replay is refused by any server
process.

An unknown id and a MAC that does not match get the same answer, so that the answer does not
tell which ids exist; the log says which it was.
"""

import hashlib
import logging
import re
import secrets
from typing import NoReturn
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest
from mohawk import Receiver
from mohawk.exc import (
    AlreadyProcessed,
    HawkFail,
    MacMismatch,
    MisComputedContentHash,
    TokenExpired,
)
from mohawk.util import parse_authorization_header

from api.cache import nonce_cache
from api.connection_loss import retried_once
from api.models import HawkClient

logger = logging.getLogger(__name__)

ALGORITHM = "sha256"
REQUIRED_ATTRIBUTES = ("id", "ts", "nonce", "mac")
# A Unix time in whole seconds; 15 digits reach far beyond any clock, and bound the number
# that the timestamp check turns into a float.
TIMESTAMP = re.compile(r"[0-9]{1,15}")
NOT_AUTHENTICATED = "HAWK id is unknown or its MAC does not match the request"
BODY_WITHOUT_HASH = (
    "HAWK header has no payload hash but the request has a body: sign the body (hash attribute)"
)
# What Python's development server (wsgiref, under runserver) reports as the Content-Type of a
# request that sent none.
DEVELOPMENT_SERVER = "WSGIServer/"
DEVELOPMENT_SERVER_DEFAULT_TYPE = "text/plain"


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

    Raises MalformedHeader or Rejected (and Django's database errors when the client cannot
    be looked up). Call only when ``has_hawk_header(request)``.
    """
    header = request.META["HTTP_AUTHORIZATION"]
    attributes = well_formed_attributes(header)
    client_id = attributes["id"]
    client = retried_once(lambda: HawkClient.objects.filter(id=client_id).first())
    if client is None:
        logger.warning("HAWK authentication refused for id %r: unknown id", client_id)
    # An unknown id is checked against a key nobody has, so that it costs what a known one
    # costs and fails the same way.
    key = client.key if client is not None else secrets.token_urlsafe(32)
    credentials = {"id": client_id, "key": key, "algorithm": ALGORITHM}
    content, content_types = signed_payload(request, attributes)
    urls = signable_urls(request)
    receiver = receive(request, header, credentials, urls, content, content_types)
    if client is not None and receiver is not None:
        return client, receiver
    if client is not None:
        logger.warning(
            "HAWK authentication refused for id %r: MAC does not match %s %s",
            client_id,
            request.method,
            " or ".join(urls),
        )
    raise Rejected(NOT_AUTHENTICATED)


def signed_payload(request: HttpRequest, attributes: dict[str, str]) -> tuple[bytes, list[str]]:
    """The body and the Content-Types to check the payload hash against: the request's when
    it has a ``hash``; nothing when it has neither body nor hash (its MAC alone
    authenticates it). Rejected for a body without a hash."""
    if "hash" in attributes:
        return request.body, signable_content_types(request)
    if request.body:
        refuse(attributes["id"], Rejected(BODY_WITHOUT_HASH))
    return b"", [""]


def receive(
    request: HttpRequest,
    header: str,
    credentials: dict[str, str],
    urls: list[str],
    content: bytes,
    content_types: list[str],
) -> Receiver | None:
    """The mohawk receiver of the first URL and Content-Type that ``header`` signs; None when
    the MAC matches none of the URLs. Rejected for any other fault."""
    for url in urls:
        for content_type in content_types:
            try:
                return Receiver(
                    lambda _id: credentials,
                    header,
                    url,
                    request.method,
                    content=content,
                    content_type=content_type,
                    seen_nonce=seen_nonce,
                    timestamp_skew_in_seconds=settings.HAWK_SKEW_SECONDS,
                )
            except MacMismatch:
                # The nonce is only remembered once the MAC and the hash match, so trying
                # the next spelling of the URL (or of the Content-Type) is safe.
                break
            except MisComputedContentHash as error:
                if content_type == content_types[-1]:
                    refuse(credentials["id"], rejection(error))
            except HawkFail as error:
                refuse(credentials["id"], rejection(error))
    return None


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


def signable_content_types(request: HttpRequest) -> list[str]:
    """The Content-Types a client that hashed its payload may have hashed.

    The one the request carries; for a request without a body served by the development
    server also none, since that server reports ``text/plain`` when no Content-Type was sent.
    """
    content_type = request.META.get("CONTENT_TYPE", "")
    server = request.META.get("SERVER_SOFTWARE", "")
    if (
        not request.body
        and server.startswith(DEVELOPMENT_SERVER)
        and content_type == DEVELOPMENT_SERVER_DEFAULT_TYPE
    ):
        return [content_type, ""]
    return [content_type]


def well_formed_attributes(header: str) -> dict[str, str]:
    """The attributes of a Hawk Authorization header; MalformedHeader naming what is wrong."""
    try:
        attributes = parse_authorization_header(header)
    except (HawkFail, ValueError) as error:
        raise MalformedHeader(f"Malformed HAWK Authorization header: {error}") from None
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise MalformedHeader(f"Malformed HAWK Authorization header: missing {', '.join(missing)}")
    if not TIMESTAMP.fullmatch(attributes["ts"]):
        raise MalformedHeader(
            "Malformed HAWK Authorization header: ts is not a Unix time in whole seconds"
        )
    return attributes


def refuse(client_id: str, rejected: Rejected) -> NoReturn:
    """Log and raise ``rejected`` (mohawk's own messages hold MACs, which stay out of the
    logs)."""
    logger.warning("HAWK authentication refused for id %r: %s", client_id, rejected)
    raise rejected


def rejection(error: HawkFail) -> Rejected:
    """The Rejected error, with a message a client can act on, for a mohawk failure."""
    if isinstance(error, TokenExpired):
        return Rejected(
            f"HAWK timestamp is more than {settings.HAWK_SKEW_SECONDS} seconds away from "
            "the server's time",
            www_authenticate=error.www_authenticate,
        )
    messages = [
        (MacMismatch, NOT_AUTHENTICATED),
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
