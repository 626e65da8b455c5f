"""Closed by default: DRF's defaults are HAWK and the endpoint scope; public views say so."""

import json

import pytest
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.response import Response
from rest_framework.views import APIView

from api.middleware import HawkResponseSigning
from tests.api.builders import make_client, sign

HOST = "http://testserver"


class UnconfiguredView(APIView):
    """A view that states neither authentication, permission nor scope."""

    def get(self, request):
        return Response({"secret": True})


class ScopedView(APIView):
    scope = "table_data"

    def get(self, request):
        return Response({"auth": type(request.auth).__name__})


def call(view: type[APIView], headers: dict[str, str] | None = None):
    """``view`` answering a GET of /probe/, through the response-signing middleware."""
    request = RequestFactory().get("/probe/", headers=headers or {})
    # Django's handler renders a DRF answer before the middleware sees it; so does this.
    return HawkResponseSigning(lambda request: view.as_view()(request).render())(request)


@pytest.mark.django_db
def test_a_view_that_states_nothing_refuses_an_unsigned_request():
    response = call(UnconfiguredView)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Hawk"
    assert "secret" not in response.content.decode()


@pytest.mark.django_db
def test_a_view_that_names_no_scope_refuses_even_a_client_with_every_scope():
    signed = sign(make_client(scopes=["*"]), f"{HOST}/probe/")

    response = call(UnconfiguredView, signed.headers)

    assert response.status_code == 403
    assert json.loads(response.content) == {
        "error": "This endpoint names no scope, so no client may call it"
    }


@pytest.mark.django_db
def test_the_receiver_travels_as_request_auth_and_signs_the_answer():
    signed = sign(make_client(scopes=["table_data"]), f"{HOST}/probe/")

    response = call(ScopedView, signed.headers)

    assert response.status_code == 200
    assert json.loads(response.content) == {"auth": "Receiver"}
    assert signed.verifies(
        response.content, response["Content-Type"], response["Server-Authorization"]
    )


@pytest.mark.django_db
def test_a_client_without_the_scope_is_refused():
    signed = sign(make_client(scopes=["table_structure"]), f"{HOST}/probe/")

    response = call(ScopedView, signed.headers)

    assert response.status_code == 403
    assert "table_data" in json.loads(response.content)["error"]


@pytest.mark.parametrize("name", ["schema", "api-docs"])
@pytest.mark.parametrize(
    "authorization",
    [None, 'Hawk id="nobody", ts="1", nonce="n", mac="bad"', "Hawk garbage"],
    ids=["unsigned", "unknown-client", "malformed"],
)
def test_the_api_description_is_public_whatever_the_authorization(client, db, name, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = client.get(reverse(name), headers=headers)

    assert response.status_code == 200


def test_the_health_check_is_public(client, db):
    assert client.get("/healthcheck/").status_code == 200
