"""API routes: the HAWK-authenticated endpoints under /api/v1/ and the OpenAPI schema."""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from api import views
from api.dataset_endpoints import DATASET_ENDPOINTS, POSTCODE_LOOKUPS

# Schema and table names may hold any character but "/".
TABLE_PATH = "<str:schema>/<str:table>"
# The API's description is public: no HAWK, no scope (every other API view needs both).
PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny]}

urlpatterns = [
    path(
        f"api/v1/table-structure/{TABLE_PATH}",
        views.TableStructureView.as_view(),
        name="table-structure",
    ),
    path(f"api/v1/table-data/{TABLE_PATH}", views.TableDataView.as_view(), name="table-data"),
    *(
        path(
            f"api/v1/{endpoint.path}",
            views.DatasetView.as_view(endpoint=endpoint),
            name=endpoint.scope,
        )
        for endpoint in DATASET_ENDPOINTS
    ),
    *(
        path(
            f"api/v1/{lookup.path}",
            views.PostcodeLookupView.as_view(scope=lookup.scope),
            name=lookup.scope,
        )
        for lookup in POSTCODE_LOOKUPS
    ),
    path("api/schema/", SpectacularAPIView.as_view(**PUBLIC), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", **PUBLIC), name="api-docs"),
    # Last: any other path under /api/ answers a JSON 404, with DEBUG on too (Django's own
    # 404 page is HTML).
    re_path(r"^api/", views.unknown_endpoint, name="unknown-endpoint"),
]
