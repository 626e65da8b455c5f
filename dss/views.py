"""Project-wide pages: the health check, the index, the single sign-on pages (refused,
signed out), GOV.UK Frontend's assets and the favicon."""

import logging

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static

from dss.startup import database_problem, storage_problem

logger = logging.getLogger(__name__)


def healthcheck(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "OK"}`` when the database and storage answer, else 503 naming the part.

    Public on purpose: a plain Django view, outside DRF and its HAWK defaults, for load
    balancers and orchestrators.
    """
    failing = []
    for part, check in (("database", database_problem), ("storage", storage_problem)):
        try:
            problem = check()
        except Exception as error:  # a health check reports every failure, whatever its kind
            problem = f"{type(error).__name__}: {error}"
        if problem:
            logger.error("health check: %s does not answer: %s", part, problem)
            failing.append(part)
    if failing:
        return JsonResponse({"status": "FAIL", "failing": failing}, status=503)
    return JsonResponse({"status": "OK"})


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html")


def govuk_asset(request: HttpRequest, name: str) -> HttpResponse:
    """GOV.UK Frontend's stylesheet asks for its fonts and images at ``/assets/<name>``: a
    redirect to the static file (with its hashed name once collected)."""
    try:
        return redirect(static(f"govuk/assets/{name}"), permanent=True)
    except ValueError:  # not among the collected static files
        raise Http404(name) from None


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for ``/favicon.ico`` on pages that name no icon (the admin's): a
    redirect to GOV.UK Frontend's. Temporary, since the static file's name changes with
    its content once collected. Needs no login."""
    return redirect(static("govuk/assets/images/favicon.ico"))


def signed_out(request: HttpRequest) -> HttpResponse:
    """Where signing out ends with single sign-on on. It needs no login: a page that did
    would send the person straight back to the provider. Says whether the provider's
    session ended too (only when its end-session endpoint is set)."""
    return render(
        request,
        "registration/signed_out.html",
        {"provider_signed_out": bool(getattr(settings, "OIDC_OP_LOGOUT_ENDPOINT", ""))},
    )


def login_refused(request: HttpRequest) -> HttpResponse:
    """Where single sign-on sends a person whom the settings do not let in."""
    return render(request, "registration/refused.html", status=403)
