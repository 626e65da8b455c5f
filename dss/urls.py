from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dss import views
from dss.govuk_forms import LoginForm

urlpatterns = [
    path("", views.index, name="index"),
    path("healthcheck/", views.healthcheck, name="healthcheck"),
    # GOV.UK Frontend's stylesheet names its fonts and images under /assets/.
    path("assets/<path:name>", views.govuk_asset, name="govuk_asset"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("upload/", include("uploads.urls")),
]

if settings.OIDC_ENABLED:
    from mozilla_django_oidc.views import OIDCLogoutView

    from dss.login import admin_login

    urlpatterns += [
        path("admin/login/", admin_login, name="admin_login"),
        # Admin's "Log out" ends the provider's session too, as the pages' "Sign out" does.
        path("admin/logout/", OIDCLogoutView.as_view(), name="admin_logout"),
        path("login/refused/", views.login_refused, name="login_refused"),
        path("logout/", OIDCLogoutView.as_view(), name="logout"),
        path("signed-out/", views.signed_out, name="signed_out"),
        path("oidc/", include("mozilla_django_oidc.urls")),
    ]
else:
    urlpatterns += [
        path(
            "login/",
            auth_views.LoginView.as_view(
                authentication_form=LoginForm, redirect_authenticated_user=True
            ),
            name="login",
        ),
        path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    ]

urlpatterns += [
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
]
