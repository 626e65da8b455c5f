"""Every SPIRE table is its own source: its keys and checks hold, and a load replaces it."""

import datetime

import pytest
from psycopg import sql

from pipelines.catalogue import CATALOGUE
from pipelines.ingesting import ingest_sources
from pipelines.models import DatafileRegistry
from pipelines.spire import SCHEMA, TABLES
from tests.pipelines import source_files


@pytest.fixture
def spire(pg, settings, store):
    """Store a SPIRE table's file and ingest it; returns the run. SPIRE's rows are removed
    afterwards (its schema is not a dataset's, so the usual reset leaves it)."""

    def run(table: str, name: str, data: bytes):
        source = CATALOGUE.get(f"dit.spire.{table}")
        store(f"{source.folder}/{name}", data)
        [result] = ingest_sources(CATALOGUE, [source.id], settings.DATASETS_FOLDER)
        return result

    yield run
    names = sql.SQL(", ").join(sql.Identifier(SCHEMA, table.name) for table in TABLES)
    pg.execute(sql.SQL("TRUNCATE {}").format(names))


def spire_rows(pg, table: str, columns: str) -> list:
    query = sql.SQL("SELECT {} FROM {} ORDER BY id").format(
        sql.SQL(columns), sql.Identifier(SCHEMA, table)
    )
    return pg.execute(query).fetchall()


def test_every_spire_table_is_its_own_source_with_an_id_key(pg):
    ids = [source.id for source in CATALOGUE if source.id.startswith("dit.spire.")]
    assert len(ids) == 25 == len(set(ids))
    assert "dit.spire" not in CATALOGUE
    keyed = pg.execute(
        "SELECT count(*) FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
        "WHERE c.table_schema = 'spire' AND c.constraint_type = 'PRIMARY KEY' "
        "AND k.column_name = 'id'"
    ).fetchone()[0]
    assert keyed == 25


def test_spire_file_loads_with_timestamps_without_padding_and_multiline_values(pg, spire):
    assert spire("batches", "batches.csv", source_files.SPIRE_BATCHES).failures == []
    assert spire("footnotes", "footnotes.csv", source_files.SPIRE_FOOTNOTES).failures == []

    assert spire_rows(pg, "batches", "id, batch_ref, start_date, approve_date") == [
        (1, "C1", None, datetime.datetime(2019, 3, 12)),
        (2, "B2", datetime.datetime(2019, 1, 1), datetime.datetime(2019, 2, 1, 9, 30)),
    ]
    assert spire_rows(pg, "footnotes", "id, text") == [
        (1, "a footnote\nover two lines"),
        (2, None),
    ]


def test_a_spire_load_replaces_the_table_instead_of_appending(pg, spire):
    spire("batches", "batches_1.csv", source_files.SPIRE_BATCHES)
    newer = source_files.spire_csv(
        source_files.SPIRE_BATCHES.decode().splitlines()[0],
        '"1","C1","RELEASED",,,"2020-1-1 00:00:00",,',
    )

    assert spire("batches", "batches_2.csv", newer).failures == []

    assert spire_rows(pg, "batches", "id, approve_date") == [(1, datetime.datetime(2020, 1, 1))]


def test_a_spire_row_breaking_a_check_fails_the_file_and_keeps_the_table(pg, spire):
    spire("batches", "batches_1.csv", source_files.SPIRE_BATCHES)
    bad = source_files.spire_csv(
        source_files.SPIRE_BATCHES.decode().splitlines()[0],
        '"1","C1","RELEASED",,,"2020-1-1 00:00:00",,',
        '"3","B3","UNKNOWN","2019-1-1 00:00:00","2019-1-2 00:00:00","2019-2-1 00:00:00",,',
    )

    result = spire("batches", "batches_2.csv", bad)

    [(name, message)] = result.failures
    assert name == "batches_2.csv"
    assert "line 3" in message and "batches_check_0" in message
    assert len(spire_rows(pg, "batches", "id")) == 2
    assert DatafileRegistry.objects.get(file_name="batches_2.csv").state == "failed"


def test_a_spire_child_referring_to_a_missing_parent_fails_with_the_key(pg, spire):
    spire("batches", "batches.csv", source_files.SPIRE_BATCHES)
    orphan = source_files.SPIRE_APPLICATIONS.replace(b'"2",\n', b'"9",\n')

    [(_, message)] = spire("applications", "applications.csv", orphan).failures

    assert "applications_batch_id_fkey" in message and "(batch_id)=(9)" in message
    assert spire_rows(pg, "applications", "ela_grp_id") == []


def test_a_spire_parent_can_be_replaced_while_children_refer_to_it(pg, spire):
    spire("batches", "batches_1.csv", source_files.SPIRE_BATCHES)
    assert spire("applications", "applications.csv", source_files.SPIRE_APPLICATIONS).failures == []

    again = spire("batches", "batches_2.csv", source_files.SPIRE_BATCHES)
    dropped = source_files.spire_csv(
        source_files.SPIRE_BATCHES.decode().splitlines()[0],
        '"1","C1","RELEASED",,,"2019-3-12 00:00:00",,',
    )
    refused = spire("batches", "batches_3.csv", dropped)

    assert again.failures == []
    [(_, message)] = refused.failures
    assert "(id)=(2)" in message and "applications" in message
    assert len(spire_rows(pg, "batches", "id")) == 2


def test_spire_tables_without_an_id_of_their_own_are_paged_by_a_generated_one(pg, spire):
    spire("batches", "batches.csv", source_files.SPIRE_BATCHES)
    spire("applications", "applications.csv", source_files.SPIRE_APPLICATIONS)

    ids = spire_rows(pg, "applications", "id, ela_grp_id")

    assert [ela for _, ela in ids] == [10, 11]
    assert ids[0][0] < ids[1][0]
