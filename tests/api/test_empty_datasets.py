"""Right after migrate, every built-in source's tables exist, empty: its dataset endpoint,
table-data and table-structure answer 200 (an empty page) before its first load."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from api.dataset_endpoints import DATASET_ENDPOINTS
from pipelines.catalogue import CATALOGUE
from pipelines.spire import SpireSteps
from pipelines.world_bank_tariffs import TransformSteps

SERVED_TABLES = [(schema, table) for source in CATALOGUE for schema, table in source.tables]


def expected_columns(schema: str, table: str) -> list[str]:
    """The columns table-structure names for a built-in table, helpers first."""
    [source] = [source for source in CATALOGUE if (schema, table) in source.tables]
    dataset = source.dataset
    if isinstance(source.steps, SpireSteps):
        # The file's column ``id`` is read as ``id_``; a table without one gets its own.
        names = [column.header or column.name for column in dataset.columns]
        return ["id", *(name for name in names if name != "id")]
    if isinstance(source.steps, TransformSteps):
        return ["id", *(column.name for column in dataset.l1_columns)]
    columns = dataset.l1_columns if table == "L1" else dataset.columns
    helpers = ["id", "data_source_row_id"] if table == "L1" else ["id"]
    return [*helpers, *(column.name for column in columns)]


@pytest.mark.parametrize("endpoint", DATASET_ENDPOINTS, ids=lambda e: e.scope)
def test_a_dataset_endpoint_answers_an_empty_page_before_its_first_load(hawk_get, endpoint):
    tabular = hawk_get(f"/api/v1/{endpoint.path}")
    records = hawk_get(f"/api/v1/{endpoint.path}?orientation=records")

    assert tabular.status_code == 200, tabular.content
    assert tabular.json() == {"headers": endpoint.headers, "values": [], "next": None}
    assert records.status_code == 200, records.content
    assert records.json() == {"results": [], "next": None}


@pytest.mark.parametrize(("schema", "table"), SERVED_TABLES, ids="/".join)
def test_table_data_of_every_built_in_table_answers_an_empty_page(hawk_get, schema, table):
    response = hawk_get(f"/api/v1/table-data/{schema}/{table}")

    assert response.status_code == 200, response.content
    page = response.json()
    assert page["values"] == [] and page["next"] is None
    assert page["headers"][0] == "id"


@pytest.mark.parametrize(("schema", "table"), SERVED_TABLES, ids="/".join)
def test_table_structure_of_every_built_in_table_names_its_columns(hawk_get, schema, table):
    response = hawk_get(f"/api/v1/table-structure/{schema}/{table}")

    assert response.status_code == 200, response.content
    served = [column["name"] for column in response.json()["columns"]]
    assert served == expected_columns(schema, table)


def drop_schema(schema: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def test_migrate_creates_the_tables_that_are_missing(transactional_db, hawk_get):
    drop_schema("dit.baci")
    assert hawk_get("/api/v1/get-dit-baci-data/").status_code == 404

    call_command("migrate", verbosity=0, stdout=io.StringIO())

    response = hawk_get("/api/v1/get-dit-baci-data/")
    assert response.status_code == 200
    assert response.json()["values"] == []


def test_migrate_leaves_loaded_tables_as_they_are(transactional_db, hawk_get):
    """Idempotent: a second migrate keeps the rows a load put in."""
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO "world_bank.tariff"."L0" (reporter, year, product) VALUES (36, 2019, 1)'
        )

    call_command("migrate", verbosity=0, stdout=io.StringIO())

    response = hawk_get("/api/v1/get-world-bank-tariffs/raw/?orientation=records")
    [row] = response.json()["results"]
    assert (row["reporter"], row["year"], row["product"]) == (36, 2019, 1)
