"""Who may log in: the local login form without OpenID Connect settings, and with them only
the people the settings allow, with no password door left; signing out with them ends the
provider's session too when its end-session endpoint is set. The whole single sign-on flow,
against a real provider, is in tests/uploads/test_browser_journey.py."""

import json
import sys
import textwrap
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model

from dss.login import AllowedPeopleBackend, claim_holds, email_domain_allowed
from tests.test_configuration import (
    UNUSED_DATABASE,
    assert_stops_with_one_line_naming,
    read_settings,
    run,
)

PROVIDER = "http://127.0.0.1:9/"
OIDC = {
    "OIDC_RP_CLIENT_ID": "dss",
    "OIDC_RP_CLIENT_SECRET": "secret",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": f"{PROVIDER}auth",
    "OIDC_OP_TOKEN_ENDPOINT": f"{PROVIDER}token",
    "OIDC_OP_USER_ENDPOINT": f"{PROVIDER}me",
    "OIDC_OP_JWKS_ENDPOINT": f"{PROVIDER}jwks",
    "OIDC_ALLOWED_EMAIL_DOMAINS": "Example.gov.uk, @other.org",
}


@pytest.fixture
def production(service_environment) -> dict[str, str]:
    return {**service_environment, "SECRET_KEY": "s" * 50, "DATABASE_URL": UNUSED_DATABASE}


@pytest.mark.parametrize(
    "email, allowed",
    [
        ("ann@example.gov.uk", True),
        ("Ann@EXAMPLE.GOV.UK", True),
        ("bob@other.org", True),
        ("eve@example.gov.uk.evil.com", False),
        ("eve@sub.example.gov.uk", False),
        ("example.gov.uk", False),
        ("", False),
    ],
)
def test_only_addresses_in_the_allowed_domains_pass(email, allowed):
    assert email_domain_allowed(email, ["example.gov.uk", "other.org"]) is allowed


@pytest.mark.parametrize(
    "claims, allowed",
    [
        ({"groups": ["readers", "data-uploaders"]}, True),
        ({"groups": "data-uploaders"}, True),
        ({"groups": ["readers"]}, False),
        ({"groups": "data-uploaders-old"}, False),
        ({}, False),
    ],
)
def test_a_required_claim_passes_as_a_value_or_in_a_list(claims, allowed):
    assert claim_holds(claims, "groups=data-uploaders") is allowed


@pytest.fixture
def oidc_settings(settings):
    for name, value in OIDC.items():
        setattr(settings, name, value)
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_ALLOWED_EMAIL_DOMAINS = ["example.gov.uk"]
    settings.OIDC_REQUIRED_CLAIM = ""
    return settings


def test_the_backend_lets_in_an_allowed_domain_and_no_other(oidc_settings):
    backend = AllowedPeopleBackend()

    assert backend.verify_claims({"email": "ann@example.gov.uk", "email_verified": True})
    assert not backend.verify_claims({"email": "ann@elsewhere.org"})
    assert not backend.verify_claims({"email": "ann@example.gov.uk", "email_verified": False})


def test_with_domains_and_a_claim_both_must_hold(oidc_settings):
    oidc_settings.OIDC_REQUIRED_CLAIM = "groups=data-uploaders"
    backend = AllowedPeopleBackend()

    assert backend.verify_claims({"email": "ann@example.gov.uk", "groups": ["data-uploaders"]})
    assert not backend.verify_claims({"email": "ann@example.gov.uk", "groups": []})
    assert not backend.verify_claims({"email": "ann@other.org", "groups": ["data-uploaders"]})


@pytest.mark.django_db
def test_a_new_person_becomes_a_user_without_password_or_staff_status(oidc_settings):
    user = AllowedPeopleBackend().create_user(
        {"email": "ann@example.gov.uk", "given_name": "Ann", "family_name": "Analyst"}
    )

    saved = get_user_model().objects.get(pk=user.pk)
    assert (saved.email, saved.first_name, saved.last_name) == (
        "ann@example.gov.uk",
        "Ann",
        "Analyst",
    )
    assert not saved.has_usable_password()
    assert not saved.is_staff and not saved.is_superuser


def test_without_oidc_settings_the_login_is_django_s_own_form(production):
    found = read_settings(production, "AUTHENTICATION_BACKENDS", "LOGIN_URL", "OIDC_ENABLED")

    assert found == {
        "AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend"],
        "LOGIN_URL": "login",
        "OIDC_ENABLED": False,
    }


def test_with_oidc_settings_no_password_backend_is_left(production):
    found = read_settings(
        {**production, **OIDC},
        "AUTHENTICATION_BACKENDS",
        "LOGIN_URL",
        "OIDC_ALLOWED_EMAIL_DOMAINS",
    )

    assert found == {
        "AUTHENTICATION_BACKENDS": ["dss.login.AllowedPeopleBackend"],
        "LOGIN_URL": "oidc_authentication_init",
        "OIDC_ALLOWED_EMAIL_DOMAINS": ["example.gov.uk", "other.org"],
    }


def test_with_oidc_on_the_admin_login_page_has_no_password_form(production):
    code = (
        "import django; django.setup(); from django.test import Client; "
        "r = Client().get('/admin/login/?next=/admin/'); print(r.status_code, r['Location'])"
    )
    result = run(
        [sys.executable, "-c", code],
        {
            **production,
            **OIDC,
            "DJANGO_SETTINGS_MODULE": "dss.settings",
            "ALLOWED_HOSTS": "testserver",
        },
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["302", "/oidc/authenticate/?next=%2Fadmin%2F"]


@pytest.mark.parametrize(
    "missing", ["OIDC_RP_CLIENT_SECRET", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_JWKS_ENDPOINT"]
)
def test_oidc_without_an_endpoint_or_the_secret_stops_the_start_naming_it(production, missing):
    environment = {**production, **OIDC}
    del environment[missing]

    result = run([sys.executable, "manage.py", "check"], environment)

    assert_stops_with_one_line_naming(result, missing)


def test_oidc_without_anyone_allowed_stops_the_start(production):
    environment = {**production, **OIDC}
    del environment["OIDC_ALLOWED_EMAIL_DOMAINS"]

    result = run([sys.executable, "manage.py", "check"], environment)

    assert_stops_with_one_line_naming(result, "OIDC_ALLOWED_EMAIL_DOMAINS or OIDC_REQUIRED_CLAIM")


def test_a_required_claim_without_a_value_stops_the_start(production):
    environment = {**production, **OIDC, "OIDC_REQUIRED_CLAIM": "groups"}

    result = run([sys.executable, "manage.py", "check"], environment)

    assert_stops_with_one_line_naming(result, "OIDC_REQUIRED_CLAIM")


# Some providers' end-session URLs carry a query of their own: it is kept.
LOGOUT_ENDPOINT = f"{PROVIDER}session/end?tenant=trade"
# A service process signs a person in (their login kept an id token), then posts the header's
# "Sign out" form without its CSRF token, then with it, then asks for an upload page.
SIGN_OUT = textwrap.dedent(
    """
    import json, re, django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    user = get_user_model().objects.create(username="ann", email="ann@example.gov.uk")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    session = client.session
    session["oidc_id_token"] = "header.payload.signature"
    session.save()
    page = client.get("/upload/")
    form = re.search(r'<form method="post" action="([^"]+)">.*?value="([^"]+)"', page.text, re.S)
    refused = client.post(form[1])
    signed_out = client.post(form[1], {"csrfmiddlewaretoken": form[2]})
    after = client.get("/upload/")
    page = client.get("/signed-out/")
    said = " ".join(re.sub("<[^>]+>", " ", page.text).split())
    print(json.dumps({
        "page": [page.status_code, said],
        "form": form[1],
        "without_token": refused.status_code,
        "status": signed_out.status_code,
        "location": signed_out["Location"],
        "after": [after.status_code, after["Location"]],
    }))
    """
)


def sign_out(environment: dict[str, str]) -> dict:
    result = run(
        [sys.executable, "-c", SIGN_OUT],
        # The test settings: static files served from the apps' folders, uncollected.
        {
            **environment,
            "DJANGO_SETTINGS_MODULE": "dss.test_settings",
            "ALLOWED_HOSTS": "testserver",
        },
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def signed_in(production, database_url) -> dict[str, str]:
    """A service process's environment with single sign-on, on the test database."""
    return {**production, **OIDC, "DATABASE_URL": database_url, "SECURE_COOKIES": "false"}


@pytest.mark.django_db(transaction=True)
def test_signing_out_sends_the_person_to_the_provider_s_end_session_endpoint(signed_in):
    answer = sign_out({**signed_in, "OIDC_OP_LOGOUT_ENDPOINT": LOGOUT_ENDPOINT})

    assert answer["form"] == "/logout/"
    assert answer["without_token"] == 403
    assert answer["status"] == 302
    location = urlsplit(answer["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{PROVIDER}session/end"
    assert parse_qs(location.query) == {
        "tenant": ["trade"],
        "id_token_hint": ["header.payload.signature"],
        "client_id": ["dss"],
        "post_logout_redirect_uri": ["http://testserver/signed-out/"],
    }
    # The service's own session has ended.
    assert answer["after"] == [302, "/oidc/authenticate/?next=/upload/"]
    status, page = answer["page"]
    assert status == 200
    assert "You have signed out of the Data Store Service and of single sign-on." in page


ADMIN_SIGN_OUT = textwrap.dedent(
    """
    import json, django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client
    user = get_user_model().objects.create(username="ann", email="ann@example.gov.uk",
                                           is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session["oidc_id_token"] = "header.payload.signature"
    session.save()
    signed_out = client.post("/admin/logout/")
    print(json.dumps({"status": signed_out.status_code, "location": signed_out["Location"]}))
    """
)


@pytest.mark.django_db(transaction=True)
def test_admin_s_log_out_ends_the_provider_s_session_too(signed_in):
    result = run(
        [sys.executable, "-c", ADMIN_SIGN_OUT],
        {
            **signed_in,
            "OIDC_OP_LOGOUT_ENDPOINT": LOGOUT_ENDPOINT,
            "DJANGO_SETTINGS_MODULE": "dss.test_settings",
            "ALLOWED_HOSTS": "testserver",
        },
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)

    assert answer["status"] == 302
    location = urlsplit(answer["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{PROVIDER}session/end"
    assert parse_qs(location.query)["id_token_hint"] == ["header.payload.signature"]


@pytest.mark.django_db(transaction=True)
def test_without_an_end_session_endpoint_signing_out_ends_only_the_service_s_session(signed_in):
    answer = sign_out(signed_in)

    assert (answer["without_token"], answer["status"]) == (403, 302)
    assert answer["location"] == "/signed-out/"
    assert answer["after"] == [302, "/oidc/authenticate/?next=/upload/"]
    status, page = answer["page"]
    assert status == 200
    assert "Your single sign-on session is still open" in page


def test_an_end_session_endpoint_keeps_the_id_token_of_each_login(production):
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps([getattr(settings, name, None) for name in "
        "('OIDC_STORE_ID_TOKEN', 'OIDC_OP_LOGOUT_URL_METHOD', 'LOGOUT_REDIRECT_URL')]))"
    )

    def found(environment):
        result = run(
            [sys.executable, "-c", code], {**environment, "DJANGO_SETTINGS_MODULE": "dss.settings"}
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    with_endpoint = found({**production, **OIDC, "OIDC_OP_LOGOUT_ENDPOINT": LOGOUT_ENDPOINT})
    assert with_endpoint == [True, "dss.login.provider_logout_url", "signed_out"]
    assert found({**production, **OIDC}) == [None, None, "signed_out"]
