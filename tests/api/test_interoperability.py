"""HAWK clients against both servers (gunicorn and the run command's development server):
mohawk signing as data-flow does and as other libraries do, and the npm ``hawk`` package (a
separate implementation of the scheme, run by Node.js)."""

import json
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.api.builders import make_client, sign, without_version
from tests.api.conftest import PUBLIC_HOST
from tests.api.servers import PROJECT_DIR, run_command, service_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PATH = "/api/v1/table-data/acme.things/L0"
ROWS = [("a",), ("b",), ("c",)]
PROXY_ORIGIN = f"https://{PUBLIC_HOST}:8443"
PROXY_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": PUBLIC_HOST,
    "X-Forwarded-Port": "8443",
}


@pytest.fixture
def things(tables) -> None:
    tables.create("acme.things", "L0", {"name": "text"}, ROWS)


def get(server, path: str, signed, **headers: str) -> requests.Response:
    return requests.get(f"{server.url}{path}", headers={**signed.headers, **headers}, timeout=30)


def assert_signed_answer(response: requests.Response, signed, status: int = 200) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert signed.verifies(
        response.content, response.headers["Content-Type"], response.headers["Server-Authorization"]
    )


def assert_json_refusal(response: requests.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert words in response.json()["error"]


def test_a_request_signed_like_data_flow_is_served_and_signed(server, things):
    signed = sign(make_client(), f"{server.url}{PATH}?orientation=records")
    response = get(server, f"{PATH}?orientation=records", signed)
    assert_signed_answer(response, signed)
    assert without_version(response.json()["next"]) == (
        f"{server.url}{PATH}?orientation=records&next-id=3"
    )


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain", None])
def test_a_get_without_body_or_hash_is_served_whatever_its_content_type(
    server, things, content_type
):
    signed = sign(make_client(), f"{server.url}{PATH}", hash_payload=False)
    headers = {} if content_type is None else {"Content-Type": content_type}
    assert_signed_answer(get(server, PATH, signed, **headers), signed)


def test_a_hash_of_no_content_type_is_accepted_when_no_content_type_is_sent(server, things):
    signed = sign(make_client(), f"{server.url}{PATH}")
    del signed.headers["Content-Type"]
    assert_signed_answer(get(server, PATH, signed), signed)


def test_a_sent_hash_is_checked_against_the_content_type_sent(server, things):
    signed = sign(make_client(), f"{server.url}{PATH}")
    response = get(server, PATH, signed, **{"Content-Type": "application/json"})
    assert_json_refusal(response, 401, "payload hash does not match")


def test_a_body_without_a_hash_is_refused(server, things):
    signed = sign(make_client(), f"{server.url}{PATH}", hash_payload=False)
    response = requests.get(
        f"{server.url}{PATH}", data=b'{"x": 1}', headers=signed.headers, timeout=30
    )
    assert_json_refusal(response, 401, "no payload hash but the request has a body")


@pytest.mark.parametrize(
    "proxy_headers",
    [
        PROXY_HEADERS,
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": f"{PUBLIC_HOST}:8443"},
        {
            "X-Forwarded-Proto": "https, http",
            "X-Forwarded-Host": f"{PUBLIC_HOST}, proxy.internal",
            "X-Forwarded-Port": "8443, 80",
        },
    ],
    ids=["port-header", "host-with-port", "several-values"],
)
def test_behind_a_proxy_the_public_port_is_signed_and_kept_in_next(server, things, proxy_headers):
    path = f"{PATH}?orientation=records"
    signed = sign(make_client(), f"{PROXY_ORIGIN}{path}")
    response = get(server, path, signed, **proxy_headers)
    assert_signed_answer(response, signed)
    assert (
        without_version(response.json()["next"])
        == f"{PROXY_ORIGIN}{PATH}?orientation=records&next-id=3"
    )


@pytest.mark.parametrize(
    "proxy_headers, words",
    [
        ({**PROXY_HEADERS, "X-Forwarded-Port": "8443x, 443"}, "X-Forwarded-Port"),
        ({**PROXY_HEADERS, "X-Forwarded-Host": "evil.example, dss.example.com"}, "not served"),
    ],
)
def test_an_unusable_forwarded_value_answers_json_never_an_html_page(
    server, things, proxy_headers, words
):
    signed = sign(make_client(), f"{PROXY_ORIGIN}{PATH}")
    assert_json_refusal(get(server, PATH, signed, **proxy_headers), 400, words)


@pytest.mark.parametrize("timestamp", [10**400, -(10**20)])
def test_an_absurd_timestamp_answers_400_or_401(server, things, timestamp):
    signed = sign(make_client(), f"{server.url}{PATH}", _timestamp=timestamp)
    response = get(server, PATH, signed)
    assert response.status_code in (400, 401)
    assert response.headers["Content-Type"] == "application/json"


def read_with_npm_hawk(npm_hawk, server, client, url: str, **options) -> list[list]:
    """Every row from ``url`` on, following ``next``, each answer verified by the npm client."""
    rows = []
    while url:
        answer = npm_hawk(url, client, **options)
        assert answer["status"] == 200, answer["body"]
        assert answer["verified"], answer["verifyError"]
        page = json.loads(answer["body"])
        rows += page["values"]
        url = page["next"]
    return rows


def test_the_npm_hawk_client_reads_a_table_and_verifies_every_answer(server, things, npm_hawk):
    client = make_client()
    rows = read_with_npm_hawk(npm_hawk, server, client, f"{server.url}{PATH}")
    assert rows == [[number, name] for number, (name,) in enumerate(ROWS, start=1)]


@pytest.mark.parametrize(
    "options",
    [
        {"headers": {"Content-Type": "application/json; charset=utf-8"}},
        {"headers": {"Content-Type": "text/plain"}},
        {"payload": "", "contentType": ""},
        {
            "payload": "",
            "contentType": "application/json",
            "headers": {"Content-Type": "application/json"},
        },
    ],
    ids=["json-content-type", "text-content-type", "empty-payload-hash", "json-payload-hash"],
)
def test_the_npm_hawk_client_is_served_however_it_signs_a_get(server, things, npm_hawk, options):
    answer = npm_hawk(f"{server.url}{PATH}", make_client(), **options)
    assert answer["status"] == 200, answer["body"]
    assert answer["verified"], answer["verifyError"]


def test_the_npm_hawk_client_behind_a_proxy_follows_next_on_the_public_port(
    server, things, npm_hawk
):
    client = make_client()
    answer = npm_hawk(
        f"{server.url}{PATH}",
        client,
        signedUrl=f"{PROXY_ORIGIN}{PATH}",
        headers=PROXY_HEADERS,
    )
    assert answer["status"] == 200, answer["body"]
    assert answer["verified"], answer["verifyError"]
    assert (
        without_version(json.loads(answer["body"])["next"])
        == f"{PROXY_ORIGIN}{PATH}?orientation=tabular&next-id=3"
    )


def test_the_npm_hawk_client_verifies_the_server_time_of_a_stale_timestamp(
    server, things, npm_hawk
):
    answer = npm_hawk(f"{server.url}{PATH}", make_client(), timestamp=int(time.time()) - 3600)
    assert answer["status"] == 401
    assert "seconds away" in json.loads(answer["body"])["error"]
    # The WWW-Authenticate header's ts and tsm verified; a refusal carries no
    # Server-Authorization.
    assert answer["verifyError"] == "Missing Server-Authorization header"


def test_the_npm_hawk_client_with_a_wrong_key_gets_the_one_401_message(server, things, npm_hawk):
    client = make_client()
    client.key = "a-key-the-service-does-not-know"
    answer = npm_hawk(f"{server.url}{PATH}", client)
    assert answer["status"] == 401
    assert json.loads(answer["body"]) == {
        "error": "HAWK id is unknown or its MAC does not match the request"
    }


@pytest.mark.skipif(
    Path(sys.prefix).resolve() != (PROJECT_DIR / ".venv").resolve(),
    reason="dev.py runs the service from the project's .venv",
)
def test_the_npm_hawk_clients_default_get_is_served_by_the_run_command(things, npm_hawk, tmp_path):
    """The field case itself: the npm client's GET (no Content-Type, no hash) against
    ``dev.py run``, whose development server reports ``text/plain`` for it."""
    environment = service_environment(tmp_path, ALLOWED_HOSTS="127.0.0.1")
    with run_command(environment, tmp_path / "run.log") as url:
        answer = npm_hawk(f"{url}{PATH}", make_client())
    assert answer["status"] == 200, answer["body"]
    assert answer["verified"], answer["verifyError"]
    assert json.loads(answer["body"])["values"] == [[1, "a"], [2, "b"], [3, "c"]]
