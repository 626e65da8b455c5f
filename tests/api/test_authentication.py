"""HAWK authentication, scopes and the error answers, through Django's test client."""

import random
import string
import time

import pytest
import requests
from mohawk.exc import MisComputedContentHash

from tests.api.builders import make_client, sign, without_version

HOST = "http://testserver"
STRUCTURE = "/api/v1/table-structure/acme.things/L0"


@pytest.fixture
def things(tables) -> str:
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",)])
    return STRUCTURE


def send(client, path, signed, **extra):
    return client.get(path, headers=signed.headers, **extra)


def assert_refused(response, status: int, words: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"]
    assert not response.has_header("Server-Authorization")


def test_a_request_signed_like_data_flow_is_answered_and_the_answer_is_signed(client, things):
    caller = make_client()
    signed = sign(caller, f"{HOST}{things}")
    response = send(client, things, signed)
    assert response.status_code == 200
    assert signed.verifies(
        response.content, response["Content-Type"], response["Server-Authorization"]
    )


def test_a_tampered_answer_does_not_verify(client, things):
    signed = sign(make_client(), f"{HOST}{things}")
    response = send(client, things, signed)
    with pytest.raises(MisComputedContentHash):
        signed.verifies(
            response.content + b" ", response["Content-Type"], response["Server-Authorization"]
        )


def test_a_request_without_authorization_is_refused_with_a_hawk_challenge(client, things):
    response = client.get(things)
    assert_refused(response, 401, "credentials were not provided")
    assert response["WWW-Authenticate"] == "Hawk"


def test_another_authorization_scheme_counts_as_no_credentials(client, things):
    response = client.get(things, headers={"Authorization": "Bearer abc"})
    assert_refused(response, 401, "credentials were not provided")
    assert response["WWW-Authenticate"] == "Hawk"


@pytest.mark.parametrize(
    "header, words",
    [
        ('Hawk id="a", ts="1", nonce="n", mac="m", color="red"', "Unknown Hawk key"),
        ('Hawk id="a", ts="1", nonce="n"', "missing mac"),
        ('Hawk id="a" ts="1"', "Couldn't parse"),
        ('Hawk id="a", ts="soon", nonce="n", mac="m"', "ts is not a Unix time"),
        ("Hawk", "Malformed HAWK Authorization header"),
        ('Hawk id="a", id="b", ts="1", nonce="n", mac="m"', "Duplicate key"),
    ],
)
def test_a_malformed_hawk_header_answers_400_naming_the_fault(client, things, header, words):
    response = client.get(things, headers={"Authorization": header})
    assert_refused(response, 400, words)


def hawk_log(caplog) -> str:
    (record,) = [record for record in caplog.records if record.name == "api.hawk"]
    return record.getMessage()


def test_an_unknown_id_and_a_wrong_key_get_one_answer_and_the_log_tells_them_apart(
    client, things, caplog
):
    stranger = make_client()
    unknown, unknown_id = sign(stranger, f"{HOST}{things}"), stranger.id
    stranger.delete()
    impostor = make_client()
    impostor.key = "not-the-key-that-is-stored-here"
    wrong_key = sign(impostor, f"{HOST}{things}")

    first = send(client, things, unknown)
    unknown_log = hawk_log(caplog)
    caplog.clear()
    second = send(client, things, wrong_key)
    wrong_key_log = hawk_log(caplog)

    for response in (first, second):
        assert_refused(response, 401, "HAWK id is unknown or its MAC does not match")
        assert response["WWW-Authenticate"] == "Hawk"
    assert first.content == second.content
    assert f"{unknown_id!r}: unknown id" in unknown_log
    assert f"{impostor.id!r}: MAC does not match GET {HOST}{things}" in wrong_key_log
    # mohawk's own messages hold the MACs; they stay out of the logs.
    assert "ours" not in unknown_log + wrong_key_log


def test_a_signature_for_another_url_answers_401(client, things):
    signed = sign(make_client(), f"{HOST}/api/v1/table-structure/acme.things/L1")
    assert_refused(send(client, things, signed), 401, "MAC does not match")


def test_a_signature_for_another_host_answers_401(client, things):
    signed = sign(make_client(), f"http://elsewhere.example{things}")
    assert_refused(send(client, things, signed), 401, "MAC does not match")


def test_a_body_that_does_not_match_its_signed_hash_answers_401(client, things):
    signed = sign(make_client(), f"{HOST}{things}", content="{}", content_type="application/json")
    response = client.generic(
        "GET", things, data='{"x": 1}', content_type="application/json", headers=signed.headers
    )
    assert_refused(response, 401, "payload hash does not match")


def test_a_body_that_matches_its_signed_hash_is_accepted(client, things):
    body = '{"x": 1}'
    signed = sign(make_client(), f"{HOST}{things}", content=body, content_type="application/json")
    response = client.generic(
        "GET", things, data=body, content_type="application/json", headers=signed.headers
    )
    assert response.status_code == 200


def test_a_replayed_request_answers_401(client, things):
    signed = sign(make_client(), f"{HOST}{things}")
    assert send(client, things, signed).status_code == 200
    assert_refused(send(client, things, signed), 401, "nonce has already been used")


def test_the_same_nonce_from_two_clients_is_not_a_replay(client, things):
    first = sign(make_client(), f"{HOST}{things}", nonce="shared-nonce")
    second = sign(make_client(), f"{HOST}{things}", nonce="shared-nonce")
    assert send(client, things, first).status_code == 200
    assert send(client, things, second).status_code == 200


def test_a_stale_timestamp_answers_401_with_the_server_time(client, things):
    signed = sign(make_client(), f"{HOST}{things}", _timestamp=int(time.time()) - 3600)
    response = send(client, things, signed)
    assert_refused(response, 401, "more than 60 seconds away")
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Hawk ts=")
    assert 'tsm="' in challenge


def test_a_timestamp_in_the_future_beyond_the_skew_answers_401(client, things):
    signed = sign(make_client(), f"{HOST}{things}", _timestamp=int(time.time()) + 120)
    assert_refused(send(client, things, signed), 401, "seconds away")


def test_the_skew_setting_widens_the_accepted_window(client, things, settings):
    settings.HAWK_SKEW_SECONDS = 600
    signed = sign(make_client(), f"{HOST}{things}", _timestamp=int(time.time()) - 300)
    assert send(client, things, signed).status_code == 200


def test_the_skew_setting_narrows_the_accepted_window(client, things, settings):
    settings.HAWK_SKEW_SECONDS = 5
    signed = sign(make_client(), f"{HOST}{things}", _timestamp=int(time.time()) - 30)
    assert_refused(send(client, things, signed), 401, "more than 5 seconds away")


def test_a_client_without_the_endpoint_scope_gets_a_signed_403(client, things):
    caller = make_client(scopes=["table_data", "list_dit_baci"])
    signed = sign(caller, f"{HOST}{things}")
    response = send(client, things, signed)
    assert response.status_code == 403
    assert response.json() == {"error": "This client's scopes do not include table_structure"}
    assert signed.verifies(
        response.content, response["Content-Type"], response["Server-Authorization"]
    )


@pytest.mark.parametrize("scopes", [["table_structure"], ["*"], ["list_dit_baci", "*"]])
def test_a_client_with_the_scope_or_a_star_is_served(client, things, scopes):
    response = send(client, things, sign(make_client(scopes=scopes), f"{HOST}{things}"))
    assert response.status_code == 200


def test_a_client_with_no_scopes_is_refused(client, things):
    response = send(client, things, sign(make_client(scopes=[]), f"{HOST}{things}"))
    assert response.status_code == 403


def test_errors_after_authentication_are_signed(client, tables):
    tables.create("acme.things", "flat", {"name": "text"}, [("a",)], with_id=False)
    caller = make_client()
    for path, status in [
        ("/api/v1/table-data/acme.things/missing", 404),
        ("/api/v1/table-data/acme.things/flat", 422),
        ("/api/v1/table-data/acme.things/flat?orientation=sideways", 400),
    ]:
        signed = sign(caller, f"{HOST}{path}")
        response = send(client, path, signed)
        assert response.status_code == status
        assert "error" in response.json()
        assert signed.verifies(
            response.content, response["Content-Type"], response["Server-Authorization"]
        )


def via_proxy(client, path, signed):
    """GET ``path`` as a TLS-terminating proxy for https://data.example.org passes it on."""
    proxy_headers = {"X-Forwarded-Host": "data.example.org", "X-Forwarded-Proto": "https"}
    return client.get(path, headers={**signed.headers, **proxy_headers})


def test_behind_a_trusted_proxy_the_public_url_is_signed_and_linked(client, tables, settings):
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["data.example.org"]
    settings.PAGINATION_SIZE = 1
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",)])
    path = "/api/v1/table-data/acme.things/L0?orientation=records"
    response = via_proxy(client, path, sign(make_client(), f"https://data.example.org{path}"))
    assert response.status_code == 200
    assert without_version(response.json()["next"]) == (
        "https://data.example.org/api/v1/table-data/acme.things/L0?orientation=records&next-id=2"
    )


def test_forwarded_headers_are_ignored_unless_trusted(client, things, settings):
    settings.ALLOWED_HOSTS = ["testserver", "data.example.org"]
    response = via_proxy(client, things, sign(make_client(), f"https://data.example.org{things}"))
    assert_refused(response, 401, "MAC does not match")


def test_every_error_status_through_a_real_server(live_server, tables):
    """The same answers over real HTTP, signed by a client the way data-flow signs."""
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    tables.create("acme.things", "flat", {"name": "text"}, [("a",)], with_id=False)
    caller = make_client(scopes=["table_data"])
    base = f"{live_server.url}/api/v1"

    def get(path: str, headers: dict) -> requests.Response:
        return requests.get(f"{base}{path}", headers=headers, timeout=30)

    def signed(path: str, **options):
        return sign(caller, f"{base}{path}", **options)

    replayed = signed("/table-data/acme.things/L0")
    assert get("/table-data/acme.things/L0", replayed.headers).status_code == 200
    refusals = [
        (get("/table-data/acme.things/L0", {}), 401, "credentials were not provided"),
        (get("/table-data/acme.things/L0", {"Authorization": "Hawk id=x"}), 400, "Malformed"),
        (
            get("/table-data/acme.things/L0", signed("/table-data/acme.things/L1").headers),
            401,
            "MAC does not match",
        ),
        (get("/table-data/acme.things/L0", replayed.headers), 401, "nonce has already been used"),
        (
            get(
                "/table-data/acme.things/L0",
                signed("/table-data/acme.things/L0", _timestamp=int(time.time()) - 600).headers,
            ),
            401,
            "seconds away",
        ),
    ]
    for response, status, words in refusals:
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json"
        assert words in response.json()["error"]
        assert "Server-Authorization" not in response.headers
        if status == 401:
            assert response.headers["WWW-Authenticate"].startswith("Hawk")

    for path, status in [
        ("/table-structure/acme.things/L0", 403),
        ("/table-data/acme.things/missing", 404),
        ("/table-data/pg_catalog/pg_class", 404),
        ("/table-data/acme.things/flat", 422),
        ("/table-data/acme.things/L0?next-id=x", 400),
    ]:
        request = signed(path)
        response = get(path, request.headers)
        assert response.status_code == status
        assert "error" in response.json()
        assert request.verifies(
            response.content,
            response.headers["Content-Type"],
            response.headers["Server-Authorization"],
        )


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "text/plain", "", None]
)
def test_a_get_without_body_or_hash_is_authenticated_by_its_mac_whatever_its_content_type(
    client, things, content_type
):
    signed = sign(make_client(), f"{HOST}{things}", hash_payload=False)
    assert "hash=" not in signed.headers["Authorization"]
    headers = signed.headers if content_type is None else {"Content-Type": content_type}
    response = client.get(things, headers={**signed.headers, **headers})
    assert response.status_code == 200
    assert signed.verifies(
        response.content, response["Content-Type"], response["Server-Authorization"]
    )


def test_a_get_without_hash_still_needs_a_matching_mac(client, things):
    signed = sign(
        make_client(), f"{HOST}/api/v1/table-structure/acme.things/L1", hash_payload=False
    )
    response = client.get(things, headers={**signed.headers, "Content-Type": "text/plain"})
    assert_refused(response, 401, "MAC does not match")


def test_a_sent_hash_is_checked_against_the_content_type_sent(client, things):
    signed = sign(make_client(), f"{HOST}{things}", content_type="")
    response = client.get(things, headers={**signed.headers, "Content-Type": "application/json"})
    assert_refused(response, 401, "payload hash does not match")


def test_a_sent_hash_ignores_content_type_parameters_as_hawk_does(client, things):
    signed = sign(make_client(), f"{HOST}{things}", content_type="application/json")
    headers = {**signed.headers, "Content-Type": "Application/JSON; charset=utf-8"}
    assert client.get(things, headers=headers).status_code == 200


def test_a_body_sent_without_a_hash_is_refused(client, things):
    signed = sign(make_client(), f"{HOST}{things}", hash_payload=False)
    response = client.generic(
        "GET", things, data='{"x": 1}', content_type="application/json", headers=signed.headers
    )
    assert_refused(response, 401, "no payload hash but the request has a body")


@pytest.mark.parametrize(
    "timestamp",
    [
        "9" * 300,
        "1" * 5000,
        "-1700000000",
        "1.7e9",
        "0x65",
        "\u00b2\u00b3",  # superscript digits: str.isdigit() says yes, int() says no
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        " 1700000000",
        "",
    ],
)
def test_an_absurd_timestamp_answers_400_or_401_never_500(client, things, timestamp):
    header = f'Hawk id="client-x", ts="{timestamp}", nonce="n1", mac="bWFj"'
    response = client.get(things, headers={"Authorization": header})
    assert response.status_code in (400, 401)
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.parametrize("timestamp", [10**15 - 1, 10**300, 10**400, -(10**20), 1])
def test_an_absurd_timestamp_with_a_valid_mac_answers_400_or_401(client, things, timestamp):
    signed = sign(make_client(), f"{HOST}{things}", _timestamp=timestamp)
    response = send(client, things, signed)
    assert response.status_code in (400, 401)
    assert response["Content-Type"] == "application/json"
    if response.status_code == 401:
        assert "seconds away from the server's time" in response.json()["error"]
        assert response["WWW-Authenticate"].startswith("Hawk ts=")


MALFORMED_HEADERS = [
    'Hawk id="a, ts="1", nonce="n", mac="m"',
    "Hawk id='a', ts='1', nonce='n', mac='m'",
    'Hawk id="a", ts="1", nonce="n", mac="m", mac="m"',
    'Hawk id="a", ts="1", ts="2", nonce="n", mac="m"',
    'Hawk id="a\\"b", ts="1", nonce="n", mac="m"',
    'Hawk id="", ts="1", nonce="n", mac="m"',
    'Hawk id="a",, ts="1", nonce="n", mac="m"',
    "Hawk id=a, ts=1, nonce=n, mac=m",
    'Hawk id="\u00e9", ts="1", nonce="n", mac="m"',
    'Hawk id="a", ts="1", nonce="n", mac="m"; x',
    'Hawk id="a", ts="1", nonce="n", mac="m", hash=""',
    "Hawk ,,,,",
    'Hawk id="' + "a" * 5000 + '", ts="1", nonce="n", mac="m"',
    'Hawk id="a" ts="1" nonce="n" mac="m"',
    'Hawk Hawk id="a", ts="1", nonce="n", mac="m"',
]


@pytest.mark.parametrize("header", MALFORMED_HEADERS)
def test_a_badly_quoted_or_repeated_header_answers_400_or_401_in_json(client, things, header):
    response = client.get(things, headers={"Authorization": header})
    assert response.status_code in (400, 401)
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_random_damage_to_a_valid_header_never_answers_500(client, things):
    """Characters of a signed header replaced, doubled or dropped at random (seeded)."""
    generator = random.Random(20261129)
    header = sign(make_client(), f"{HOST}{things}").headers["Authorization"]
    alphabet = ' ",=\\;:Hawk\u00e9\t' + string.ascii_letters + string.digits
    statuses = set()
    for _ in range(300):
        damaged = list(header)
        for _ in range(generator.randint(1, 4)):
            position = generator.randrange(len(damaged))
            action = generator.choice(("replace", "double", "drop"))
            if action == "replace":
                damaged[position] = generator.choice(alphabet)
            elif action == "double":
                damaged.insert(position, damaged[position])
            else:
                del damaged[position]
        response = client.get(things, headers={"Authorization": "".join(damaged)})
        statuses.add(response.status_code)
        assert response.status_code in (200, 400, 401), "".join(damaged)
        assert response["Content-Type"] == "application/json"
    assert {400, 401} <= statuses
