"""A file placed in storage, ingested by the command, served by the API as data-flow reads it."""

import io

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from pipelines import storage

BACI_FILE = b"t,hs6,i,j,v,q\n2019,010519,004,008,1.5,\n2019,010519,004,008,1.5,\n2020,2,3,4,1e3,7\n"


@pytest.fixture
def baci_loaded(transactional_db):
    storage.save_stream(f"{settings.DATASETS_FOLDER}/dit/baci/2020.csv", io.BytesIO(BACI_FILE))
    call_command("ingest_sources", "--dit.baci", stdout=io.StringIO(), stderr=io.StringIO())
    yield
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA "dit.baci" CASCADE')


def test_an_ingested_source_is_served_by_its_dataset_endpoint(baci_loaded, hawk_get):
    response = hawk_get("/api/v1/get-dit-baci-data/")

    assert response.status_code == 200
    assert response.json() == {
        "headers": [
            "year",
            "productCategory",
            "exporter",
            "importer",
            "tradeFlowValue",
            "quantity",
        ],
        "values": [
            [2019, 10519, 4, 8, 1.5, None],
            [2019, 10519, 4, 8, 1.5, None],
            [2020, 2, 3, 4, 1000, 7],
        ],
        "next": None,
    }


def test_an_ingested_table_is_described_and_paged_by_the_generic_endpoints(baci_loaded, hawk_get):
    structure = hawk_get("/api/v1/table-structure/dit.baci/L0").json()
    data = hawk_get("/api/v1/table-data/dit.baci/L0?orientation=records").json()

    assert structure == {
        "columns": [
            {"name": "id", "type": "INTEGER"},
            {"name": "t", "type": "INTEGER"},
            {"name": "hs6", "type": "INTEGER"},
            {"name": "i", "type": "INTEGER"},
            {"name": "j", "type": "INTEGER"},
            {"name": "v", "type": "NUMERIC"},
            {"name": "q", "type": "NUMERIC"},
        ]
    }
    assert [row["t"] for row in data["results"]] == [2019, 2019, 2020]
    assert set(data["results"][0]) == {"id", "t", "hs6", "i", "j", "v", "q"}
