"""The dataset endpoints of SOURCES.md §2: their tables, column names, pages and lookups."""

from datetime import date
from decimal import Decimal

import pytest

from api.dataset_endpoints import DATASET_ENDPOINTS, REFERENCE_POSTCODES, camel_case
from pipelines.column_types import BY_API_NAME
from tests.api.builders import make_client, sign

SAMPLE_VALUES = {"TEXT": "x", "INTEGER": 42, "NUMERIC": Decimal("1.25"), "DATE": date(2020, 5, 1)}
SERVED_VALUES = {"TEXT": "x", "INTEGER": 42, "NUMERIC": 1.25, "DATE": "2020-05-01"}


def load(tables, endpoint, rows: int) -> None:
    columns = {name: BY_API_NAME[kind].name for name, kind in endpoint.columns}
    sample = tuple(SAMPLE_VALUES[kind] for _, kind in endpoint.columns)
    tables.create(endpoint.schema, endpoint.table, columns, [sample] * rows)


@pytest.mark.parametrize(
    "name, camel",
    [
        ("trade_flow_value", "tradeFlowValue"),
        ("local_enterprise_partnership_lep1_code", "localEnterprisePartnershipLep1Code"),
        ("_leading_and_trailing_", "leadingAndTrailing"),
        ("double__underscore", "doubleUnderscore"),
        ("year", "year"),
    ],
)
def test_camel_case_follows_the_original_rule(name, camel):
    assert camel_case(name) == camel


def test_baci_is_served_in_camel_case_without_id(hawk_get, tables):
    endpoint = next(e for e in DATASET_ENDPOINTS if e.scope == "list_dit_baci")
    load(tables, endpoint, rows=1)
    response = hawk_get("/api/v1/get-dit-baci-data/")
    assert response.json() == {
        "headers": [
            "year",
            "productCategory",
            "exporter",
            "importer",
            "tradeFlowValue",
            "quantity",
        ],
        "values": [[42, 42, 42, 42, 1.25, 1.25]],
        "next": None,
    }


def test_ons_postcodes_are_served_in_snake_case_with_id_first(hawk_get, tables):
    endpoint = next(e for e in DATASET_ENDPOINTS if e.scope == "list_ons_postcodes")
    load(tables, endpoint, rows=1)
    response = hawk_get("/api/v1/get-ons-postcodes/?orientation=records")
    (record,) = response.json()["results"]
    assert list(record)[:6] == ["id", "pcd", "pcd2", "pcds", "dointr", "doterm"]
    assert list(record)[-1] == "publication_date"
    assert len(record) == 52
    assert record["id"] == 1
    assert record["publication_date"] == "2020-05-01"


@pytest.mark.parametrize("endpoint", DATASET_ENDPOINTS, ids=lambda e: e.scope)
def test_every_dataset_endpoint_pages_its_table_to_the_end(client, tables, small_pages, endpoint):
    load(tables, endpoint, rows=3)
    caller = make_client(scopes=[endpoint.scope])
    url = f"http://testserver/api/v1/{endpoint.path}?orientation=records"
    served = []
    while url:
        signed = sign(caller, url)
        response = client.get(url.removeprefix("http://testserver"), headers=signed.headers)
        assert response.status_code == 200
        page = response.json()
        served += page["results"]
        url = page["next"]
    expected = {
        header: SERVED_VALUES[kind] for header, kind in endpoint.typed_headers if header != "id"
    }
    assert len(served) == 3
    assert all({k: v for k, v in row.items() if k != "id"} == expected for row in served)
    assert all(("id" in row) == endpoint.include_id for row in served)


def test_a_dataset_endpoint_needs_its_own_scope(hawk_get, tables):
    endpoint = next(e for e in DATASET_ENDPOINTS if e.scope == "list_dit_baci")
    load(tables, endpoint, rows=1)
    response = hawk_get("/api/v1/get-dit-baci-data/", hawk_client=make_client(["table_data"]))
    assert response.status_code == 403
    assert "list_dit_baci" in response.json()["error"]


def test_a_dataset_table_lacking_a_served_column_is_a_server_error_naming_it(hawk_get, tables):
    tables.create("dit.baci", "L1", {"year": "integer"}, [(2020,)])
    response = hawk_get("/api/v1/get-dit-baci-data/")
    assert response.status_code == 500
    assert "product_category" in response.json()["error"]


@pytest.fixture
def postcodes(tables) -> None:
    columns = {name: BY_API_NAME[kind].name for name, kind in REFERENCE_POSTCODES.columns}
    rows = [
        ("AB10 1AA", *("a",) * 10, date(1980, 1, 1), None),
        ("ZZ10 1ZZ", *("z",) * 10, date(1990, 1, 1), date(2000, 1, 1)),
    ]
    tables.create("dit.reference_postcodes", "L1", columns, rows)


@pytest.mark.parametrize("path", ["get-postcode-data", "get-dit-reference-postcode"])
@pytest.mark.parametrize(
    "asked, found", [("AB101AA", "AB10 1AA"), ("zz10 1zz", "ZZ10 1ZZ"), ("zz10 1zz  ", "ZZ10 1ZZ")]
)
def test_a_postcode_is_found_whatever_its_spaces_and_case(hawk_get, postcodes, path, asked, found):
    response = hawk_get(f"/api/v1/{path}/?postcode={asked.replace(' ', '%20')}")
    body = response.json()
    assert list(body) == ["headers", "values"]
    assert body["headers"] == REFERENCE_POSTCODES.headers
    assert body["headers"][:2] == ["postcode", "localAuthorityDistrictCode"]
    (values,) = body["values"]
    assert values[0] == found


def test_a_postcode_lookup_answers_records_too(hawk_get, postcodes):
    body = hawk_get("/api/v1/get-postcode-data/?postcode=zz101zz&orientation=records").json()
    (record,) = body["results"]
    assert record["postcode"] == "ZZ10 1ZZ"
    assert record["dateOfTermination"] == "2000-01-01"
    assert "next" not in body


def test_an_unknown_postcode_answers_no_values(hawk_get, postcodes):
    body = hawk_get("/api/v1/get-postcode-data/?postcode=XX99XX").json()
    assert body == {"headers": REFERENCE_POSTCODES.headers, "values": []}


@pytest.mark.parametrize("query", ["", "?postcode=", "?postcode=%20%20"])
def test_a_postcode_lookup_without_postcode_answers_400(hawk_get, postcodes, query):
    response = hawk_get(f"/api/v1/get-postcode-data/{query}")
    assert response.status_code == 400
    assert response.json() == {"error": "No postcode specified"}


def test_each_postcode_lookup_has_its_own_scope(hawk_get, postcodes):
    caller = make_client(scopes=["dit_reference_postcode1"])
    assert hawk_get("/api/v1/get-postcode-data/?postcode=x", caller).status_code == 200
    assert hawk_get("/api/v1/get-dit-reference-postcode/?postcode=x", caller).status_code == 403
