"""The one registry of column types: definitions, the catalog lookup and the API read it."""

import pytest
from django.db import connection
from psycopg import sql

from api.dataset_endpoints import DATASET_ENDPOINTS
from api.schema import TYPE_NAMES, VALUE_FIELDS
from api.served_tables import find_table
from pipelines.column_types import BY_API_NAME, COLUMN_TYPES
from pipelines.datasets import Column
from uploads.models import Pipeline

API_NAMES = {
    "TEXT",
    "INTEGER",
    "BIGINT",
    "NUMERIC",
    "FLOAT",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP WITHOUT TIME ZONE",
}


def test_the_registry_holds_the_eight_types_data_flow_maps():
    assert {kind.api_name for kind in COLUMN_TYPES.values()} == API_NAMES
    assert set(BY_API_NAME) == API_NAMES


def test_the_openapi_description_knows_every_registered_type():
    assert set(VALUE_FIELDS) == API_NAMES
    assert set(TYPE_NAMES) == API_NAMES | {f"{name}[]" for name in API_NAMES}


def test_a_definition_may_only_declare_a_registered_type():
    with pytest.raises(ValueError, match="type 'varchar' is not one of text, integer"):
        Column("a", "varchar")


@pytest.mark.parametrize("kind", COLUMN_TYPES.values(), ids=lambda kind: kind.name)
def test_a_column_made_with_each_type_is_reported_as_its_api_name(db, kind):
    """The type a definition names creates a column that the catalog lookup reports back
    under the same registry entry (the schema is an upload pipeline's, so it is served)."""
    Pipeline.objects.create(organisation="types", dataset="check")
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "types.check"')
        cursor.execute(
            sql.SQL('CREATE TABLE "types.check"."L0" (id integer, value {})').format(
                sql.SQL(kind.name)
            )
        )
    table = find_table("types.check", "L0")
    assert table.column("value").api_type == kind.api_name


def test_dataset_endpoints_report_their_columns_through_the_registry():
    for endpoint in DATASET_ENDPOINTS:
        assert {kind for _, kind in endpoint.columns} <= API_NAMES


def test_an_upload_offers_the_six_types_of_the_verify_page():
    offered = {kind.name for kind in COLUMN_TYPES.values() if kind.uploadable}
    assert offered == {"integer", "boolean", "date", "timestamp", "numeric", "text"}
