"""The dataset endpoints: which source table each serves, under which names.

Each endpoint's URL path, scope (the original's view name, which existing clients hold in
their scopes), table, columns and naming follow SOURCES.md §2. HMRC, Companies House, Comtrade,
EU membership and SPIRE have none: the generic table endpoints serve them.
"""

from dataclasses import dataclass

from pipelines import catalogue
from pipelines.column_types import COLUMN_TYPES
from pipelines.sources import Source


@dataclass(frozen=True)
class DatasetEndpoint:
    """A paginated dataset endpoint at ``/api/v1/<path>`` serving one table of a source.

    The columns served are the source's own for that table (L0 or L1), in their order, so the
    endpoint follows the catalogue. Names are camelCased unless ``camel_case`` is off; ``id``
    is served only when ``include_id`` is on.
    """

    path: str
    scope: str
    source: Source
    table: str
    description: str
    camel_case: bool = True
    include_id: bool = False

    @property
    def schema(self) -> str:
        return self.source.dataset.schema

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """(name as stored, API type) of the served columns, in order."""
        dataset = self.source.dataset
        table_columns = dataset.l1_columns if self.table == "L1" else dataset.columns
        return tuple((column.name, COLUMN_TYPES[column.type].api_name) for column in table_columns)

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
        kinds = ["INTEGER"] * self.include_id + [kind for _, kind in self.columns]
        return list(zip(self.headers, kinds, strict=True))


def camel_case(name: str) -> str:
    """``trade_flow_value`` -> ``tradeFlowValue``, as the original named its columns.

    Leading and trailing underscores are stripped, ``__`` collapses to ``_``, and every part
    after the first starts with a capital.
    """
    first, *rest = name.strip("_").replace("__", "_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


REFERENCE_POSTCODES = DatasetEndpoint(
    path="get-dit-reference-postcodes/",
    scope="list_dit_reference_postcodes",
    source=catalogue.dit_reference_postcodes,
    table="L1",
    description="DIT reference postcodes (L1), page by page.",
)

DATASET_ENDPOINTS = (
    DatasetEndpoint(
        path="get-ons-postcodes/",
        scope="list_ons_postcodes",
        source=catalogue.ons_postcode_directory,
        table="L1",
        description="The ONS Postcode Directory (L1), every release, page by page.",
        camel_case=False,
        include_id=True,
    ),
    REFERENCE_POSTCODES,
    DatasetEndpoint(
        path="get-dit-baci-data/",
        scope="list_dit_baci",
        source=catalogue.dit_baci,
        table="L1",
        description="CEPII BACI bilateral trade flows (L1), page by page.",
    ),
    DatasetEndpoint(
        path="get-world-bank-tariffs/",
        scope="list_world_bank_tariff",
        source=catalogue.world_bank_tariff_transformed,
        table="L1",
        description="Assumed bilateral tariffs per product, year, reporter and partner (the "
        "World Bank transform's output), page by page.",
    ),
    DatasetEndpoint(
        path="get-world-bank-tariffs/raw/",
        scope="list_world_bank_tariff_raw",
        source=catalogue.world_bank_tariff,
        table="L0",
        description="WITS tariff averages as received (L0), page by page.",
    ),
    DatasetEndpoint(
        path="get-world-bank-bound-rates/raw/",
        scope="list_world_bank_bound_rates_raw",
        source=catalogue.world_bank_bound_rates,
        table="L0",
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
