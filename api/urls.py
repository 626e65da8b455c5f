"""API routes: the HAWK-authenticated endpoints under /api/v1/ and the OpenAPI schema."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import views
from api.dataset_endpoints import DATASET_ENDPOINTS, POSTCODE_LOOKUPS

# Schema and table names may hold any character but "/".
TABLE_PATH = "<str:schema>/<str:table>"

urlpatterns = [
    path(
        f"api/v1/table-structure/{TABLE_PATH}",
        views.TableStructureView.as_view(),
        name="table-structure",
    ),
    path(f"api/v1/table-data/{TABLE_PATH}", views.TableDataView.as_view(), name="table-data"),
    *(
        path(f"api/v1/{endpoint.path}", views.dataset_view(endpoint).as_view(), name=endpoint.scope)
        for endpoint in DATASET_ENDPOINTS
    ),
    *(
        path(
            f"api/v1/{lookup.path}",
            views.postcode_lookup_view(lookup.scope).as_view(),
            name=lookup.scope,
        )
        for lookup in POSTCODE_LOOKUPS
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
