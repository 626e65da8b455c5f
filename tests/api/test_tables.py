"""table-structure and table-data for any dataset table."""

import json
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.builders import make_client, sign

# The token naming the version of the table a read began on, at the end of every `next`.
VERSION = r"&version=[1-9][0-9]*"

ALL_TYPES = {
    "name": "text",
    "code": "varchar(10)",
    "letter": "char(3)",
    "small": "smallint",
    "count": "integer",
    "big": "bigint",
    "amount": "numeric(12, 2)",
    "ratio": "real",
    "precise": "double precision",
    "flag": "boolean",
    "day": "date",
    "moment": "timestamp",
    "stamped": "timestamptz",
    "document": "jsonb",
    "uid": "uuid",
    "duration": "interval",
    "counts": "integer[]",
    "words": "varchar[]",
    "days": "date[]",
    "uids": "uuid[]",
    "money_amount": "positive_amount",
}
ALL_TYPES_ROW = (
    "text",
    "vc",
    "ab",
    7,
    -8,
    9_000_000_000,
    Decimal("1234567890.50"),
    0.5,
    1 / 3,
    True,
    date(2024, 1, 31),
    datetime(2024, 1, 31, 10, 0, 5),
    datetime.fromisoformat("2024-01-31T12:00:00+02:00"),
    '{"a": [1, 2]}',
    "6f1c1f3e-2b8a-4d36-9d2b-3f0c9c8a1a10",
    timedelta(days=1, hours=2),
    [1, None, 3],
    ["x", "y"],
    [date(2024, 2, 1)],
    ["6f1c1f3e-2b8a-4d36-9d2b-3f0c9c8a1a10"],
    Decimal("12.345"),
)


@pytest.fixture
def typed_table(tables) -> str:
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA IF NOT EXISTS "acme.typed"')
        cursor.execute('CREATE DOMAIN "acme.typed".positive_amount AS numeric CHECK (VALUE > 0)')
    tables.serve("acme.typed")
    types = {**ALL_TYPES, "money_amount": '"acme.typed".positive_amount'}
    tables.create("acme.typed", "L1", types, [ALL_TYPES_ROW, (None,) * len(ALL_TYPES)])
    return "acme.typed/L1"


def test_table_structure_lists_columns_in_table_order_with_their_api_types(hawk_get, typed_table):
    response = hawk_get(f"/api/v1/table-structure/{typed_table}")
    assert response.status_code == 200
    assert response.json() == {
        "columns": [
            {"name": "id", "type": "BIGINT"},
            {"name": "name", "type": "TEXT"},
            {"name": "code", "type": "TEXT"},
            {"name": "letter", "type": "TEXT"},
            {"name": "small", "type": "INTEGER"},
            {"name": "count", "type": "INTEGER"},
            {"name": "big", "type": "BIGINT"},
            {"name": "amount", "type": "NUMERIC"},
            {"name": "ratio", "type": "FLOAT"},
            {"name": "precise", "type": "FLOAT"},
            {"name": "flag", "type": "BOOLEAN"},
            {"name": "day", "type": "DATE"},
            {"name": "moment", "type": "TIMESTAMP WITHOUT TIME ZONE"},
            {"name": "stamped", "type": "TIMESTAMP WITHOUT TIME ZONE"},
            {"name": "document", "type": "TEXT"},
            {"name": "uid", "type": "TEXT"},
            {"name": "duration", "type": "TEXT"},
            {"name": "counts", "type": "INTEGER[]"},
            {"name": "words", "type": "TEXT[]"},
            {"name": "days", "type": "DATE[]"},
            {"name": "uids", "type": "TEXT[]"},
            {"name": "money_amount", "type": "NUMERIC"},
        ]
    }


def test_table_data_serves_every_type_by_the_value_rules(hawk_get, typed_table):
    response = hawk_get(f"/api/v1/table-data/{typed_table}?orientation=records")
    assert response.status_code == 200
    first, empty = response.json()["results"]
    assert first == {
        "id": 1,
        "name": "text",
        "code": "vc",
        "letter": "ab ",
        "small": 7,
        "count": -8,
        "big": 9_000_000_000,
        "amount": 1234567890.5,
        "ratio": 0.5,
        "precise": 1 / 3,
        "flag": True,
        "day": "2024-01-31",
        "moment": "2024-01-31T10:00:05",
        "stamped": "2024-01-31T10:00:00",
        "document": '{"a": [1, 2]}',
        "uid": "6f1c1f3e-2b8a-4d36-9d2b-3f0c9c8a1a10",
        "duration": "1 day 02:00:00",
        "counts": [1, None, 3],
        "words": ["x", "y"],
        "days": ["2024-02-01"],
        "uids": ["6f1c1f3e-2b8a-4d36-9d2b-3f0c9c8a1a10"],
        "money_amount": 12.345,
    }
    assert empty == {"id": 2, **{name: None for name in ALL_TYPES}}


def test_numerics_keep_every_stored_digit(hawk_get, tables):
    exact = Decimal("12345678901234567890.123456789")
    tables.create("acme.exact", "L0", {"value": "numeric"}, [(exact,), (Decimal("NaN"),)])
    response = hawk_get("/api/v1/table-data/acme.exact/L0")
    assert b"12345678901234567890.123456789" in response.content
    values = json.loads(response.content, parse_float=Decimal)["values"]
    assert values == [[1, exact], [2, None]]


def test_not_finite_floats_and_infinite_dates_do_not_break_a_page(hawk_get, tables):
    rows = [("NaN", "infinity", "-infinity"), ("Infinity", "2024-01-01", "2024-01-01 10:00")]
    tables.create(
        "acme.edges",
        "L0",
        {"ratio": "double precision", "day": "date", "moment": "timestamp"},
        rows,
    )
    response = hawk_get("/api/v1/table-data/acme.edges/L0")
    assert response.json()["values"] == [
        [1, None, "infinity", "-infinity"],
        [2, None, "2024-01-01", "2024-01-01T10:00:00"],
    ]


def test_helper_columns_are_never_served(hawk_get, tables):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    structure = hawk_get("/api/v1/table-structure/acme.things/L0").json()
    data = hawk_get("/api/v1/table-data/acme.things/L0").json()
    assert [column["name"] for column in structure["columns"]] == ["id", "name"]
    assert data == {"headers": ["id", "name"], "values": [[1, "a"]], "next": None}


def test_table_data_puts_id_first_whatever_its_place_in_the_table(hawk_get, tables):
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "acme.late"')
        cursor.execute('CREATE TABLE "acme.late"."L0" (name text, id integer PRIMARY KEY)')
        cursor.execute('INSERT INTO "acme.late"."L0" VALUES (\'a\', 5)')
    tables.serve("acme.late")
    data = hawk_get("/api/v1/table-data/acme.late/L0").json()
    assert data == {"headers": ["id", "name"], "values": [[5, "a"]], "next": None}


def test_pages_follow_next_links_to_the_last_page(hawk_get, tables, small_pages):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",), ("c",), ("d",), ("e",)])
    first = hawk_get("/api/v1/table-data/acme.things/L0").json()
    assert re.fullmatch(
        r"http://testserver/api/v1/table-data/acme\.things/L0\?orientation=tabular&next-id=3"
        + VERSION,
        first["next"],
    )
    assert first["headers"] == ["id", "name"]
    assert first["values"] == [[1, "a"], [2, "b"]]
    second = hawk_get(first["next"].removeprefix("http://testserver")).json()
    assert second["values"] == [[3, "c"], [4, "d"]]
    last = hawk_get(second["next"].removeprefix("http://testserver")).json()
    assert last == {"headers": ["id", "name"], "values": [[5, "e"]], "next": None}


def test_records_pages_link_records_pages(hawk_get, tables, small_pages):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",), ("c",)])
    first = hawk_get("/api/v1/table-data/acme.things/L0?orientation=records").json()
    assert re.fullmatch(
        r"http://testserver/api/v1/table-data/acme\.things/L0\?orientation=records&next-id=3"
        + VERSION,
        first.pop("next"),
    )
    assert first == {"results": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]}


def test_a_page_holds_rows_from_next_id_on(hawk_get, tables):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",), ("c",)])
    response = hawk_get("/api/v1/table-data/acme.things/L0?next-id=2")
    assert response.json()["values"] == [[2, "b"], [3, "c"]]
    beyond = hawk_get("/api/v1/table-data/acme.things/L0?next-id=99").json()
    assert beyond == {"headers": ["id", "name"], "values": [], "next": None}


def test_an_empty_table_is_one_empty_page(hawk_get, tables):
    tables.create("acme.things", "L0", {"name": "text"})
    response = hawk_get("/api/v1/table-data/acme.things/L0?orientation=records")
    assert response.json() == {"results": [], "next": None}


def test_next_links_of_names_that_need_escaping_lead_to_the_next_page(
    hawk_get, tables, small_pages
):
    tables.create("acme.ünï code", "L 0", {"name": "text"}, [("a",), ("b",), ("c",)])
    path = f"/api/v1/table-data/{quote('acme.ünï code')}/{quote('L 0')}"
    first = hawk_get(path).json()
    expected = re.escape(f"http://testserver{path}?orientation=tabular&next-id=3") + VERSION
    assert re.fullmatch(expected, first["next"])
    second = hawk_get(first["next"].removeprefix("http://testserver")).json()
    assert second["values"] == [[3, "c"]]


@pytest.mark.parametrize(
    "query, words",
    [
        ("orientation=sideways", "orientation must be tabular or records"),
        ("next-id=abc", "next-id must be a whole number"),
        ("next-id=", "next-id must be a whole number"),
        ("next-id=1.5", "next-id must be a whole number"),
        ("next-id=9223372036854775808", "next-id must be at most 9223372036854775807"),
        ("orientation=", "orientation must be tabular or records"),
    ],
)
def test_query_parameters_that_are_not_understood_answer_400(hawk_get, tables, query, words):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    response = hawk_get(f"/api/v1/table-data/acme.things/L0?{query}")
    assert response.status_code == 400
    assert words in response.json()["error"]


def test_an_unknown_table_answers_404(hawk_get, tables):
    tables.create("acme.things", "L0", {"name": "text"})
    for path in ["acme.things/L9", "acme.nothing/L0"]:
        for endpoint in ["table-structure", "table-data"]:
            response = hawk_get(f"/api/v1/{endpoint}/{path}")
            assert response.status_code == 404
            assert "No table" in response.json()["error"]


def test_a_table_without_id_answers_422_to_table_data_but_has_a_structure(hawk_get, tables):
    tables.create("acme.flat", "L0", {"name": "text"}, [("a",)], with_id=False)
    response = hawk_get("/api/v1/table-data/acme.flat/L0")
    assert response.status_code == 422
    assert response.json() == {"error": "The table must have an id column"}
    assert hawk_get("/api/v1/table-structure/acme.flat/L0").status_code == 200


def test_a_table_whose_id_is_not_a_whole_number_answers_422(hawk_get, tables):
    tables.create("acme.odd", "L0", {"id": "text"}, [("x",)], with_id=False)
    response = hawk_get("/api/v1/table-data/acme.odd/L0")
    assert response.status_code == 422
    assert "whole numbers" in response.json()["error"]


def served(hawk_get, schema: str, table: str) -> list[int]:
    """The statuses of table-structure and table-data for ``schema.table``."""
    path = f"{quote(schema, safe='')}/{quote(table, safe='')}"
    return [hawk_get(f"/api/v1/{endpoint}/{path}").status_code for endpoint in ENDPOINTS]


ENDPOINTS = ["table-structure", "table-data"]


def test_schemas_of_sources_and_upload_pipelines_are_served(hawk_get, tables):
    tables.create("dit.baci", "L1", {"year": "integer"}, [(2020,)])
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])

    assert served(hawk_get, "dit.baci", "L1") == [200, 200]
    assert served(hawk_get, "acme.things", "L0") == [200, 200]


def test_tables_of_the_service_and_of_postgresql_are_never_served(hawk_get, tables):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE public.nowhere (id integer PRIMARY KEY)")
    for schema, table in [
        ("public", "nowhere"),
        ("public", "api_hawkclient"),
        ("public", "dss_cache"),
        ("public", "uploads_pipeline"),
        ("pg_catalog", "pg_class"),
        ("pg_catalog", "pg_authid"),
        ("information_schema", "tables"),
    ]:
        assert served(hawk_get, schema, table) == [404, 404], (schema, table)


# Schemas made by hand in the database, each with a table that has rows: the service did not
# create them, so they are not served, however much their names look like a dataset's.
SCHEMAS_MADE_BY_HAND = [
    "acme.by_hand",
    "dit.baci ",
    "DIT.baci",
    "dit.baci.L1",
    "dit_baci",
    "dit.bacı",
    "acme.Things",
    "acme.things2",
    "acme",
    ".acme.things",
]


@pytest.mark.parametrize("schema", SCHEMAS_MADE_BY_HAND)
def test_schemas_the_service_did_not_create_answer_404(hawk_get, tables, schema):
    tables.create("dit.baci", "L1", {"year": "integer"}, [(2020,)])
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    tables.create(schema, "L1", {"year": "integer"}, [(2020,)], served=False)
    tables.create(schema, "L0", {"name": "text"}, [("a",)], served=False)

    assert served(hawk_get, schema, "L0") == [404, 404]
    assert served(hawk_get, schema, "L1") == [404, 404]
    assert served(hawk_get, "acme.things", "L0") == [200, 200]


HOSTILE_NAMES = [
    ("pg_catalog", "pg_class"),
    ("PG_CATALOG", "pg_class"),
    ("pg_toast", "L0"),
    ("information_schema", "tables"),
    ("public", "api_hawkclient"),
    ("operations", "L0"),
    ("admin", "L0"),
    ("acme.things", "x" * 10_000),
    ("x" * 10_000, "L0"),
    ("acme.things", "L0\x00"),
]
# Names that could exist are looked up in the catalog, as bound values, and found missing.
LOOKED_UP_NAMES = [
    ('acme.things"; DROP TABLE "acme.things"."L0"; --', "L0"),
    ("acme.things", 'L0"; DROP TABLE "acme.things"."L0"; --'),
    ("acme.things", "L0'; DROP TABLE canary; --"),
    ("..", "L0"),
    ("acme.things", ".."),
    ("acme.things;", "L0"),
    ("%", "%"),
    ("acme.things", "L_"),
]


@pytest.mark.parametrize("schema, table", HOSTILE_NAMES)
def test_names_that_are_never_served_answer_404_before_any_catalog_query(
    hawk_get, tables, schema, table
):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    for endpoint in ["table-structure", "table-data"]:
        path = f"/api/v1/{endpoint}/{quote(schema, safe='')}/{quote(table, safe='')}"
        with CaptureQueriesContext(connection) as queries:
            response = hawk_get(path)
        assert response.status_code == 404
        assert "error" in response.json()
        assert not [query for query in queries if "pg_attribute" in query["sql"]]


@pytest.mark.parametrize("schema, table", LOOKED_UP_NAMES)
def test_hostile_names_answer_404_and_change_nothing(hawk_get, tables, schema, table):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    for endpoint in ["table-structure", "table-data"]:
        path = f"/api/v1/{endpoint}/{quote(schema, safe='')}/{quote(table, safe='')}"
        response = hawk_get(path)
        assert response.status_code == 404
        assert "error" in response.json()
    assert hawk_get("/api/v1/table-data/acme.things/L0").json()["values"] == [[1, "a"]]


def test_views_are_served_like_tables(hawk_get, tables):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",), ("b",)])
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE VIEW "acme.things"."L1" AS '
            'SELECT id, upper(name) AS name FROM "acme.things"."L0"'
        )
    response = hawk_get("/api/v1/table-data/acme.things/L1")
    assert response.json()["values"] == [[1, "A"], [2, "B"]]


# The 2,500-row table pulled through a real HTTP server.
AWKWARD_COLUMNS = {
    "Label Ü": "text",
    "select": "integer",
    'say "hi"': "bigint",
    "a;b": "numeric",
    "MixedCase": "double precision",
    "flag": "boolean",
    "day": "date",
    "moment": "timestamp",
}
PULL_ROWS = 2_500
TEXTS = ["plain", "ünïcödé", "日本語", "emoji 🎉", 'quote " and \\ backslash', "new\nline\ttab", ""]


def pull_rows() -> list[tuple]:
    rows = []
    for number in range(PULL_ROWS):
        rows.append(
            (
                None if number % 7 == 0 else f"{TEXTS[number % len(TEXTS)]} {number}",
                None if number % 11 == 0 else number * 3 - 1000,
                2**62 - number,
                None if number % 13 == 0 else Decimal(f"{number}.{number % 1000:03d}") * 10**9,
                None if number % 17 == 0 else number / 7,
                None if number % 5 == 0 else number % 2 == 0,
                None if number % 19 == 0 else date(1900, 1, 1) + timedelta(days=number * 20),
                None
                if number % 23 == 0
                else datetime(2020, 1, 1) + timedelta(seconds=number * 3601.25),
            )
        )
    return rows


def as_served(row: tuple) -> list:
    """A loaded row as the API serves it, read by ``as_read``."""
    label, select, say, amount, ratio, flag, day, moment = row
    return [
        label,
        select,
        say,
        amount,
        None if ratio is None else Decimal(repr(ratio)),
        flag,
        None if day is None else day.isoformat(),
        moment,
    ]


def as_read(values: list) -> list:
    """Served values with timestamps parsed (PostgreSQL leaves out trailing zeros)."""
    *rest, moment = values
    return [*rest, None if moment is None else datetime.fromisoformat(moment)]


def pull(url: str, caller) -> list[dict]:
    """Every page from ``url`` on, by following next; each answer verified."""
    pages = []
    while url:
        signed = sign(caller, url)
        response = requests.get(url, headers=signed.headers, timeout=30)
        assert response.status_code == 200, response.text
        assert signed.verifies(
            response.content,
            response.headers["Content-Type"],
            response.headers["Server-Authorization"],
        )
        page = json.loads(response.content, parse_float=Decimal)
        pages.append(page)
        url = page["next"]
    return pages


def test_a_2500_row_table_pulled_through_a_real_server_in_both_orientations_is_the_table(
    live_server, tables, settings
):
    settings.PAGINATION_SIZE = 300
    rows = pull_rows()
    tables.create("acme.pull", "L1", AWKWARD_COLUMNS, rows)
    caller = make_client(scopes=["table_data"])
    expected = [[number, *as_served(row)] for number, row in enumerate(rows, start=1)]
    headers = ["id", *AWKWARD_COLUMNS]
    base = f"{live_server.url}/api/v1/table-data/acme.pull/L1"

    tabular = pull(base, caller)
    assert len(tabular) == 9
    assert all(page["headers"] == headers for page in tabular)
    served = [as_read(values) for page in tabular for values in page["values"]]
    assert served == expected

    records = pull(f"{base}?orientation=records", caller)
    assert len(records) == 9
    assert re.search(r"\?orientation=records&next-id=301" + VERSION + "$", records[0]["next"])
    served = [
        as_read([record[name] for name in headers])
        for page in records
        for record in page["results"]
    ]
    assert served == expected


@pytest.mark.parametrize("path", ["/api/v1/nonexistent/", "/api/v2/table-data/a/b", "/api/"])
def test_a_path_under_api_that_names_no_endpoint_answers_a_json_404(client, settings, path):
    settings.DEBUG = True  # Django's own 404 page is HTML even then
    response = client.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": "No API endpoint at this path"}
