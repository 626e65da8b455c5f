"""The World Bank tariff transform against rows worked out by hand (SOURCES.md §3.8)."""

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection

from pipelines.catalogue import CATALOGUE
from pipelines.ingesting import ingest_sources
from pipelines.world_bank_tariffs import TransformOptions, build_products, prepare
from tests.pipelines import source_files

TRANSFORM = "world_bank.tariff.transformed"
YEARS = (2000, 2002)
AUT, BEL, FRA, ETH, SDN, ZAF, USA = 40, 56, 251, 231, 729, 710, 840
COUNTRIES = (AUT, BEL, FRA, ETH, SDN, ZAF, USA)
PAIRS = len(COUNTRIES) * (len(COUNTRIES) - 1)


@pytest.fixture
def inputs(pg, settings, store):
    """The transform's four inputs, ingested from files in their real formats."""
    files = {
        "dit.eu_country_membership": ("eu_spine.csv", source_files.transform_eu_membership()),
        "comtrade.country_code_and_iso": ("country_list.csv", source_files.TRANSFORM_COMTRADE),
        "world_bank.bound_rates": ("bound_rates.csv", source_files.TRANSFORM_BOUND_RATES),
        "world_bank.tariff": ("tariff.csv", source_files.TRANSFORM_TARIFFS),
    }
    for source_id, (name, data) in files.items():
        store(f"{CATALOGUE.get(source_id).folder}/{name}", data)
    runs = ingest_sources(CATALOGUE, list(files), settings.DATASETS_FOLDER)
    assert all(run.failures == [] for run in runs)


def run_transform(settings, **options):
    [run] = ingest_sources(
        CATALOGUE, [TRANSFORM], settings.DATASETS_FOLDER, options={"years": YEARS, **options}
    )
    return run


def assumed(pg, product: int) -> dict[tuple[int, int], list]:
    """(reporter, partner) -> the assumed tariff of each year, in year order."""
    table = {}
    for reporter, partner, tariff in pg.execute(
        'SELECT reporter, partner, assumed_tariff FROM "world_bank.tariff"."L1" '
        "WHERE product = %s ORDER BY reporter, partner, year",
        (product,),
    ):
        table.setdefault((reporter, partner), []).append(None if tariff is None else float(tariff))
    return table


def test_transform_gives_the_tariffs_worked_out_by_hand(pg, settings, inputs):
    run = run_transform(settings)

    assert run.failures == [] and run.rows_loaded == 2 * PAIRS * 3
    tariffs = assumed(pg, 201)
    assert len(tariffs) == PAIRS and FRA in {reporter for reporter, _ in tariffs}
    # An MFN rate against the world, then inherited; an applied rate outranks it.
    assert tariffs[USA, AUT] == [5, 5, 5]
    assert tariffs[USA, ZAF] == [5, 2, 2]
    # EU members take the EU's applied rate, inherited in later years; EU-EU pairs are 0.
    assert tariffs[AUT, USA] == tariffs[FRA, USA] == [3, 3, 3]
    assert tariffs[AUT, BEL] == tariffs[FRA, AUT] == [0, 0, 0]
    # Nothing for the pair: the world average of MFN rates that year, else nothing.
    assert tariffs[AUT, ZAF] == [5, None, 4]
    assert tariffs[ZAF, USA] == tariffs[ETH, SDN] == [5, None, None]
    # Applied rates; towards an EU member without one, the average for EU members.
    assert tariffs[ZAF, AUT] == [6, 6, 6]
    assert tariffs[ZAF, FRA] == [7, 7, 7]
    # Sudan's old code counts as Sudan.
    assert tariffs[SDN, USA] == [9, 9, 9]
    assert assumed(pg, 301)[ZAF, USA] == [1.5, 1.5, 1.5]
    assert assumed(pg, 301)[USA, ZAF] == [1.5, None, None]
    row = pg.execute(
        "SELECT app_rate, mfn_rate, bnd_rate, eu_rep_rate, eu_part_rate, eu_eu_rate, "
        'world_average FROM "world_bank.tariff"."L1" '
        "WHERE product = 201 AND year = 2000 AND reporter = %s AND partner = %s",
        (ZAF, AUT),
    ).fetchone()
    assert row == (Decimal("6.000"), None, None, None, Decimal("7.000"), None, Decimal("5.000"))
    assert pg.execute(
        'SELECT mfn_rate, bnd_rate FROM "world_bank.tariff"."L1" '
        "WHERE product = 201 AND year = 2000 AND reporter = %s AND partner = %s",
        (USA, BEL),
    ).fetchone() == (Decimal("5.000"), Decimal("12.000"))


def test_transform_of_chosen_products_only(pg, settings, inputs):
    run = run_transform(settings, products="301")

    assert run.failures == []
    products = pg.execute('SELECT DISTINCT product FROM "world_bank.tariff"."L1"').fetchall()
    assert products == [(301,)]


def test_continue_keeps_the_products_an_interrupted_run_built(pg, settings, inputs):
    # What a run killed after its first batch leaves: "L1.temp" holding product 201.
    options = TransformOptions(years=YEARS)
    prepare(pg, options)
    build_products(pg, [201])
    pg.execute('UPDATE "world_bank.tariff"."L1.temp" SET world_average = -1')

    run = run_transform(settings, **{"continue": True})

    assert run.failures == []
    counts = pg.execute(
        'SELECT product, count(*), min(world_average) FROM "world_bank.tariff"."L1" '
        "GROUP BY product ORDER BY product"
    ).fetchall()
    assert [(product, count) for product, count, _ in counts] == [
        (201, PAIRS * 3),
        (301, PAIRS * 3),
    ]
    assert counts[0][2] == -1  # kept, not built again
    assert pg.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'world_bank.tariff'"
    ).fetchone() == (2,)


def test_transform_failure_is_reported_with_its_cause_and_keeps_the_served_table(
    pg, settings, inputs
):
    run_transform(settings, products="201")
    pg.execute('ALTER TABLE "comtrade.country_code_and_iso"."L1" RENAME TO "L1_away"')
    try:
        run = run_transform(settings)
    finally:
        pg.execute('ALTER TABLE "comtrade.country_code_and_iso"."L1_away" RENAME TO "L1"')

    [(_, message)] = run.failures
    assert "reading the transform's inputs" in message
    assert '"comtrade.country_code_and_iso.L1" does not exist' in message
    assert len(assumed(pg, 201)) == PAIRS
    assert not connection.in_atomic_block


def test_products_that_are_not_numbers_are_refused(pg, settings, inputs):
    run = run_transform(settings, products="201,abc")

    [(_, message)] = run.failures
    assert "products must be whole numbers" in message and "abc" in message


def test_ingest_command_runs_the_transform_only_when_asked(pg, inputs):
    count = 'SELECT count(DISTINCT product), count(*) FROM "world_bank.tariff"."L1"'
    call_command("ingest_sources", "--all", stdout=io.StringIO())
    assert pg.execute(count).fetchone() == (0, 0)

    out = io.StringIO()
    call_command("ingest_sources", "--transform", "--products", "201", stdout=out)

    years = 2018 - 2000 + 1
    assert pg.execute(count).fetchone() == (1, PAIRS * years)
    assert f"1 source(s): 1 file(s) processed, 0 failed, 0 skipped; {PAIRS * years} rows" in (
        out.getvalue()
    )


def test_a_transform_with_nothing_to_build_fails_saying_so_and_keeps_the_served_table(
    pg, settings, inputs
):
    run_transform(settings, products="201")

    run = run_transform(settings, products="999")

    [(_, message)] = run.failures
    assert message == (
        "world_bank.tariff: nothing to build: its L0 holds no tariffs of the products 999 "
        "from 2000 on (ingest world_bank.tariff first); the served L1 is as it was"
    )
    assert (run.processed, run.rows_loaded) == (0, 0)
    assert len(assumed(pg, 201)) == PAIRS


def test_a_continued_transform_with_nothing_to_build_keeps_the_served_table(pg, settings, inputs):
    run_transform(settings, products="201")

    run = run_transform(settings, products="999", **{"continue": True})

    [(_, message)] = run.failures
    assert "nothing to build" in message
    assert len(assumed(pg, 201)) == PAIRS


def test_the_replaced_transform_table_is_kept_as_an_earlier_version(pg, settings, inputs):
    run_transform(settings, products="201")
    first = pg.execute("""SELECT '"world_bank.tariff"."L1"'::regclass::oid""").fetchone()[0]

    run_transform(settings)

    versions = pg.execute(
        "SELECT table_oid, replaced IS NOT NULL FROM dss_versions.versions "
        "WHERE schema_name = 'world_bank.tariff' AND table_name = 'L1' ORDER BY id"
    ).fetchall()
    current = pg.execute("""SELECT '"world_bank.tariff"."L1"'::regclass::oid""").fetchone()[0]
    assert versions[-2:] == [(first, True), (current, False)]
    retained = pg.execute(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = %s",
        (first,),
    ).fetchone()
    assert retained == ("dss_versions",)
