"""The dataset endpoints: which table and columns each serves, under which names.

Each endpoint's URL path, scope (the original's view name, which existing clients hold in
their scopes), table, columns and naming follow SOURCES.md §2. Endpoints of sources that are
not built yet are added with their sources.
"""

from dataclasses import dataclass

TEXT, INTEGER, NUMERIC, DATE = "TEXT", "INTEGER", "NUMERIC", "DATE"


@dataclass(frozen=True)
class DatasetEndpoint:
    """A paginated dataset endpoint at ``/api/v1/<path>``.

    ``columns`` are (name as stored, API type) in the order served; the type only documents
    the endpoint in the OpenAPI schema. Names are camelCased unless ``camel_case`` is off;
    ``id`` is served only when ``include_id`` is on.
    """

    path: str
    scope: str
    schema: str
    table: str
    columns: tuple[tuple[str, str], ...]
    description: str
    camel_case: bool = True
    include_id: bool = False

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def headers(self) -> list[str]:
        """The names clients see, in order (``id`` first when served)."""
        names = self.column_names
        if self.camel_case:
            names = [camel_case(name) for name in names]
        return ["id", *names] if self.include_id else names

    @property
    def typed_headers(self) -> list[tuple[str, str]]:
        """(name clients see, API type) in order."""
        kinds = ["BIGINT"] * self.include_id + [kind for _, kind in self.columns]
        return list(zip(self.headers, kinds, strict=True))


def camel_case(name: str) -> str:
    """``trade_flow_value`` -> ``tradeFlowValue``, as the original named its columns.

    Leading and trailing underscores are stripped, ``__`` collapses to ``_``, and every part
    after the first starts with a capital.
    """
    first, *rest = name.strip("_").replace("__", "_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


ONS_POSTCODE_COLUMNS = (
    ("pcd", TEXT),
    ("pcd2", TEXT),
    ("pcds", TEXT),
    ("dointr", DATE),
    ("doterm", DATE),
    ("oscty", TEXT),
    ("ced", TEXT),
    ("oslaua", TEXT),
    ("osward", TEXT),
    ("parish", TEXT),
    ("usertype", TEXT),
    ("oseast1m", TEXT),
    ("osnrth1m", TEXT),
    ("osgrdind", TEXT),
    ("oshlthau", TEXT),
    ("nhser", TEXT),
    ("ctry", TEXT),
    ("rgn", TEXT),
    ("streg", TEXT),
    ("pcon", TEXT),
    ("eer", TEXT),
    ("teclec", TEXT),
    ("ttwa", TEXT),
    ("pct", TEXT),
    ("nuts", TEXT),
    ("statsward", TEXT),
    ("oa01", TEXT),
    ("casward", TEXT),
    ("park", TEXT),
    ("lsoa01", TEXT),
    ("msoa01", TEXT),
    ("ur01ind", TEXT),
    ("oac01", TEXT),
    ("oa11", TEXT),
    ("lsoa11", TEXT),
    ("msoa11", TEXT),
    ("wz11", TEXT),
    ("ccg", TEXT),
    ("bua11", TEXT),
    ("buasd11", TEXT),
    ("ru11ind", TEXT),
    ("oac11", TEXT),
    ("lat", TEXT),
    ("long", TEXT),
    ("lep1", TEXT),
    ("lep2", TEXT),
    ("pfa", TEXT),
    ("imd", TEXT),
    ("calncv", TEXT),
    ("stp", TEXT),
    ("publication_date", DATE),
)

REFERENCE_POSTCODE_COLUMNS = (
    ("postcode", TEXT),
    ("local_authority_district_code", TEXT),
    ("local_authority_district_name", TEXT),
    ("local_enterprise_partnership_lep1_code", TEXT),
    ("local_enterprise_partnership_lep1_name", TEXT),
    ("local_enterprise_partnership_lep2_code", TEXT),
    ("local_enterprise_partnership_lep2_name", TEXT),
    ("region_code", TEXT),
    ("region_name", TEXT),
    ("national_grid_ref_easting", TEXT),
    ("national_grid_ref_northing", TEXT),
    ("date_of_introduction", DATE),
    ("date_of_termination", DATE),
)

REFERENCE_POSTCODES = DatasetEndpoint(
    path="get-dit-reference-postcodes/",
    scope="list_dit_reference_postcodes",
    schema="dit.reference_postcodes",
    table="L1",
    columns=REFERENCE_POSTCODE_COLUMNS,
    description="DIT reference postcodes (L1), page by page.",
)

DATASET_ENDPOINTS = (
    DatasetEndpoint(
        path="get-ons-postcodes/",
        scope="list_ons_postcodes",
        schema="ons.postcode_directory",
        table="L1",
        columns=ONS_POSTCODE_COLUMNS,
        description="The ONS Postcode Directory (L1), every release, page by page.",
        camel_case=False,
        include_id=True,
    ),
    REFERENCE_POSTCODES,
    DatasetEndpoint(
        path="get-dit-baci-data/",
        scope="list_dit_baci",
        schema="dit.baci",
        table="L1",
        columns=(
            ("year", INTEGER),
            ("product_category", INTEGER),
            ("exporter", INTEGER),
            ("importer", INTEGER),
            ("trade_flow_value", NUMERIC),
            ("quantity", NUMERIC),
        ),
        description="CEPII BACI bilateral trade flows (L1), page by page.",
    ),
    DatasetEndpoint(
        path="get-world-bank-tariffs/raw/",
        scope="list_world_bank_tariff_raw",
        schema="world_bank.tariff",
        table="L0",
        columns=(
            ("reporter", INTEGER),
            ("year", INTEGER),
            ("product", INTEGER),
            ("partner", INTEGER),
            ("duty_type", TEXT),
            ("simple_average", NUMERIC),
            ("number_of_total_lines", INTEGER),
        ),
        description="WITS tariff averages as received (L0), page by page.",
    ),
    DatasetEndpoint(
        path="get-world-bank-bound-rates/raw/",
        scope="list_world_bank_bound_rates_raw",
        schema="world_bank.bound_rates",
        table="L0",
        columns=(
            ("nomen_code", TEXT),
            ("reporter", INTEGER),
            ("product", INTEGER),
            ("bound_rate", NUMERIC),
            ("total_number_of_lines", INTEGER),
        ),
        description="WTO/WITS bound rates as received (L0), page by page.",
    ),
)


@dataclass(frozen=True)
class PostcodeLookup:
    """A single-postcode lookup endpoint over the reference postcodes (SOURCES.md §3.2)."""

    path: str
    scope: str


POSTCODE_LOOKUPS = (
    PostcodeLookup(path="get-postcode-data/", scope="dit_reference_postcode1"),
    PostcodeLookup(path="get-dit-reference-postcode/", scope="dit_reference_postcode2"),
)
