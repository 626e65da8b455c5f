"""The service's sources (see SOURCES.md): the ones the framework covers declaratively."""

from django.conf import settings
from psycopg import sql

from pipelines.companies_house import COLUMN_TYPES as ACCOUNTS_COLUMN_TYPES
from pipelines.companies_house import COLUMNS as ACCOUNTS_COLUMNS
from pipelines.companies_house import parse_accounts
from pipelines.datasets import Column, Dataset, FileFormat, L1Column, L1Context, Mode
from pipelines.hmrc_exporters import COLUMNS as HMRC_COLUMNS
from pipelines.hmrc_exporters import parse_exporters
from pipelines.sources import Catalogue, Listing, Source, StoredName
from pipelines.spire import spire_sources
from pipelines.steps import ParsedRows
from pipelines.world_bank_tariffs import OUTPUT as WORLD_BANK_TARIFFS_OUTPUT
from pipelines.world_bank_tariffs import TransformSteps

ONS_LISTING_URL = (
    "https://geoportal.statistics.gov.uk/search?sort=-created&tags=ons%20postcode%20directory"
)

HMRC_LISTING_URL = "https://www.uktradeinfo.com/Statistics/Pages/DataDownloads.aspx"
COMPANIES_HOUSE_LISTING_URL = "http://download.companieshouse.gov.uk/en_accountsdata.html"

ONS_COLUMNS = [
    "pcd",
    "pcd2",
    "pcds",
    "dointr",
    "doterm",
    "oscty",
    "ced",
    "oslaua",
    "osward",
    "parish",
    "usertype",
    "oseast1m",
    "osnrth1m",
    "osgrdind",
    "oshlthau",
    "nhser",
    "ctry",
    "rgn",
    "streg",
    "pcon",
    "eer",
    "teclec",
    "ttwa",
    "pct",
    "nuts",
    "statsward",
    "oa01",
    "casward",
    "park",
    "lsoa01",
    "msoa01",
    "ur01ind",
    "oac01",
    "oa11",
    "lsoa11",
    "msoa11",
    "wz11",
    "ccg",
    "bua11",
    "buasd11",
    "ru11ind",
    "oac11",
    "lat",
    "long",
    "lep1",
    "lep2",
    "pfa",
    "imd",
    "calncv",
    "stp",
]

ONS_MONTH_DATES = {
    "dointr": "to_date(dointr, 'YYYYMM')",
    "doterm": "to_date(doterm, 'YYYYMM')",
}


def _ons_listing_url() -> str:
    return settings.ONS_POSTCODE_DIRECTORY_LISTING_URL or ONS_LISTING_URL


ons_postcode_directory = Source(
    id="ons.postcode_directory",
    folder="ons/postcode_directory",
    unpack=False,
    origin=Listing(
        url=_ons_listing_url,
        link_pattern=r".*/datasets/ons-postcode-directory-(?P<date>[a-zA-Z]+-\d{4})$",
        link_date_format="%B-%Y",
        download_pattern=r".*/sharing/rest/content/items/\w+/data$",
        stored_name=StoredName("ONSPD_{date}_UK.zip", "%b_%Y", upper_case=True),
    ),
    dataset=Dataset(
        organisation="ons",
        name="postcode_directory",
        mode=Mode.INCREMENTAL,
        columns=tuple(Column(name) for name in ONS_COLUMNS),
        file_format=FileFormat(
            force_null=True,
            member_pattern=r"(.*?)/ONSPD_(?P<date>\w{3}_\d{4})_UK\.csv$",
            # Releases add columns (2022: oa21, lsoa21, msoa21); the load lists them.
            ignore_extra_columns=True,
        ),
        l1_columns=(
            *(
                L1Column(
                    name, "date" if name in ONS_MONTH_DATES else "text", ONS_MONTH_DATES.get(name)
                )
                for name in ONS_COLUMNS
            ),
            # The release's month is in the CSV member's name: .../ONSPD_MAY_2019_UK.csv.
            L1Column(
                "publication_date",
                "date",
                r"to_date(substring(%(member)s::text from '_([A-Za-z]{3}_\d{4})_UK'), 'MON_YYYY')",
            ),
        ),
        l1_indexes=("pcds",),
    ),
)

REFERENCE_POSTCODE_COLUMNS = (
    *(
        Column(name)
        for name in (
            "postcode",
            "local_authority_district_code",
            "local_authority_district_name",
            "local_enterprise_partnership_lep1_code",
            "local_enterprise_partnership_lep1_name",
            "local_enterprise_partnership_lep2_code",
            "local_enterprise_partnership_lep2_name",
            "region_code",
            "region_name",
            "national_grid_ref_easting",
            "national_grid_ref_northing",
        )
    ),
    Column("date_of_introduction", "date"),
    Column("date_of_termination", "date"),
)

dit_reference_postcodes = Source(
    id="dit.reference_postcodes",
    folder="dit/reference_postcodes",
    dataset=Dataset(
        organisation="dit",
        name="reference_postcodes",
        mode=Mode.SNAPSHOT,
        columns=REFERENCE_POSTCODE_COLUMNS,
        file_format=FileFormat(force_null=True),
        l1_columns=tuple(
            L1Column(column.name, column.type) for column in REFERENCE_POSTCODE_COLUMNS
        ),
        l1_indexes=("postcode",),
    ),
)

dit_baci = Source(
    id="dit.baci",
    folder="dit/baci",
    dataset=Dataset(
        organisation="dit",
        name="baci",
        mode=Mode.INCREMENTAL,
        # A BACI bundle holds one CSV per year beside the country and product code lists.
        file_format=FileFormat(
            member_pattern=r"(?i)(^|/)(?!country_codes|product_codes)[^/]+\.csv$",
            many_members=True,
        ),
        columns=(
            Column("t", "integer"),
            Column("hs6", "integer"),
            Column("i", "integer"),
            Column("j", "integer"),
            Column("v", "numeric"),
            Column("q", "numeric"),
        ),
        l1_columns=(
            L1Column("year", "integer", "t"),
            L1Column("product_category", "integer", "hs6"),
            L1Column("exporter", "integer", "i"),
            L1Column("importer", "integer", "j"),
            L1Column("trade_flow_value", "numeric", "v"),
            L1Column("quantity", "numeric", "q"),
        ),
    ),
)

EU_YEARS = tuple(str(year) for year in range(1958, 2019))


def _unpivot_years(dataset: Dataset, context: L1Context) -> sql.Composable:
    """One L1 row per L0 row and year column: the year and its cell (``EUN`` or NULL)."""
    return sql.SQL(
        "INSERT INTO {l1} (data_source_row_id, country, iso3, year, tariff_code) "
        "SELECT l0.id, l0.country, l0.iso3, cell.key::int, cell.value "
        "FROM {l0} AS l0 CROSS JOIN LATERAL json_each_text(row_to_json(l0)) AS cell "
        "WHERE l0.id > {after_id} AND cell.key ~ '^[1-2]+'"
    ).format(l1=context.l1, l0=context.l0, after_id=context.after_id)


dit_eu_country_membership = Source(
    id="dit.eu_country_membership",
    folder="dit/eu_country_membership",
    dataset=Dataset(
        organisation="dit",
        name="eu_country_membership",
        mode=Mode.SNAPSHOT,
        columns=(Column("country"), Column("iso3"), *(Column(year) for year in EU_YEARS)),
        l1_columns=(
            L1Column("country"),
            L1Column("iso3"),
            L1Column("year", "integer"),
            L1Column("tariff_code"),
        ),
        l1_builder=_unpivot_years,
        l1_unique_source_row=False,
    ),
)

COMTRADE_COLUMNS = (
    Column("cty_code", "integer", header="ctyCode"),
    *(
        Column(name)
        for name in (
            "cty_name_english",
            "cty_fullname_english",
            "cty_abbreviation",
            "cty_comments",
            "iso2_digit_alpha",
            "iso3_digit_alpha",
            "start_valid_year",
            "end_valid_year",
        )
    ),
)

comtrade_country_code_and_iso = Source(
    id="comtrade.country_code_and_iso",
    folder="comtrade/country_code_and_iso",
    dataset=Dataset(
        organisation="comtrade",
        name="country_code_and_iso",
        mode=Mode.SNAPSHOT,
        columns=COMTRADE_COLUMNS,
        file_format=FileFormat(encoding="cp1252"),
        l1_columns=tuple(L1Column(column.name, column.type) for column in COMTRADE_COLUMNS),
    ),
)


def _highest_nomenclature(dataset: Dataset, context: L1Context) -> sql.Composable:
    """One L1 row per (reporter, product): the one whose nomenclature (H0...H6) is newest."""
    return sql.SQL(
        "INSERT INTO {l1} (data_source_row_id, reporter, product, bound_rate) "
        "SELECT DISTINCT ON (reporter, product) id, reporter, product, bound_rate "
        "FROM {l0} WHERE id > {after_id} "
        "ORDER BY reporter, product, right(nomen_code, 1)::int DESC"
    ).format(l1=context.l1, l0=context.l0, after_id=context.after_id)


world_bank_bound_rates = Source(
    id="world_bank.bound_rates",
    folder="world_bank/bound_rates",
    dataset=Dataset(
        organisation="world_bank",
        name="bound_rates",
        mode=Mode.SNAPSHOT,
        columns=(
            Column("nomen_code", header="NomenCode"),
            Column("reporter", "integer", header="Reporter_ISO_N"),
            Column("product", "integer", header="ProductCode"),
            Column("bound_rate", "numeric", header="BoundRate"),
            Column("total_number_of_lines", "integer", header="Nbr_Total_Lines"),
        ),
        l1_columns=(
            L1Column("reporter", "integer"),
            L1Column("product", "integer"),
            L1Column("bound_rate", "numeric"),
        ),
        l1_builder=_highest_nomenclature,
        l1_indexes=("reporter", "product"),
    ),
)

world_bank_tariff = Source(
    id="world_bank.tariff",
    folder="world_bank/tariff",
    dataset=Dataset(
        organisation="world_bank",
        name="tariff",
        mode=Mode.INCREMENTAL,
        columns=(
            Column("reporter", "integer", header="Reporter_ISO_N"),
            Column("year", "integer"),
            Column("product", "integer", header="ProductCode"),
            Column("partner", "integer", header="Partner_ISO_N"),
            Column("duty_type", header="DutyType"),
            Column("simple_average", "numeric", header="SimpleAverage"),
            Column("number_of_total_lines", "integer", header="Nbr_Total_Lines"),
        ),
        file_format=FileFormat(force_null=True),
    ),
)

# Built from the sources it depends on, in the tariff schema's L1; run only when asked
# (``ingest_sources --transform``).
world_bank_tariff_transformed = Source(
    id="world_bank.tariff.transformed",
    folder="",
    dataset=WORLD_BANK_TARIFFS_OUTPUT,
    depends_on=(
        "dit.eu_country_membership",
        "comtrade.country_code_and_iso",
        "world_bank.bound_rates",
        "world_bank.tariff",
    ),
    steps=TransformSteps(),
)

companies_house_accounts = Source(
    id="companies_house.accounts_legacy",
    folder="companies_house/accounts_legacy",
    unpack=False,
    trigger_dataflow=True,
    origin=Listing(
        url=lambda: settings.COMPANIES_HOUSE_ACCOUNTS_LISTING_URL or COMPANIES_HOUSE_LISTING_URL,
        link_pattern=r"Accounts_Bulk_Data-(?P<date>\d{4}-\d{2}-\d{2})\.zip$",
        link_date_format="%Y-%m-%d",
        stored_name=StoredName("Accounts_Bulk_Data-{date}.zip", "%Y-%m-%d"),
    ),
    steps=ParsedRows(parse_accounts),
    dataset=Dataset(
        organisation="companies_house",
        name="accounts_legacy",
        mode=Mode.INCREMENTAL,
        columns=tuple(
            Column(name, ACCOUNTS_COLUMN_TYPES.get(name, "text")) for name in ACCOUNTS_COLUMNS
        ),
    ),
)

hmrc_exporters = Source(
    id="hmrc.exporters",
    folder="hmrc/exporters",
    unpack=False,
    trigger_dataflow=True,
    origin=Listing(
        url=lambda: settings.HMRC_EXPORTERS_LISTING_URL or HMRC_LISTING_URL,
        link_pattern=r"(.*?)/exporters(?P<date>\d{4})\.zip$",
        link_date_format="%y%m",
        stored_name=StoredName("exporters{date}.zip", "%y%m"),
    ),
    steps=ParsedRows(parse_exporters),
    dataset=Dataset(
        organisation="hmrc",
        name="exporters",
        mode=Mode.INCREMENTAL,
        columns=tuple(Column(name) for name in HMRC_COLUMNS),
        l1_columns=(
            L1Column("datetime", "timestamp", "to_timestamp(month, 'YYYYMM')::timestamp"),
            L1Column("company_name", "text", "lower(trim(company_name))"),
            L1Column(
                "address",
                "text",
                "nullif(lower(trim(concat_ws(' ', address1, address2, address3, address4, "
                "address5))), '')",
            ),
            L1Column("postcode", "text", "upper(replace(postcode, ' ', ''))"),
            L1Column("export_item_codes", "text[]", "string_to_array(export_item_codes, ',', '')"),
        ),
    ),
)

CATALOGUE = Catalogue(
    [
        ons_postcode_directory,
        dit_reference_postcodes,
        dit_baci,
        dit_eu_country_membership,
        comtrade_country_code_and_iso,
        world_bank_bound_rates,
        world_bank_tariff,
        world_bank_tariff_transformed,
        *spire_sources(),
        companies_house_accounts,
        hmrc_exporters,
    ]
)
