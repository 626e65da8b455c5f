"""Behind a proxy: the public scheme, host and port from the X-Forwarded-* headers make the
URL a HAWK MAC is checked against and every ``next`` link (DSS_TRUST_FORWARDED_HEADERS)."""

import pytest

from tests.api.builders import make_client, sign, without_version

PUBLIC = "dss.example.com"
PATH = "/api/v1/table-data/acme.things/L0?orientation=records"


@pytest.fixture
def trusted(settings) -> None:
    settings.TRUST_FORWARDED_HEADERS = True
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = [PUBLIC, "testserver"]
    settings.PAGINATION_SIZE = 1


@pytest.fixture
def things(tables) -> None:
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",)])


def via_proxy(client, signed_url: str, **forwarded: str):
    """GET ``PATH`` signed for ``signed_url``, with ``forwarded`` as X-Forwarded-* headers
    (``proto="https"`` becomes ``X-Forwarded-Proto: https``)."""
    signed = sign(make_client(), signed_url)
    headers = {f"X-Forwarded-{name.title()}": value for name, value in forwarded.items()}
    response = client.get(PATH, headers={**signed.headers, **headers})
    if response.has_header("Server-Authorization"):
        assert signed.verifies(
            response.content, response["Content-Type"], response["Server-Authorization"]
        )
    return response


def next_link(response) -> str:
    assert response.status_code == 200, response.content
    return without_version(response.json()["next"])


NEXT = "/api/v1/table-data/acme.things/L0?orientation=records&next-id=2"


def test_the_forwarded_port_is_part_of_the_signed_url_and_of_next(client, trusted, things):
    response = via_proxy(
        client, f"https://{PUBLIC}:8443{PATH}", proto="https", host=PUBLIC, port="8443"
    )
    assert next_link(response) == f"https://{PUBLIC}:8443{NEXT}"


def test_a_port_inside_the_forwarded_host_is_kept(client, trusted, things):
    response = via_proxy(
        client, f"https://{PUBLIC}:8443{PATH}", proto="https", host=f"{PUBLIC}:8443"
    )
    assert next_link(response) == f"https://{PUBLIC}:8443{NEXT}"


def test_a_port_inside_the_forwarded_host_wins_over_the_port_header(client, trusted, things):
    response = via_proxy(
        client, f"https://{PUBLIC}:8443{PATH}", proto="https", host=f"{PUBLIC}:8443", port="443"
    )
    assert next_link(response) == f"https://{PUBLIC}:8443{NEXT}"


def test_the_forwarded_port_is_added_to_the_host_header_when_no_host_is_forwarded(
    client, trusted, things
):
    signed = sign(make_client(), f"https://{PUBLIC}:8443{PATH}")
    headers = {"Host": PUBLIC, "X-Forwarded-Proto": "https", "X-Forwarded-Port": "8443"}
    response = client.get(PATH, headers={**signed.headers, **headers})
    assert next_link(response) == f"https://{PUBLIC}:8443{NEXT}"


@pytest.mark.parametrize(
    "proto, port, signed_origin",
    [
        ("https", "443", f"https://{PUBLIC}"),
        ("https", "443", f"https://{PUBLIC}:443"),
        ("http", "80", f"http://{PUBLIC}"),
    ],
)
def test_a_default_port_is_left_out_of_next_as_clients_leave_it_out(
    client, trusted, things, proto, port, signed_origin
):
    response = via_proxy(client, f"{signed_origin}{PATH}", proto=proto, host=PUBLIC, port=port)
    assert next_link(response) == f"{proto}://{PUBLIC}{NEXT}"


def test_a_default_port_inside_the_forwarded_host_is_left_out_of_next(client, trusted, things):
    response = via_proxy(client, f"https://{PUBLIC}{PATH}", proto="https", host=f"{PUBLIC}:443")
    assert next_link(response) == f"https://{PUBLIC}{NEXT}"


def test_of_several_forwarded_values_the_first_is_trusted(client, trusted, things):
    response = via_proxy(
        client,
        f"https://{PUBLIC}:8443{PATH}",
        proto="https, http",
        host=f"{PUBLIC}, internal.proxy",
        port="8443,80",
    )
    assert next_link(response) == f"https://{PUBLIC}:8443{NEXT}"


@pytest.mark.parametrize(
    "forwarded, words",
    [
        ({"port": "https"}, "X-Forwarded-Port must be a port number, not 'https'"),
        ({"port": "70000"}, "X-Forwarded-Port must be a port number"),
        ({"port": "\u0668\u0664\u0664\u0663"}, "X-Forwarded-Port must be a port number"),
        ({"proto": "ftp"}, "X-Forwarded-Proto must be http or https, not 'ftp'"),
        ({"host": "not allowed.example"}, "X-Forwarded-Host is not a host name"),
        ({"host": "elsewhere.example, dss.example.com"}, "X-Forwarded-Host"),
        ({"host": ", dss.example.com"}, "X-Forwarded-Host is not a host name: ''"),
    ],
)
def test_an_unusable_forwarded_value_answers_400_in_json_naming_the_header(
    client, trusted, things, forwarded, words
):
    response = via_proxy(client, f"https://{PUBLIC}{PATH}", **forwarded)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"]


def test_a_host_that_is_not_allowed_answers_400_in_json(client, things, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get(PATH, headers={"Host": "elsewhere.example"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "The host in the Host header is not served here (ALLOWED_HOSTS)"
    }


def test_forwarded_headers_are_ignored_unless_trusted(client, things, settings):
    settings.ALLOWED_HOSTS = ["testserver", PUBLIC]
    response = via_proxy(
        client, f"https://{PUBLIC}:8443{PATH}", proto="https", host=PUBLIC, port="8443"
    )
    assert response.status_code == 401
    assert "MAC does not match" in response.json()["error"]
