"""Who may log in, and the admin's login page when single sign-on is on.

With OpenID Connect on (``OIDC_RP_CLIENT_ID``), a person enters when the provider vouches
for them and they are one of the allowed people: an e-mail address in one of
``OIDC_ALLOWED_EMAIL_DOMAINS``, and/or the claim ``OIDC_REQUIRED_CLAIM`` (``name=value``;
a list claim holding the value counts). Both set: both must hold. A new person's user is
created at first login, without a password and without staff status.
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
