"""Sources defined in admin: a definition is checked when it is saved (patterns, names in
bytes, types, L1 expressions parsed, allowed and tried on an empty L0), and the defined
sources join the catalogue, the commands and the API's allow-list."""

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection

from api.served_schemas import is_served_schema
from pipelines.defined_sources import current_catalogue, to_source
from pipelines.expressions import check_l1_expression
from pipelines.models import DefinedSource, RunRecord

pytestmark = pytest.mark.django_db


def defined(**fields) -> DefinedSource:
    """An unsaved definition placed by hand, columns ``code`` (text) and ``amount``
    (numeric); ``fields`` replace any of its fields."""
    values = {
        "organisation": "acme",
        "dataset": "orders",
        "mode": DefinedSource.Mode.SNAPSHOT,
        "origin": DefinedSource.Origin.BY_HAND,
        "columns": [{"name": "code"}, {"name": "amount", "type": "numeric", "header": "Amount"}],
        **fields,
    }
    return DefinedSource(**values)


def errors_of(row: DefinedSource) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as raised:
        row.full_clean()
    return raised.value.message_dict


def with_l1(expression: str, kind: str = "text") -> DefinedSource:
    return defined(l1_columns=[{"name": "out", "type": kind, "expression": expression}])


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("(SELECT max(code) FROM acme_orders)", "a subquery is not allowed"),
        ("code IN (SELECT relname FROM pg_class)", "a subquery is not allowed"),
        ("EXISTS (SELECT 1)", "a subquery is not allowed"),
        ("code; DROP TABLE pipelines_definedsource", "several statements"),
        ("code FROM pg_shadow", "no FROM, WHERE or other clause"),
        ("code, amount", "not a list of them"),
        ("colour", "column 'colour' is not a column of L0"),
        ("pg_read_file('/etc/passwd')", "function 'pg_read_file' is not allowed"),
        ("pg_sleep(10)::text", "function 'pg_sleep' is not allowed"),
        ("count(*)", "function 'count' is not allowed"),
        ("lower(code) OVER ()", "aggregates and windows are not allowed"),
        ("code::regclass::text", "a cast to 'regclass' is not allowed"),
        ("t.code", "columns are named alone"),
        ("code AS other", "no alias"),
        ("$1", "ParamRef is not allowed"),
        ("current_user", "CURRENT_USER is not allowed"),
        ("lower(code", "not an SQL expression"),
    ],
)
def test_an_l1_expression_that_is_not_one_allowed_expression_is_refused(expression, reason):
    errors = errors_of(with_l1(expression))

    assert reason in errors["l1_columns"][0]
    assert "'out'" in errors["l1_columns"][0]


@pytest.mark.parametrize(
    ("expression", "kind", "runs_as"),
    [
        ("lower(code)", "text", "lower(code)"),
        ("nullif(code, '')::integer", "integer", "CAST(NULLIF(code, '') AS integer)"),
        ("to_date(code, 'DD/MM/YYYY')", "date", "to_date(code, 'DD/MM/YYYY')"),
        ("substring(code from 1 for 2)", "text", "pg_catalog.substring(code, 1, 2)"),
        (
            "CASE WHEN amount > 0 THEN 'credit' END",
            "text",
            "CASE WHEN amount > 0 THEN 'credit' END",
        ),
        ("round(amount * 100) -- in pence", "numeric", "round(amount * 100)"),
        (
            "coalesce(code, current_date::text)",
            "text",
            "COALESCE(code, CAST(CURRENT_DATE AS text))",
        ),
        (
            "code || ' (' || datafile_created || ')'",
            "text",
            "code || ' (' || datafile_created || ')'",
        ),
        ("code LIKE 'A%'", "boolean", "code LIKE 'A%%'"),
    ],
)
def test_an_allowed_expression_is_accepted_and_runs_as_the_parser_prints_it(
    expression, kind, runs_as
):
    row = with_l1(expression, kind)

    row.full_clean()

    assert to_source(row).dataset.l1_columns[0].expression == runs_as


@pytest.mark.parametrize(
    ("expression", "kind", "message"),
    [
        (
            "lower(code)",
            "integer",
            'column "out" is of type integer but expression is of type text',
        ),
        ("to_date(code)", "date", "function to_date(text) does not exist"),
        ("code + 1", "text", "operator does not exist: text + integer"),
    ],
)
def test_an_expression_that_fails_on_an_empty_l0_is_refused(expression, kind, message):
    errors = errors_of(with_l1(expression, kind))

    assert errors["l1_columns"] == [f"the L1 expressions fail on an empty L0: {message}"]


def test_trying_the_expressions_leaves_no_table_behind():
    with_l1("upper(code)").full_clean()

    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'l1_trial.%'")
        assert cursor.fetchall() == []


def test_the_expression_checker_keeps_comments_out_of_the_sql():
    assert check_l1_expression("code /* ) ; drop */ || 'x'", {"code"}) == "code || 'x'"


def listing(**fields) -> DefinedSource:
    values = {
        "origin": DefinedSource.Origin.LISTING,
        "url": "http://127.0.0.1:9/files",
        "link_pattern": r".*/orders-(?P<date>\d{4}-\d{2})\.csv$",
        "link_date_format": "%Y-%m",
        "file_name_pattern": "orders_{date}.csv",
        "file_date_format": "%Y-%m",
        **fields,
    }
    return defined(**values)


def test_a_listing_with_a_date_group_is_accepted():
    listing().full_clean()


def test_a_link_pattern_without_a_date_group_is_refused():
    errors = errors_of(listing(link_pattern=r".*/orders-\d{4}-\d{2}\.csv$"))

    assert errors["link_pattern"] == [
        "the pattern needs a (?P<date>...) group for the date format to read"
    ]


def test_a_pattern_that_does_not_compile_is_refused():
    errors = errors_of(listing(link_pattern=r".*/orders-(?P<date>\d{4}.csv$"))

    assert "does not compile" in errors["link_pattern"][0]


def test_a_listing_without_its_date_format_is_refused():
    assert "link_date_format" in errors_of(listing(link_date_format=""))


def test_a_fetched_source_needs_a_file_name_pattern_with_one_date():
    assert errors_of(listing(file_name_pattern="orders.csv"))["file_name_pattern"] == [
        "the name needs one {date}"
    ]
    assert "file_name_pattern" in errors_of(listing(file_name_pattern=""))


def test_a_column_name_longer_than_63_bytes_is_refused_though_shorter_in_characters():
    name = "é" * 32  # 32 characters, 64 bytes

    errors = errors_of(defined(columns=[{"name": name}]))

    assert "is 64 bytes long; PostgreSQL names are at most 63 bytes" in errors["columns"][0]


def test_an_l1_column_name_longer_than_63_bytes_is_refused():
    errors = errors_of(defined(l1_columns=[{"name": "l" * 64, "expression": "code"}]))

    assert "is 64 bytes long" in errors["l1_columns"][0]


def test_a_schema_name_longer_than_63_bytes_is_refused():
    errors = errors_of(defined(organisation="o" * 32, dataset="d" * 31))

    assert "dataset schema name" in errors["dataset"][0]
    assert "64 bytes" in errors["dataset"][0]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ([{"name": "code", "type": "varchar(3)"}], "type 'varchar(3)' is not one of text"),
        ([{"name": "id"}], "column name 'id' is reserved"),
        ([{"name": "code"}, {"name": "code"}], "L0 repeats columns ['code']"),
        ([{"name": "code", "colour": "red"}], "unknown keys ['colour']"),
        ([{"name": "day", "type": "date", "date_format": "%Q"}], "%Q is not one of"),
        ({"code": "text"}, "a list of objects"),
        ([], "a dataset needs at least one column"),
    ],
)
def test_columns_the_loader_would_refuse_are_refused(columns, message):
    errors = errors_of(defined(columns=columns))

    assert message in " ".join(errors.get("columns", []) + errors.get("dataset", []))


def test_an_unknown_encoding_is_refused():
    assert "unknown encoding" in errors_of(defined(encoding="klingon"))["encoding"][0]


def test_a_schema_a_built_in_source_loads_into_is_refused():
    errors = errors_of(defined(organisation="dit", dataset="baci"))

    assert errors["dataset"] == ["dit.baci is a built-in source's; choose another"]


def test_unknown_and_circular_dependencies_are_refused():
    assert (
        "depends on unknown ['acme.nothing']"
        in (errors_of(defined(depends_on=["acme.nothing"]))["depends_on"][0])
    )
    first = defined(dataset="first", depends_on=["acme.second"])
    DefinedSource.objects.bulk_create([first])  # saved unchecked, as a cycle needs two
    errors = errors_of(defined(dataset="second", depends_on=["acme.first"]))

    assert "cycle" in errors["depends_on"][0]


def test_defined_sources_join_the_catalogue_after_the_built_in_ones():
    defined(depends_on=["dit.baci"]).save()

    catalogue = current_catalogue()

    assert list(catalogue)[-1].id == "acme.orders"
    assert [source.id for source in catalogue.in_dependency_order(["acme.orders", "dit.baci"])] == [
        "dit.baci",
        "acme.orders",
    ]
    assert catalogue.get("acme.orders").folder == "acme/orders"


def test_a_defined_source_that_no_longer_builds_is_left_out_and_the_others_stay(caplog):
    DefinedSource.objects.bulk_create([defined(columns=[{"name": "id"}]), defined(dataset="ok")])

    ids = [source.id for source in current_catalogue()]

    assert "acme.orders" not in ids and "acme.ok" in ids
    assert "defined source acme.orders is left out" in caplog.text


def test_a_defined_source_schema_is_served_and_a_deleted_one_is_not():
    row = defined()
    row.save()
    assert is_served_schema("acme.orders")

    row.delete()

    assert not is_served_schema("acme.orders")


def test_the_commands_list_built_in_and_defined_sources():
    defined().save()
    listing(dataset="fetched").save()
    ingest, fetch = io.StringIO(), io.StringIO()

    call_command("ingest_sources", "--list", stdout=ingest)
    call_command("fetch_sources", "--list", stdout=fetch)

    lines = {line.split()[0]: line.split()[1] for line in ingest.getvalue().splitlines()}
    assert lines["acme.orders"] == "defined" and lines["dit.baci"] == "built-in"
    assert "acme.fetched" in fetch.getvalue() and "acme.orders" not in fetch.getvalue()


@pytest.mark.django_db(transaction=True)
def test_the_ingest_command_loads_a_defined_source_and_records_its_run(store):
    row = defined(
        l1_columns=[
            {"name": "code", "expression": "upper(code) || '%'"},
            {"name": "amount", "type": "numeric"},
        ]
    )
    row.save()
    store("acme/orders/2024.csv", b"code,Amount\nab,1.5\ncd,2\n")

    call_command("ingest_sources", "--acme.orders", stdout=io.StringIO())

    with connection.cursor() as cursor:
        cursor.execute('SELECT code, amount FROM "acme.orders"."L1" ORDER BY id')
        assert cursor.fetchall() == [("AB%", 1.5), ("CD%", 2)]
        cursor.execute('DROP SCHEMA "acme.orders" CASCADE')
    record = RunRecord.objects.get(source="acme.orders")
    assert (record.kind, record.status, record.started_by) == (
        "ingest",
        "succeeded",
        "manage.py ingest_sources",
    )
    assert record.summary.startswith("1 file(s) processed, 0 failed, 0 skipped; 2 rows loaded")
    assert "acme.orders: loading 2024.csv" in record.log
