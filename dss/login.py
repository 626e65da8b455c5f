"""Who may log in, the admin's login page when single sign-on is on, and signing out.

With OpenID Connect on (``OIDC_RP_CLIENT_ID``), a person enters when the provider vouches
for them and they are one of the allowed people: an e-mail address in one of
``OIDC_ALLOWED_EMAIL_DOMAINS``, and/or the claim ``OIDC_REQUIRED_CLAIM`` (``name=value``;
a list claim holding the value counts). Both set: both must hold. A new person's user is
created at first login, without a password and without staff status.

Signing out (a POST with its CSRF token) ends the service's session and, when the provider's
end-session endpoint is set (``OIDC_OP_LOGOUT_ENDPOINT``), the provider's too: the person is
sent there (OpenID Connect RP-Initiated Logout) and comes back to the signed-out page.
Without it the provider's session stays, and the next login is silent.
"""

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


def email_domain_allowed(email: str, domains: list[str]) -> bool:
    """True when ``email`` is ``someone@<one of domains>`` (case-insensitive)."""
    _, at, domain = (email or "").rpartition("@")
    return bool(at) and domain.lower() in domains


def claim_holds(claims: dict[str, Any], requirement: str) -> bool:
    """True when ``claims`` has ``requirement``'s ``name=value``: the value itself, or a
    list that holds it."""
    name, _, value = requirement.partition("=")
    held = claims.get(name.strip())
    if isinstance(held, list):
        return value.strip() in [str(item) for item in held]
    return held is not None and str(held) == value.strip()


class AllowedPeopleBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, letting in only the people the settings allow."""

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        if not super().verify_claims(claims):
            return False
        domains = settings.OIDC_ALLOWED_EMAIL_DOMAINS
        if domains and not (
            claims.get("email_verified", True) is not False
            and email_domain_allowed(claims.get("email", ""), domains)
        ):
            return False
        requirement = settings.OIDC_REQUIRED_CLAIM
        return not requirement or claim_holds(claims, requirement)

    def create_user(self, claims: dict[str, Any]):
        user = super().create_user(claims)
        user.first_name = str(claims.get("given_name", ""))[:150]
        user.last_name = str(claims.get("family_name", ""))[:150]
        user.set_unusable_password()
        user.save()
        return user


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin's login page with single sign-on on: no password form. A visitor goes to the
    provider (and comes back to ``next``); a logged-in person without staff status is refused."""
    if request.user.is_authenticated:
        if request.user.is_active and request.user.is_staff:
            return redirect(request.GET.get("next") or reverse("admin:index"))
        raise PermissionDenied("The administration needs staff status.")
    query = urlencode({"next": request.GET.get("next") or reverse("admin:index")})
    return redirect(f"{reverse('oidc_authentication_init')}?{query}")


def provider_logout_url(request: HttpRequest) -> str:
    """Where signing out sends a person (mozilla-django-oidc's ``OIDC_OP_LOGOUT_URL_METHOD``,
    called before the session ends): the provider's end-session endpoint, with the id token
    of the login (``id_token_hint``, kept by ``OIDC_STORE_ID_TOKEN``), this service's
    ``client_id`` and the signed-out page as ``post_logout_redirect_uri`` (an absolute URL,
    which the provider must have registered for the client)."""
    query = {
        "client_id": settings.OIDC_RP_CLIENT_ID,
        "post_logout_redirect_uri": request.build_absolute_uri(reverse("signed_out")),
    }
    id_token = request.session.get("oidc_id_token")
    if id_token:
        query["id_token_hint"] = id_token
    endpoint = settings.OIDC_OP_LOGOUT_ENDPOINT
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"
