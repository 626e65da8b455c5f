"""The public scheme, host and port of a request behind a proxy (``X-Forwarded-*`` headers).

When ``DSS_TRUST_FORWARDED_HEADERS`` is on, Django builds absolute URLs (``next`` links, the
URL a HAWK MAC is checked against) from ``X-Forwarded-Proto`` and ``X-Forwarded-Host``. This
middleware folds ``X-Forwarded-Port`` into the host first, since Django ignores it once a host
header is given, and leaves a scheme's default port (443 for https, 80 for http) out, as
clients leave it out of the URLs they sign.

A header may carry several comma-separated values (each proxy on the way may add its own):
the first, leftmost, is trusted, since it is the one the client-facing proxy saw. A port
written in the host wins over ``X-Forwarded-Port``. A value that cannot be used answers 400
with a JSON error naming the header, as does a host that ``ALLOWED_HOSTS`` does not allow.
"""

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port

security_logger = logging.getLogger("django.security.DisallowedHost")

DEFAULT_PORTS = {"http": "80", "https": "443"}
PROTO, HOST, PORT = "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT"


class BadForwardedHeader(Exception):
    """A forwarded header whose value cannot be used (answer 400)."""


class ForwardedHeaders:
    """Normalises the forwarded headers (first value, port folded into the host) when they
    are trusted, and answers JSON 400 for a host or forwarded value that cannot be served."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            if settings.TRUST_FORWARDED_HEADERS:
                normalise(request.META)
            request.get_host()
        except BadForwardedHeader as error:
            return JsonResponse({"error": str(error)}, status=400)
        except DisallowedHost as error:
            security_logger.warning("%s", error)
            return JsonResponse({"error": host_refusal(request)}, status=400)
        return self.get_response(request)


def normalise(meta: dict) -> None:
    """Rewrite ``meta``'s forwarded headers to the single values Django reads: the scheme in
    lower case, and the host with the public port unless it is the scheme's default."""
    proto = first_value(meta, PROTO)
    if proto is not None:
        proto = proto.lower()
        if proto not in DEFAULT_PORTS:
            raise BadForwardedHeader(f"X-Forwarded-Proto must be http or https, not {proto!r}")
        meta[PROTO] = proto
    scheme = proto or meta.get("wsgi.url_scheme", "http")
    port = first_value(meta, PORT)
    if port is not None and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise BadForwardedHeader(f"X-Forwarded-Port must be a port number, not {port!r}")
    host = first_value(meta, HOST)
    source = "X-Forwarded-Host"
    if host is None:
        host, source = meta.get("HTTP_HOST", ""), "Host"
    if not host and source == "Host":
        return
    domain, host_port = split_domain_port(host)
    if not domain:
        raise BadForwardedHeader(f"{source} is not a host name: {host[:100]!r}")
    public_port = host_port or port
    meta[HOST] = (
        domain if public_port in (None, DEFAULT_PORTS[scheme]) else f"{domain}:{public_port}"
    )


def first_value(meta: dict, name: str) -> str | None:
    """The first of the comma-separated values of header ``name``; None when not sent."""
    value = meta.get(name)
    if value is None:
        return None
    return value.split(",", 1)[0].strip()


def host_refusal(request: HttpRequest) -> str:
    source = (
        "X-Forwarded-Host (or X-Forwarded-Port)"
        if settings.USE_X_FORWARDED_HOST and HOST in request.META
        else "Host"
    )
    return f"The host in the {source} header is not served here (ALLOWED_HOSTS)"
