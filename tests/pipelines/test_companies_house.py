"""Companies House bulk accounts: iXBRL and XBRL documents into rows; a broken document is
left out and counted, never failing the zip."""

import datetime
from decimal import Decimal

from pipelines.catalogue import CATALOGUE
from pipelines.companies_house import COLUMNS, parse_accounts
from pipelines.ingesting import ingest_sources
from pipelines.models import DatafileRegistry
from tests.pipelines import source_files
from tests.pipelines.conftest import rows

SOURCE = "companies_house.accounts_legacy"
ZIP = "Accounts_Bulk_Data-2020-04-01.zip"


def test_bulk_zip_gives_a_row_per_document_period_and_skips_the_broken_document(
    pg, settings, store
):
    source = CATALOGUE.get(SOURCE)
    store(f"{source.folder}/{ZIP}", source_files.ACCOUNTS)

    [run] = ingest_sources(CATALOGUE, [SOURCE], settings.DATASETS_FOLDER)

    assert run.failures == [] and run.processed == 1 and run.skipped_parts == 1
    assert rows(
        pg,
        source.dataset,
        "L0",
        "datafile_created, run_code, company_id, date, file_type, taxonomy, period_start, "
        "period_end, entity_current_legal_name, company_dormant",
    ) == [
        (
            ZIP,
            "Prod223_2798",
            "12345",
            datetime.date(2020, 3, 31),
            "html",
            "",
            datetime.date(2020, 3, 31),
            datetime.date(2020, 3, 31),
            "BadCorp2 Limited",
            False,
        ),
        (
            ZIP,
            "Prod223_2798",
            "12345",
            datetime.date(2020, 3, 31),
            "html",
            "",
            datetime.date(2019, 3, 31),
            datetime.date(2019, 3, 31),
            "BadCorp2 Limited",
            False,
        ),
        (
            ZIP,
            "Prod223_1859",
            "1234",
            datetime.date(2017, 2, 27),
            "xml",
            "http://www.xbrl.org/uk/fr/gaap/pt/2004-12-01",
            datetime.date(2016, 7, 31),
            datetime.date(2016, 7, 31),
            "BadCorp Limited",
            False,
        ),
        (
            ZIP,
            "Prod223_1859",
            "1234",
            datetime.date(2017, 2, 27),
            "xml",
            "http://www.xbrl.org/uk/fr/gaap/pt/2004-12-01",
            datetime.date(2015, 7, 31),
            datetime.date(2015, 7, 31),
            "BadCorp Limited",
            False,
        ),
    ]
    html_2020, html_2019, xml_2016, xml_2015 = rows(
        pg,
        source.dataset,
        "L0",
        "current_assets, net_current_assets_liabilities, shareholder_funds, "
        "creditors_due_within_one_year, average_number_employees_during_period, "
        "balance_sheet_date, companies_house_registered_number, tangible_fixed_assets, "
        "profit_loss_for_period, debtors",
    )
    assert html_2020[:6] == (
        Decimal("96264"),
        Decimal("96264"),
        Decimal("96264"),
        Decimal("-1234000"),
        Decimal("1"),
        datetime.date(2020, 3, 31),
    )
    assert html_2019[:4] == (Decimal("96264"), Decimal("96264"), Decimal("96264"), None)
    # The first candidate's value wins per period (FixedAssets before TangibleFixedAssets).
    assert xml_2016[6:] == ("01234", Decimal("251044"), Decimal("-120"), None)
    assert xml_2015[7:] == (Decimal("251160"), None, None)
    entry = DatafileRegistry.objects.get(source=SOURCE)
    assert entry.state == "processed"
    assert "skipped 1 unreadable part(s): test_datafile_1/Prod223_2798_99999_20200331.html" in (
        entry.notes
    )


def test_a_document_with_a_value_that_is_no_number_is_left_out_with_why(tmp_path):
    broken = source_files.ACCOUNTS_XBRL.replace(b">251044<", b">two hundred<")
    bulk = source_files.accounts_zip(
        {
            "Prod223_1859_1234_20170227.xml": broken,
            "Prod223_2798_12345_20200331.html": source_files.ACCOUNTS_IXBRL,
            "notes.xml": source_files.ACCOUNTS_XBRL,
        }
    )
    path = tmp_path / "bulk.zip"
    path.write_bytes(bulk)

    with path.open("rb") as stream:
        parsed = parse_accounts(stream, "bulk.zip")
        parsed_rows = list(parsed.rows)

    assert [row[COLUMNS.index("company_id")] for row in parsed_rows] == ["12345", "12345"]
    assert parsed.skipped == [
        ("test_datafile_1/Prod223_1859_1234_20170227.xml", "'two hundred' is not a number"),
        (
            "test_datafile_1/notes.xml",
            "the name does not follow Prod<run>_<n>_<company>_<YYYYMMDD>.html|xml",
        ),
    ]
