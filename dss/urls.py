from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from dss import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthcheck/", views.healthcheck, name="healthcheck"),
    path("admin/", admin.site.urls),
    path("", include("api.urls")),
]

if settings.OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
