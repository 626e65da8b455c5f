"""The World Bank tariff transform (SOURCES.md §3.8): assumed bilateral tariffs per product.

Reads the tariff averages (``"world_bank.tariff"."L0"``), bound rates (L1), the Comtrade
country list (L1) and EU membership (L1); writes one row per product, year and ordered pair
of distinct required countries into ``"world_bank.tariff"."L1"``.

The run, all in set-wise SQL:

1. the inputs every product shares are built once as temporary tables (countries, every
   applied/MFN rate after the Sudan and Ethiopia corrections, EU membership by year, the EU's
   rates expanded to its members, bound rates);
2. products are built ``BATCH_PRODUCTS`` at a time, one INSERT per batch into ``"L1.temp"``,
   each committed: a run that stops (killed, failed) can be continued (``continue``) and
   skips the products already built;
3. ``"L1.temp"`` is indexed and swapped in for ``"L1"`` in one transaction: readers see the
   old table until then.

Where we differ: a failure fails the run with its cause (the product batch and the database's
message), never swallowed; ``products`` that are not whole numbers are refused, not ignored.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pipelines.datasets import Column, Dataset, L1Column, Mode
from pipelines.loading import LoadResult, table_exists
from pipelines.locking import lock_dataset_for_transaction
from pipelines.versions import record_version, replace_table

logger = logging.getLogger(__name__)

SCHEMA = "world_bank.tariff"
TABLE = "L1"
BUILDING = "L1.temp"
FIRST_YEAR = 2000
LAST_YEAR = 2018
BATCH_PRODUCTS = 20
EU_REPORTER = 918
WORLD = 0
RATE_COLUMNS = (
    "assumed_tariff",
    "app_rate",
    "mfn_rate",
    "bnd_rate",
    "eu_rep_rate",
    "eu_part_rate",
    "eu_eu_rate",
    "world_average",
)
KEY_COLUMNS = ("product", "reporter", "partner", "year")

# The 182 countries the output covers: ISO 3166 alpha-3 code and number.
REQUIRED_COUNTRIES = (
    "ABW=533 AFG=4 AGO=24 ALB=8 ARE=784 ARG=32 ARM=51 ATG=28 AUS=36 AUT=40 AZE=31 BDI=108 "
    "BEL=56 BEN=204 BFA=854 BGD=50 BGR=100 BHR=48 BHS=44 BIH=70 BLR=112 BLZ=84 BOL=68 BRA=76 "
    "BRB=52 BRN=96 BTN=64 CAF=140 CAN=124 CHE=756 CHL=152 CHN=156 CIV=384 CMR=120 COD=180 "
    "COG=178 COL=170 COM=174 CPV=132 CRI=188 CYP=196 CZE=203 DEU=276 DJI=262 DMA=212 DNK=208 "
    "DOM=214 DZA=12 ECU=218 EGY=818 ERI=232 ESP=724 EST=233 ETH=231 FIN=246 FJI=242 FRA=250 "
    "FSM=583 GAB=266 GBR=826 GEO=268 GHA=288 GIN=324 GMB=270 GNB=624 GNQ=226 GRC=300 GRD=308 "
    "GTM=320 GUY=328 HKG=344 HND=340 HRV=191 HTI=332 HUN=348 IDN=360 IND=356 IRL=372 IRN=364 "
    "IRQ=368 ISL=352 ISR=376 ITA=380 JAM=388 JOR=400 JPN=392 KAZ=398 KEN=404 KGZ=417 KHM=116 "
    "KIR=296 KNA=659 KOR=410 KWT=414 LAO=418 LBN=422 LBR=430 LBY=434 LCA=662 LKA=144 LTU=440 "
    "LVA=428 MAC=446 MAR=504 MDA=498 MDG=450 MDV=462 MEX=484 MHL=584 MKD=807 MLI=466 MLT=470 "
    "MMR=104 MNG=496 MOZ=508 MRT=478 MUS=480 MWI=454 MYS=458 NER=562 NGA=566 NIC=558 NLD=528 "
    "NOR=578 NPL=524 NRU=520 NZL=554 OMN=512 PAK=586 PAN=591 PER=604 PHL=608 PLW=585 PNG=598 "
    "POL=616 PRT=620 PRY=600 QAT=634 ROU=642 RUS=643 RWA=646 SAU=682 SDN=729 SEN=686 SGP=702 "
    "SLB=90 SLE=694 SLV=222 SMR=674 SOM=706 STP=678 SUR=740 SVK=703 SVN=705 SWE=752 SYC=690 "
    "TCD=148 TGO=768 THA=764 TJK=762 TKM=795 TON=776 TTO=780 TUN=788 TUR=792 TUV=798 TWN=490 "
    "TZA=834 UGA=800 UKR=804 URY=858 USA=840 UZB=860 VCT=670 VEN=862 VNM=704 VUT=548 WSM=882 "
    "YEM=887 ZAF=710 ZMB=894 ZWE=716"
)
# Comtrade codes standing for a country under another ISO code, and rows left out.
ISO3_FIXES = {"INDXSIK": "IND", "FRAXM": "FRA", "ITAF": "ITA"}
ISO3_EXCLUDED = (
    "IND ANTABW ITA BELLUX CHELIE DEUF FRA ETHF KNAXA NORF PAKF PANF USAF USAV VNMF YEMF ZAFF"
)
SUDAN, OLD_SUDAN, ETHIOPIA = 729, 736, 231

OUTPUT_COLUMNS = (
    *(L1Column(name, "integer") for name in KEY_COLUMNS),
    *(L1Column(name, "numeric") for name in RATE_COLUMNS),
)
# What the transform's table holds, for the API (only its L1 is made, by the transform).
OUTPUT = Dataset(
    organisation="world_bank",
    name="tariff",
    mode=Mode.SNAPSHOT,
    columns=tuple(Column(column.name, column.type) for column in OUTPUT_COLUMNS),
    l1_columns=OUTPUT_COLUMNS,
)


class TransformError(Exception):
    """The transform failed; the message gives the step (and products) and the cause."""


@dataclass(frozen=True)
class TransformOptions:
    """``products``: only these (None: every product); ``resume``: keep ``"L1.temp"`` from an
    interrupted run and skip the products it holds; ``years``: first and last year."""

    products: tuple[int, ...] | None = None
    resume: bool = False
    years: tuple[int, int] = (FIRST_YEAR, LAST_YEAR)
    batch: int = BATCH_PRODUCTS

    @classmethod
    def from_mapping(cls, options: Mapping[str, object]) -> "TransformOptions":
        """From run options: ``products`` (ints or a "a,b,c" string), ``continue``, ``years``.

        ``TransformError`` for a product that is not a whole number.
        """
        products = options.get("products")
        if isinstance(products, str):
            products = [part.strip() for part in products.split(",") if part.strip()]
        if products is not None:
            try:
                products = tuple(int(product) for product in products)
            except ValueError:
                raise TransformError(
                    f"products must be whole numbers separated by commas, not {products!r}"
                ) from None
        return cls(
            products=products,
            resume=bool(options.get("continue")),
            years=tuple(options.get("years") or (FIRST_YEAR, LAST_YEAR)),
        )


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(SCHEMA, name)


def _input(schema: str, table: str) -> sql.Identifier:
    return sql.Identifier(schema, table)


def _values(pairs: Sequence[tuple[str, int]]) -> sql.Composable:
    return sql.SQL(", ").join(
        sql.SQL("({}, {})").format(sql.Literal(iso3), sql.Literal(number)) for iso3, number in pairs
    )


def _shared_inputs(first: int, last: int) -> list[sql.Composable]:
    """Temporary tables every product reads (steps 1, 2, 4, 5, 6 and the bound rates)."""
    required = [
        (iso3, int(number))
        for iso3, number in (pair.split("=") for pair in REQUIRED_COUNTRIES.split())
    ]
    fixes = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(sql.Literal(old), sql.Literal(new))
        for old, new in ISO3_FIXES.items()
    )
    excluded = sql.SQL(", ").join(map(sql.Literal, ISO3_EXCLUDED.split()))
    params = {
        "first": sql.Literal(first),
        "last": sql.Literal(last),
        "tariff": _input("world_bank.tariff", "L0"),
        "bound": _input("world_bank.bound_rates", "L1"),
        "comtrade": _input("comtrade.country_code_and_iso", "L1"),
        "eu": _input("dit.eu_country_membership", "L1"),
        "sudan": sql.Literal(SUDAN),
        "old_sudan": sql.Literal(OLD_SUDAN),
        "ethiopia": sql.Literal(ETHIOPIA),
        "eu_reporter": sql.Literal(EU_REPORTER),
    }
    statements = [
        sql.SQL("CREATE TEMP TABLE wb_required (iso3 text, iso_num integer)"),
        sql.SQL("INSERT INTO wb_required VALUES {}").format(_values(required)),
        # Comtrade's codes by ISO alpha-3; NOT IN drops the NULL codes too.
        sql.SQL(
            "CREATE TEMP TABLE wb_dictionary AS SELECT CASE iso3_digit_alpha {fixes} "
            "ELSE iso3_digit_alpha END AS iso3, cty_code AS iso_number FROM {comtrade} "
            "WHERE iso3_digit_alpha NOT IN ({excluded})"
        ).format(fixes=fixes, excluded=excluded, **params),
        sql.SQL(
            "CREATE TEMP TABLE wb_countries AS SELECT DISTINCT d.iso_number FROM wb_dictionary d "
            "JOIN wb_required r USING (iso3) WHERE d.iso_number IS NOT NULL"
        ),
        sql.SQL(
            "CREATE TEMP TABLE wb_years AS SELECT generate_series({first}, {last}) AS year"
        ).format(**params),
        # Applied (AHS) beside MFN rates, after dropping Ethiopia's report of Sudan and
        # recoding Sudan's old code.
        sql.SQL(
            "CREATE TEMP TABLE wb_tariffs AS WITH fixed AS ("
            "SELECT product, year, "
            "CASE WHEN reporter = {old_sudan} THEN {sudan} ELSE reporter END AS reporter, "
            "CASE WHEN partner = {old_sudan} THEN {sudan} ELSE partner END AS partner, "
            "duty_type, simple_average FROM {tariff} "
            "WHERE NOT (reporter = {ethiopia} AND partner = {sudan})), "
            "ahs AS (SELECT * FROM fixed WHERE duty_type = 'AHS'), "
            "mfn AS (SELECT * FROM fixed WHERE duty_type = 'MFN') "
            "SELECT DISTINCT coalesce(ahs.product, mfn.product) AS product, "
            "coalesce(ahs.year, mfn.year) AS year, "
            "coalesce(ahs.reporter, mfn.reporter) AS reporter, "
            "coalesce(ahs.partner, mfn.partner) AS partner, "
            "ahs.simple_average AS app_rate, mfn.simple_average AS mfn_rate "
            "FROM ahs FULL JOIN mfn ON ahs.product = mfn.product AND ahs.year = mfn.year "
            "AND ahs.reporter = mfn.reporter AND ahs.partner = mfn.partner"
        ).format(**params),
        sql.SQL("CREATE INDEX ON wb_tariffs (product, year, reporter, partner)"),
        sql.SQL(
            "CREATE TEMP TABLE wb_eu AS SELECT DISTINCT e.year, d.iso_number, e.tariff_code "
            "FROM {eu} e LEFT JOIN wb_dictionary d USING (iso3) "
            "JOIN wb_required r USING (iso3) "
            "WHERE e.tariff_code = 'EUN' AND e.year >= {first}"
        ).format(**params),
        # The EU's applied rate towards a partner is each member's in that year.
        sql.SQL(
            "CREATE TEMP TABLE wb_eu_reporter AS SELECT DISTINCT t.product, t.year, "
            "e.iso_number AS reporter, t.partner, t.app_rate AS eu_rep_rate "
            "FROM wb_tariffs t JOIN wb_eu e ON e.year = t.year "
            "WHERE t.reporter = {eu_reporter} AND t.partner <> e.iso_number "
            "AND t.year BETWEEN {first} AND {last} "
            "AND t.partner IN (SELECT iso_number FROM wb_countries)"
        ).format(**params),
        sql.SQL("CREATE INDEX ON wb_eu_reporter (product, year, reporter, partner)"),
        sql.SQL(
            "CREATE TEMP TABLE wb_bound AS SELECT b.product, b.reporter, b.bound_rate "
            "FROM {bound} b JOIN wb_required r ON b.reporter = r.iso_num"
        ).format(**params),
        sql.SQL("ANALYZE wb_tariffs"),
    ]
    return statements


SHARED_TABLES = (
    "wb_required",
    "wb_dictionary",
    "wb_countries",
    "wb_years",
    "wb_tariffs",
    "wb_eu",
    "wb_eu_reporter",
    "wb_bound",
)

# Steps 3 and 7-9 and the per-product calculation, for the products in %(products)s.
BUILD_PRODUCTS = """
INSERT INTO {building} (product, reporter, partner, year, {rates})
WITH spine AS (
    SELECT p.product, y.year, r.iso_number AS reporter, q.iso_number AS partner
    FROM unnest(%(products)s::int[]) AS p(product) CROSS JOIN wb_years y
    CROSS JOIN wb_countries r CROSS JOIN wb_countries q
    WHERE r.iso_number <> q.iso_number
),
with_eu AS (
    SELECT s.product, s.year, s.reporter, s.partner, t.app_rate,
        er.tariff_code AS eu_rep, ep.tariff_code AS eu_part, x.eu_rep_rate,
        CASE WHEN er.tariff_code = 'EUN' AND ep.tariff_code = 'EUN' THEN 0 END AS eu_eu_rate
    FROM spine s
    LEFT JOIN wb_tariffs t USING (product, year, reporter, partner)
    LEFT JOIN wb_eu er ON er.year = s.year AND er.iso_number = s.reporter
    LEFT JOIN wb_eu ep ON ep.year = s.year AND ep.iso_number = s.partner
    LEFT JOIN wb_eu_reporter x ON x.product = s.product AND x.year = s.year
        AND x.reporter = s.reporter AND x.partner = s.partner
),
eu_partner AS (
    SELECT product, year, reporter, eu_part, avg(app_rate) AS eu_part_rate
    FROM with_eu WHERE eu_part = 'EUN'
    GROUP BY product, year, reporter, eu_part HAVING avg(app_rate) IS NOT NULL
),
world_partner AS (
    SELECT DISTINCT t.product, t.year, t.reporter, t.mfn_rate
    FROM wb_tariffs t
    WHERE t.partner = {world} AND t.product = ANY(%(products)s::int[])
        AND t.year IN (SELECT year FROM wb_years)
        AND t.reporter IN (SELECT iso_number FROM wb_countries)
),
product_tariffs AS (
    SELECT DISTINCT w.product, w.year, w.reporter, w.partner, w.app_rate, w.eu_rep_rate,
        w.eu_eu_rate, ep.eu_part_rate, wp.mfn_rate, b.bound_rate AS bnd_rate,
        avg(wp.mfn_rate) OVER (PARTITION BY w.product, w.year) AS world_average
    FROM with_eu w
    LEFT JOIN eu_partner ep ON ep.product = w.product AND ep.year = w.year
        AND ep.reporter = w.reporter AND ep.eu_part = w.eu_part
    LEFT JOIN world_partner wp ON wp.product = w.product AND wp.year = w.year
        AND wp.reporter = w.reporter
    LEFT JOIN wb_bound b ON b.product = w.product AND b.reporter = w.reporter
    WHERE w.partner IS NOT NULL
),
groups AS (
    SELECT *, coalesce(app_rate, eu_rep_rate, eu_part_rate) AS ahs_final,
        count(coalesce(app_rate, eu_rep_rate, eu_part_rate)) OVER pair AS ahs_group,
        count(mfn_rate) OVER pair AS mfn_group
    FROM product_tariffs
    WINDOW pair AS (PARTITION BY product, reporter, partner ORDER BY year)
),
filled AS (
    SELECT *,
        max(ahs_final) OVER (PARTITION BY product, reporter, partner, ahs_group) AS ahs_filled,
        max(mfn_rate) OVER (PARTITION BY product, reporter, partner, mfn_group) AS mfn_filled
    FROM groups
)
SELECT product, reporter, partner, year,
    round(avg(coalesce(eu_eu_rate, ahs_filled, mfn_filled, world_average)), 3),
    round(avg(app_rate), 3), round(avg(mfn_rate), 3), round(avg(bnd_rate), 3),
    round(avg(eu_rep_rate), 3), round(avg(eu_part_rate), 3), round(avg(eu_eu_rate), 3),
    round(avg(world_average), 3)
FROM filled
GROUP BY product, reporter, partner, year
"""


def _output_columns() -> list[sql.Composable]:
    return [
        sql.SQL("id bigserial PRIMARY KEY"),
        *(sql.SQL("{} integer").format(sql.Identifier(name)) for name in KEY_COLUMNS),
        *(sql.SQL("{} numeric").format(sql.Identifier(name)) for name in RATE_COLUMNS),
    ]


def _create_output(cursor: psycopg.Cursor, name: str) -> None:
    cursor.execute(
        sql.SQL("CREATE TABLE {} ({})").format(_table(name), sql.SQL(", ").join(_output_columns()))
    )


def transform(conn: psycopg.Connection, options: TransformOptions) -> int:
    """Run the transform on ``conn`` (autocommit; each batch commits); the rows built.

    ``TransformError`` naming the step, the products and the database's message.
    """
    try:
        prepare(conn, options)
        with conn.cursor() as cursor:
            products = _products(cursor, options)
        logger.info("%s: building %d product(s)", SCHEMA, len(products))
        for start in range(0, len(products), options.batch):
            build_products(conn, products[start : start + options.batch])
        # An empty build never replaces the served table (no inputs, products that match
        # nothing, a --continue with nothing interrupted to continue).
        with conn.cursor() as cursor:
            cursor.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(_table(BUILDING)))
            if not cursor.fetchone()[0]:
                raise TransformError(_nothing_to_build(options))
        return _swap(conn)
    finally:
        with conn.cursor() as cursor:
            for name in SHARED_TABLES:
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def prepare(conn: psycopg.Connection, options: TransformOptions) -> None:
    """The shared inputs (this session's temporary tables) and ``"L1.temp"``: kept with
    ``resume``, else made anew."""
    first, last = options.years
    try:
        with conn.transaction(), conn.cursor() as cursor:
            for statement in _shared_inputs(first, last):
                cursor.execute(statement)
            if not options.resume:
                cursor.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_table(BUILDING)))
            if not table_exists(cursor, SCHEMA, BUILDING):
                _create_output(cursor, BUILDING)
    except psycopg.Error as error:
        raise TransformError(f"{SCHEMA}: reading the transform's inputs: {error}") from error


def _nothing_to_build(options: TransformOptions) -> str:
    which = (
        ""
        if options.products is None
        else f" of the products {', '.join(map(str, options.products))}"
    )
    return (
        f"{SCHEMA}: nothing to build: its L0 holds no tariffs{which} from {options.years[0]} "
        "on (ingest world_bank.tariff first); the served L1 is as it was"
    )


def _products(cursor: psycopg.Cursor, options: TransformOptions) -> list[int]:
    """The products to build: those of the tariffs from the first year on, as chosen."""
    query = sql.SQL(
        "SELECT DISTINCT product FROM {} WHERE year >= %(first)s AND product IS NOT NULL"
    ).format(_input("world_bank.tariff", "L0"))
    if options.products is not None:
        query += sql.SQL(" AND product = ANY(%(products)s)")
    if options.resume:
        query += sql.SQL(" AND product NOT IN (SELECT DISTINCT product FROM {})").format(
            _table(BUILDING)
        )
    cursor.execute(
        query + sql.SQL(" ORDER BY product"),
        {"first": options.years[0], "products": list(options.products or ())},
    )
    return [product for (product,) in cursor.fetchall()]


def build_products(conn: psycopg.Connection, batch: list[int]) -> None:
    """Build the rows of the products ``batch`` into ``"L1.temp"`` and commit them."""
    statement = sql.SQL(BUILD_PRODUCTS).format(
        building=_table(BUILDING),
        rates=sql.SQL(", ").join(map(sql.Identifier, RATE_COLUMNS)),
        world=sql.Literal(WORLD),
    )
    try:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.execute(statement, {"products": batch})
    except psycopg.Error as error:
        raise TransformError(
            f"{SCHEMA}: building products {batch[0]}..{batch[-1]}: {error}"
        ) from error


def _swap(conn: psycopg.Connection) -> int:
    """Index ``"L1.temp"`` and put it in the place of ``"L1"``, which is retained as an
    earlier version (``pipelines.versions``) so that reads begun on it end on it; the rows
    it holds."""
    try:
        with conn.transaction(), conn.cursor() as cursor:
            lock_dataset_for_transaction(conn, SCHEMA)
            for column in KEY_COLUMNS:
                cursor.execute(
                    sql.SQL("CREATE INDEX {} ON {} ({})").format(
                        sql.Identifier(f"{BUILDING}_{column}_idx"),
                        _table(BUILDING),
                        sql.Identifier(column),
                    )
                )
            cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(_table(BUILDING)))
            built = cursor.fetchone()[0]
            replace_table(cursor, SCHEMA, BUILDING, TABLE)
            record_version(cursor, SCHEMA, TABLE)
    except psycopg.Error as error:
        raise TransformError(f"{SCHEMA}: putting the new table in place: {error}") from error
    return built


@dataclass(frozen=True)
class TransformSteps:
    """The transform as a source's steps (``pipelines.steps.Steps``): no files, one run."""

    without_files: bool = True
    listed_mode: str | None = "transform"

    def tables(self, source) -> tuple[tuple[str, str], ...]:
        return ((SCHEMA, TABLE),)

    def create_tables(self, conn: psycopg.Connection, source) -> bool:
        with conn.transaction(), conn.cursor() as cursor:
            lock_dataset_for_transaction(conn, SCHEMA)
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            if table_exists(cursor, SCHEMA, TABLE):
                return False
            _create_output(cursor, TABLE)
        return True

    def load(self, conn, source, key, name, rebuild) -> LoadResult:
        raise NotImplementedError(f"{source.id} has no files")

    def run(self, conn: psycopg.Connection, source, options: Mapping[str, object]) -> LoadResult:
        built = transform(conn, TransformOptions.from_mapping(options))
        return LoadResult(rows_read=built, l0_rows_added=0, l1_rows_added=built)
