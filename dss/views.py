"""Project-wide pages: the health check and the index."""

import logging

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from pipelines import storage

logger = logging.getLogger(__name__)


def healthcheck(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "OK"}`` when the database and storage answer, else 503 naming the part."""
    failing = []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("health check: database does not answer")
        failing.append("database")
    try:
        storage.exists("healthcheck")
    except Exception:
        logger.exception("health check: storage does not answer")
        failing.append("storage")
    if failing:
        return JsonResponse({"status": "FAIL", "failing": failing}, status=503)
    return JsonResponse({"status": "OK"})


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "index.html")
