"""The OpenAPI document at /api/schema/ and its browsable page at /api/docs/."""

import re

import pytest

from api.dataset_endpoints import DATASET_ENDPOINTS, POSTCODE_LOOKUPS


@pytest.fixture
def document(client, db) -> dict:
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def operation(document: dict, path: str) -> dict:
    return document["paths"][path]["get"]


def test_the_schema_is_openapi_3_with_the_hawk_scheme(document):
    assert document["openapi"].startswith("3.")
    scheme = document["components"]["securitySchemes"]["HAWK"]
    assert scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    assert "sha256" in scheme["description"]


def test_the_schema_describes_every_endpoint_with_its_scope_and_hawk(document):
    paths = [
        "/api/v1/table-structure/{schema}/{table}",
        "/api/v1/table-data/{schema}/{table}",
        *(f"/api/v1/{endpoint.path}" for endpoint in DATASET_ENDPOINTS),
        *(f"/api/v1/{lookup.path}" for lookup in POSTCODE_LOOKUPS),
    ]
    assert sorted(document["paths"]) == sorted(paths)
    for path in paths:
        described = operation(document, path)
        assert described["security"] == [{"HAWK": []}]
        assert "Scope `" in described["description"]
        assert set(described["responses"]) >= {"200", "400", "401", "403", "404"}


def test_paged_endpoints_document_their_parameters_and_both_page_shapes(document):
    described = operation(document, "/api/v1/table-data/{schema}/{table}")
    parameters = {parameter["name"]: parameter for parameter in described["parameters"]}
    assert set(parameters) == {"schema", "table", "orientation", "next-id", "version"}
    assert sorted(parameters["orientation"]["schema"]["enum"]) == ["records", "tabular"]
    assert parameters["orientation"]["schema"]["default"] == "tabular"
    assert parameters["next-id"]["schema"]["type"] == "integer"
    assert parameters["version"]["schema"]["type"] == "integer"
    page = described["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    shapes = document["components"]["schemas"][page.rsplit("/", 1)[1]]["oneOf"]
    names = [shape["$ref"].rsplit("/", 1)[1] for shape in shapes]
    assert names == ["TableDataTabular", "TableDataRecords"]
    tabular = document["components"]["schemas"]["TableDataTabular"]
    assert set(tabular["properties"]) == {"headers", "values", "next"}
    assert tabular["properties"]["next"]["nullable"] is True
    assert "422" in described["responses"]
    assert "410" in described["responses"]


def test_dataset_records_are_documented_with_their_served_names(document):
    baci = next(endpoint for endpoint in DATASET_ENDPOINTS if endpoint.scope == "list_dit_baci")
    record = document["components"]["schemas"]["DitBaciRecord"]
    assert list(record["properties"]) == baci.headers
    assert record["properties"]["tradeFlowValue"]["type"] == "number"


def test_errors_are_documented_as_json_objects_with_an_error(document):
    error = document["components"]["schemas"]["Error"]
    assert list(error["properties"]) == ["error"]
    assert error["properties"]["error"]["type"] == "string"
    assert error["required"] == ["error"]


def test_the_docs_page_serves_swagger_ui_from_the_service(client, db, settings):
    # Serve the apps' static folders, as collectstatic would in production.
    settings.WHITENOISE_USE_FINDERS = True
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "/api/schema/" in page
    assert "cdn." not in page
    assets = re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css))"', page)
    assert len(assets) == 3
    for asset in assets:
        assert client.get(asset).status_code == 200
