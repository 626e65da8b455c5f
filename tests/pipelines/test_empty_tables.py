"""The empty tables made at migrate are laid out and keyed as a first load leaves them, and
loads into them give the same rows as loads into new tables."""

import pytest
from psycopg import sql

from pipelines.builtin_tables import create_builtin_tables
from pipelines.catalogue import CATALOGUE
from pipelines.datasets import L1Column, Mode
from pipelines.ingesting import ingest_sources
from pipelines.loading import create_empty_tables
from pipelines.sources import Catalogue, Source
from tests.pipelines.conftest import load_bytes, make_dataset, rows

L1 = (L1Column("a", "integer"), L1Column("doubled", "integer", "a * 2"), L1Column("b"))


def layout(pg, schema: str) -> dict:
    """Columns (name, type, collation, nullable, default), constraints and indexes by table."""
    tables = {}
    for table in ("L0", "L1"):
        columns = pg.execute(
            "SELECT column_name, data_type, collation_name, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
            "ORDER BY ordinal_position",
            (schema, table),
        ).fetchall()
        indexes = pg.execute(
            "SELECT indexname, replace(indexdef, %s, '') FROM pg_indexes "
            "WHERE schemaname = %s AND tablename = %s ORDER BY indexname",
            (sql.Identifier(schema).as_string(pg), schema, table),
        ).fetchall()
        options = pg.execute(
            "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s",
            (schema, table),
        ).fetchall()
        tables[table] = (
            [column[:4] + (str(column[4]).replace(schema, "<schema>"),) for column in columns],
            indexes,
            options,
        )
    return tables


@pytest.mark.parametrize("mode", [Mode.SNAPSHOT, Mode.INCREMENTAL])
def test_empty_tables_are_laid_out_as_a_first_load_leaves_them(pg, mode):
    options = {"l1_indexes": ("doubled",)}
    empty = make_dataset(mode, l1=L1, name="empty", **options)
    loaded = make_dataset(mode, l1=L1, name="loaded", **options)

    assert create_empty_tables(pg, empty) is True
    load_bytes(pg, loaded, b"a,b\n1,x\n", "first.csv")

    assert layout(pg, empty.schema) == layout(pg, loaded.schema)
    assert rows(pg, empty, "L0") == [] and rows(pg, empty, "L1") == []


@pytest.mark.parametrize("mode", [Mode.SNAPSHOT, Mode.INCREMENTAL])
def test_a_load_into_empty_tables_gives_what_a_load_into_new_tables_gives(pg, mode):
    data = b"a,b\n3,z\n1,x\n3,z\n2,y\n"
    empty = make_dataset(mode, l1=L1, name="empty")
    new = make_dataset(mode, l1=L1, name="new")
    create_empty_tables(pg, empty)

    load_bytes(pg, empty, data, "one.csv")
    load_bytes(pg, new, data, "one.csv")
    load_bytes(pg, empty, b"a,b\n4,w\n", "two.csv")
    load_bytes(pg, new, b"a,b\n4,w\n", "two.csv")

    columns = "a, b, datafile_created"
    assert sorted(rows(pg, empty, "L0", columns)) == sorted(rows(pg, new, "L0", columns))
    assert sorted(rows(pg, empty, "L1", "a, doubled, b")) == sorted(
        rows(pg, new, "L1", "a, doubled, b")
    )


def test_creating_the_empty_tables_again_changes_nothing(pg):
    dataset = make_dataset(Mode.INCREMENTAL, l1=L1)
    create_empty_tables(pg, dataset)
    load_bytes(pg, dataset, b"a,b\n1,x\n", "one.csv")

    assert create_empty_tables(pg, dataset) is False
    assert rows(pg, dataset, "L0", "a, b") == [(1, "x")]


def test_every_built_in_source_has_its_tables_and_a_second_call_adds_none(pg):
    schemas = {schema for source in CATALOGUE for schema, _ in source.tables}
    for schema in schemas:
        pg.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    assert create_builtin_tables() == [source.id for source in CATALOGUE]
    assert create_builtin_tables() == []
    for source in CATALOGUE:
        for schema, table in source.tables:
            count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            assert pg.execute(count).fetchone() == (0,)


def test_the_first_ingest_into_empty_tables_numbers_rows_in_file_order(pg, store, settings):
    """The first file builds the tables anew (keys after the rows): ids follow the file."""
    dataset = make_dataset(Mode.SNAPSHOT, l1=L1)
    source = Source(id="test.things", dataset=dataset, folder="test/things")
    create_empty_tables(pg, dataset)
    store("test/things/one.csv", b"a,b\n3,z\n1,x\n2,y\n")

    [run] = ingest_sources(Catalogue([source]), [source.id], settings.DATASETS_FOLDER)

    assert run.failures == []
    assert rows(pg, dataset, "L0", "id, a") == [(1, 3), (2, 1), (3, 2)]
    assert rows(pg, dataset, "L1", "data_source_row_id, doubled") == [(1, 6), (2, 2), (3, 4)]
