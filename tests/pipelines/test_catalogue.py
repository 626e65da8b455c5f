"""Each source of the catalogue ingests a small file in its real format into the tables that
SOURCES.md describes."""

import datetime
from decimal import Decimal

import pytest

from pipelines.catalogue import CATALOGUE, EU_YEARS
from pipelines.ingesting import ingest_sources
from pipelines.models import DatafileRegistry
from tests.pipelines import source_files
from tests.pipelines.conftest import rows, zip_bytes


@pytest.fixture
def ingest(pg, settings, store):
    """Store files for a source and run its ingest; returns the source's dataset."""

    def run(source_id: str, files: dict[str, bytes]):
        source = CATALOGUE.get(source_id)
        for name, data in files.items():
            store(f"{source.folder}/{name}", data)
        [result] = ingest_sources(CATALOGUE, [source_id], settings.DATASETS_FOLDER)
        assert result.failures == []
        return source.dataset

    return run


def test_ons_postcode_directory_appends_each_release_with_its_publication_date(pg, ingest):
    dataset = ingest(
        "ons.postcode_directory",
        {
            "ONSPD_MAY_2019_UK.zip": source_files.ONS_MAY_2019,
            "ONSPD_JUL_2019_UK.zip": source_files.ONS_JUL_2019,
        },
    )

    assert rows(pg, dataset, "L0", "datafile_created, pcds, dointr, doterm") == [
        ("ONSPD_MAY_2019_UK.zip", "AB1 0AA", "198001", None),
        ("ONSPD_MAY_2019_UK.zip", "AB1 0AB", "198001", "199606"),
        ("ONSPD_JUL_2019_UK.zip", "AB1 0AA", "200001", "199606"),
        ("ONSPD_JUL_2019_UK.zip", "AB1 0AB", "198001", "199606"),
        ("ONSPD_JUL_2019_UK.zip", "AB1 0AD", "198001", None),
    ]
    may, jul = datetime.date(2019, 5, 1), datetime.date(2019, 7, 1)
    assert rows(pg, dataset, "L1", "pcds, dointr, doterm, publication_date, lat, imd") == [
        ("AB1 0AA", datetime.date(1980, 1, 1), None, may, "57.101474", "6808"),
        ("AB1 0AB", datetime.date(1980, 1, 1), datetime.date(1996, 6, 1), may, "57.101474", "6808"),
        ("AB1 0AA", datetime.date(2000, 1, 1), datetime.date(1996, 6, 1), jul, "57.101474", "6808"),
        ("AB1 0AB", datetime.date(1980, 1, 1), datetime.date(1996, 6, 1), jul, "57.101474", "6808"),
        ("AB1 0AD", datetime.date(1980, 1, 1), None, jul, "57.101474", "6808"),
    ]
    l1_columns = [
        name
        for (name,) in pg.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'ons.postcode_directory' AND table_name = 'L1' "
            "ORDER BY ordinal_position"
        ).fetchall()
    ]
    assert len(l1_columns) == 2 + 51 and l1_columns[-1] == "publication_date"


def test_ons_zip_without_the_csv_fails_naming_the_members_it_holds(pg, settings, store):
    source = CATALOGUE.get("ons.postcode_directory")
    members = {"Data/readme.txt": b"x", "Data/ONSPD_AUG_2020_UK.txt": b"pcd\n"}
    store(f"{source.folder}/ONSPD_AUG_2020_UK.zip", zip_bytes(members))

    [result] = ingest_sources(CATALOGUE, [source.id], settings.DATASETS_FOLDER)

    [(name, message)] = result.failures
    assert name == "ONSPD_AUG_2020_UK.zip"
    assert message.startswith("ONSPD_AUG_2020_UK.zip: the zip holds no member matching ")
    assert message.endswith("; it holds Data/ONSPD_AUG_2020_UK.txt, Data/readme.txt")


def test_dit_reference_postcodes_snapshot_with_quoted_empties_as_null(pg, ingest):
    dataset = ingest("dit.reference_postcodes", {"snapshot1.csv": source_files.REFERENCE_POSTCODES})

    assert rows(
        pg,
        dataset,
        "L1",
        "postcode, local_authority_district_name, local_enterprise_partnership_lep1_code, "
        "date_of_introduction, date_of_termination",
    ) == [
        ("AB10 1AA", "Aberdeen City", None, datetime.date(1980, 1, 1), datetime.date(1990, 6, 1)),
        ("HU4 7SW", "East Riding of Yorkshire", "E37000018", datetime.date(2001, 6, 1), None),
    ]
    assert rows(pg, dataset, "L0", "datafile_created, datafile_updated") == [
        ("snapshot1.csv", "snapshot1.csv"),
        ("snapshot1.csv", "snapshot1.csv"),
    ]


def test_dit_baci_renames_columns_and_reads_zero_padded_codes(pg, ingest):
    dataset = ingest("dit.baci", {"baci.csv": source_files.BACI})

    assert rows(
        pg,
        dataset,
        "L1",
        "year, product_category, exporter, importer, trade_flow_value, quantity",
    ) == [
        (1995, 10519, 4, 251, Decimal("1.27"), Decimal("0.126")),
        (1995, 10519, 4, 381, Decimal("11.6"), Decimal("4")),
    ]


def test_dit_eu_country_membership_unpivots_each_year(pg, ingest):
    dataset = ingest("dit.eu_country_membership", {"eu_spine.csv": source_files.eu_membership()})

    l1 = rows(pg, dataset, "L1", "country, iso3, year, tariff_code")
    assert len(l1) == 3 * len(EU_YEARS)
    membership = {(country, year): code for country, _, year, code in l1}
    assert membership[("Austria", 1994)] is None
    assert membership[("Austria", 1995)] == "EUN"
    assert membership[("Belgium", 1958)] == "EUN"
    assert membership[("Bulgaria", 2006)] is None
    assert membership[("Bulgaria", 2018)] == "EUN"


def test_comtrade_country_list_in_windows_1252_with_bare_cr_lines(pg, ingest):
    dataset = ingest("comtrade.country_code_and_iso", {"country_list.csv": source_files.COMTRADE})

    assert rows(
        pg,
        dataset,
        "L1",
        "cty_code, cty_name_english, iso2_digit_alpha, iso3_digit_alpha, end_valid_year",
    ) == [
        (0, "World", "WL", "WLD", "2061"),
        (4, "Afghanistan", "AF", "AFG", "2061"),
        (384, "C\u00f4te d'Ivoire", "CI", "CIV", "2061"),
        (899, "Areas, nes", None, None, "2061"),
        (918, "European Union", None, "EU2", None),
    ]


def test_world_bank_bound_rates_l1_keeps_the_newest_nomenclature(pg, ingest):
    dataset = ingest(
        "world_bank.bound_rates",
        {
            "bound_rates.csv": source_files.BOUND_RATES,
            "bound_rates_multiple_nomen_codes.csv": source_files.BOUND_RATES_MULTIPLE_NOMEN_CODES,
        },
    )

    assert sorted(rows(pg, dataset, "L0", "nomen_code, reporter, product, bound_rate")) == [
        ("H0", 4, 10111, Decimal("10")),
        ("H0", 8, 10111, Decimal("10")),
        ("H1", 8, 10111, Decimal("5")),
        ("H2", 8, 10111, Decimal("7")),
    ]
    assert sorted(rows(pg, dataset, "L1", "reporter, product, bound_rate")) == [
        (4, 10111, Decimal("10")),
        (8, 10111, Decimal("7")),
    ]


def test_world_bank_tariff_is_l0_only_and_reads_padded_and_blank_prefixed_numbers(pg, ingest):
    dataset = ingest("world_bank.tariff", {"tariff.csv": source_files.TARIFF})

    assert rows(
        pg, dataset, "L0", "reporter, year, product, partner, duty_type, simple_average"
    ) == [
        (48, 1999, 201, 0, "AHS", Decimal("5")),
        (262, 2005, 201, 380, "BND", Decimal("40")),
        (266, 1998, 201, 0, "AHS", Decimal("20")),
    ]
    # No L1 of its own: the schema's L1 is the transform's, untouched by the load.
    assert pg.execute(
        "SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables "
        "WHERE schemaname = 'world_bank.tariff'"
    ).fetchone() == (["L0", "L1"],)
    assert pg.execute('SELECT count(*) FROM "world_bank.tariff"."L1"').fetchone() == (0,)
    assert DatafileRegistry.objects.get(source="world_bank.tariff").state == "processed"


def test_hmrc_exporters_reads_a_zip_of_zips_of_mac_roman_tab_separated_lines(pg, settings, store):
    source = CATALOGUE.get("hmrc.exporters")
    store(f"{source.folder}/exporters_2016_mock.zip", source_files.HMRC_EXPORTERS)

    [result] = ingest_sources(CATALOGUE, [source.id], settings.DATASETS_FOLDER)

    assert result.failures == [] and result.skipped_parts == 1
    dataset = source.dataset
    assert rows(pg, dataset, "L0", "datafile_created, company_name, address1, address3") == [
        ("exporters_2016_mock.zip", "ABC Company Ltd ", "1 - 3  Street", ""),
        ("exporters_2016_mock.zip", "AAA Limit\u00e9d", "", ""),
        ("exporters_2016_mock.zip", "BBB Limited", "AAA HOUSE", ""),
    ]
    assert rows(
        pg, dataset, "L1", "datetime, company_name, address, postcode, export_item_codes"
    ) == [
        (
            datetime.datetime(2016, 1, 1),
            "abc company ltd",
            "1 - 3  street avenue",
            "AB12CD",
            ["01012100", "02023000"],
        ),
        (datetime.datetime(2016, 1, 1), "aaa limit\u00e9d", None, "ZZ99ZZ", []),
        (datetime.datetime(2016, 2, 1), "bbb limited", "aaa house town", "XY11XY", ["84713000"]),
    ]
    notes = DatafileRegistry.objects.get(source="hmrc.exporters").notes
    assert "exporters1601.zip/exporters1601 line 2" in notes


@pytest.mark.parametrize("source_id", ["hmrc.exporters", "companies_house.accounts_legacy"])
def test_a_parsed_source_refuses_a_file_that_is_not_a_zip_naming_it(pg, settings, store, source_id):
    source = CATALOGUE.get(source_id)
    store(f"{source.folder}/broken.zip", b"<html>an error page, not a zip</html>")

    [result] = ingest_sources(CATALOGUE, [source.id], settings.DATASETS_FOLDER)

    [(name, message)] = result.failures
    assert name == "broken.zip" and message == "broken.zip: File is not a zip file"
