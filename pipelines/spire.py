"""SPIRE export-licensing tables (SOURCES.md §3.11): one source per table, schema ``spire``.

Each table keeps the original's columns, keys and CHECK constraints. Where we differ: every
table has an ``id`` primary key (a table whose key is another gets an identity ``id`` and
keeps its key as ``UNIQUE``), so each can be paged through ``table-data``; each table is its
own source (``dit.spire.<table>``); and loading a file **replaces** the table's rows in one
transaction: readers see the old rows until it commits, then only the new ones.

Foreign keys are ``DEFERRABLE INITIALLY DEFERRED`` so that a parent table can be replaced
while children refer to it; they are checked at the end of each load, which fails (and
changes nothing) when a row refers to a row that is not there.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pipelines.copying import copy_file, describe_error
from pipelines.datasets import Column, Dataset, FileFormat, Mode
from pipelines.loading import LOAD_SETTINGS, LoadError, LoadResult, table_exists
from pipelines.locking import lock_dataset_for_transaction
from pipelines.names import RESERVED_COLUMNS
from pipelines.reading import ReadError, open_datafile
from pipelines.sources import Source

logger = logging.getLogger(__name__)

SCHEMA = "spire"
TYPES = {"int": "integer", "text": "text", "ts": "timestamp", "numeric": "numeric"}
CASE_TYPES = "('SIEL', 'OIEL', 'SITCL', 'OITCL', 'OGEL', 'GPL', 'TA_SIEL', 'TA_OIEL')"
SUB_TYPE_RULE = (
    "(case_type = 'SIEL' AND case_sub_type IN ('PERMANENT', 'TEMPORARY', 'TRANSHIPMENT')) OR "
    "(case_type = 'OIEL' AND case_sub_type IN "
    "('DEALER', 'MEDIA', 'MIL_DUAL', 'UKCONTSHELF', 'CRYPTO')) OR "
    "(case_type NOT IN ('SIEL', 'OIEL') AND case_sub_type IS NULL)"
)
CONTROL_END_RULE = (
    "(status_control = 'C' AND end_datetime IS NULL) OR "
    "(status_control IS NULL AND end_datetime IS NOT NULL)"
)


@dataclass(frozen=True)
class SpireTable:
    """One SPIRE table: ``columns`` as "name:type" with a trailing ``!`` for NOT NULL,
    its key, foreign keys (column -> "table.column") and CHECK expressions."""

    name: str
    folder: str
    columns: str
    key: tuple[str, ...]
    foreign_keys: Mapping[str, str] = field(default_factory=dict)
    checks: tuple[str, ...] = ()

    @property
    def column_specs(self) -> list[tuple[str, str, bool]]:
        specs = []
        for spec in self.columns.split():
            name, kind = spec.split(":")
            specs.append((name, TYPES[kind.rstrip("!")], kind.endswith("!")))
        return specs

    @property
    def column_names(self) -> list[str]:
        return [name for name, _, _ in self.column_specs]

    @property
    def has_own_id(self) -> bool:
        return self.key == ("id",)

    def dataset(self) -> Dataset:
        """How the table's files are read: its columns, matched by header name."""
        columns = tuple(
            # The loader reserves ``id``; the file's ``id`` column is read under another name.
            Column(f"{name}_" if name in RESERVED_COLUMNS else name, kind, header=name)
            for name, kind, _ in self.column_specs
        )
        return Dataset(
            organisation=SCHEMA,
            name=self.name,
            mode=Mode.SNAPSHOT,
            columns=columns,
            file_format=FileFormat(force_null=True),
        )

    def create_statements(self) -> list[sql.Composable]:
        table = sql.Identifier(SCHEMA, self.name)
        definitions = []
        if not self.has_own_id:
            definitions.append(sql.SQL("id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY"))
        for name, kind, not_null in self.column_specs:
            required = not_null or name in self.key
            definitions.append(
                sql.SQL("{} {}{}").format(
                    sql.Identifier(name), sql.SQL(kind), sql.SQL(" NOT NULL" if required else "")
                )
            )
        key = sql.SQL(", ").join(map(sql.Identifier, self.key))
        kind = "PRIMARY KEY" if self.has_own_id else "UNIQUE"
        definitions.append(
            sql.SQL("CONSTRAINT {} {} ({})").format(
                sql.Identifier(f"{self.name}_key"), sql.SQL(kind), key
            )
        )
        for number, check in enumerate(self.checks):
            definitions.append(
                sql.SQL("CONSTRAINT {} CHECK ({})").format(
                    sql.Identifier(f"{self.name}_check_{number}"), sql.SQL(check)
                )
            )
        statements: list[sql.Composable] = [
            sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(definitions))
        ]
        for column, target in self.foreign_keys.items():
            parent, parent_column = target.split(".")
            statements.append(
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}) "
                    "DEFERRABLE INITIALLY DEFERRED"
                ).format(
                    table,
                    sql.Identifier(f"{self.name}_{column}_fkey"),
                    sql.Identifier(column),
                    sql.Identifier(SCHEMA, parent),
                    sql.Identifier(parent_column),
                )
            )
        return statements


@dataclass(frozen=True)
class SpireSteps:
    """The steps of a SPIRE table's source (``pipelines.steps.Steps``)."""

    table: SpireTable
    without_files: bool = False
    listed_mode: str | None = "replace"  # each file replaces its table's rows

    def tables(self, source: Source) -> tuple[tuple[str, str], ...]:
        return ((SCHEMA, self.table.name),)

    def create_tables(self, conn: psycopg.Connection, source: Source) -> bool:
        with conn.transaction(), conn.cursor() as cursor:
            lock_dataset_for_transaction(conn, source.dataset.schema)
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            if table_exists(cursor, SCHEMA, self.table.name):
                return False
            for statement in self.table.create_statements():
                cursor.execute(statement)
        return True

    def load(
        self, conn: psycopg.Connection, source: Source, key: str, name: str, rebuild: bool
    ) -> LoadResult:
        """Replace the table's rows by the file's; ``LoadError`` naming the file, line and
        constraint when a row breaks a key or a check, and changes nothing."""
        dataset = source.dataset
        table = sql.Identifier(SCHEMA, self.table.name)
        # The file's columns as the table names them (``id_`` is the table's ``id``).
        to_table = {column.name: column.header or column.name for column in dataset.columns}
        label, read_file = name, None
        try:
            with conn.transaction(), conn.cursor() as cursor:
                lock_dataset_for_transaction(conn, dataset.schema)
                for setting in ("DateStyle", "TimeZone"):
                    cursor.execute(
                        "SELECT set_config(%s, %s, true)", (setting, LOAD_SETTINGS[setting])
                    )
                if not table_exists(cursor, SCHEMA, self.table.name):
                    self.create_tables(conn, source)
                cursor.execute(sql.SQL("DELETE FROM {}").format(table))
                rows = 0
                with open_datafile(key, dataset) as opened:
                    for read_file in opened.files:
                        label = read_file.label
                        targets = [to_table[target] for target in read_file.match.targets]
                        rows += copy_file(cursor, dataset, table, read_file, targets)
                if rows == 0:
                    raise ReadError(f"{name}: no data rows")
                read_file, label = None, name
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        except psycopg.Error as error:
            message = describe_error(error, label, dataset, read_file)
            if error.diag.message_detail:
                message += f" ({error.diag.message_detail})"
            raise LoadError(message) from error
        except ReadError as error:
            raise LoadError(str(error)) from error
        logger.info("%s: %s replaced by %d rows of %s", source.id, self.table.name, rows, name)
        return LoadResult(rows_read=rows, l0_rows_added=rows, l1_rows_added=0)

    def run(self, conn, source, options) -> LoadResult:
        raise NotImplementedError(f"{source.id} loads files")


# Parents before children (SOURCES.md §3.11, "Processing order").
TABLES = (
    SpireTable(
        "batches",
        "batch",
        "id:int batch_ref:text! status:text! start_date:ts end_date:ts approve_date:ts! "
        "release_date:ts staging_date:ts",
        ("id",),
        checks=(
            "status IN ('RELEASED', 'STAGING')",
            "(batch_ref LIKE 'C%' AND start_date IS NULL AND end_date IS NULL) OR "
            "(batch_ref NOT LIKE 'C%' AND start_date IS NOT NULL AND end_date IS NOT NULL "
            "AND start_date::time = '00:00' AND end_date::time = '00:00' "
            "AND start_date <= end_date)",
        ),
    ),
    SpireTable("country_groups", "country_group", "id:int", ("id",)),
    SpireTable(
        "end_users",
        "end_user",
        "eu_id:int version_number:int ela_grp_id:int end_user_type:text country_id:int "
        "end_user_count:int start_date:ts status_control:text batch_id:int",
        ("eu_id", "version_number"),
    ),
    SpireTable(
        "footnotes",
        "footnote",
        "id:int text:text status:text!",
        ("id",),
        checks=("status IN ('CURRENT', 'DELETED', 'ARCHIVED')",),
    ),
    SpireTable("media_footnotes", "media_footnote", "id:int", ("id",)),
    SpireTable(
        "media_footnote_countries",
        "media_footnote_country",
        "id:int ela_grp_id:int! mf_grp_id:int! country_id:int! country_name:text! "
        "status_control:text start_datetime:ts! end_datetime:ts",
        ("id",),
        checks=(CONTROL_END_RULE,),
    ),
    SpireTable(
        "ogl_types",
        "ogl_type",
        "id:int title:text! start_datetime:ts! end_datetime:ts display_order:int f680_flag:text",
        ("id",),
    ),
    SpireTable(
        "ref_ars_subjects", "ref_ars_subject", "ars_value:text ars_subject:text!", ("ars_value",)
    ),
    SpireTable(
        "ref_country_mappings",
        "ref_country_mapping",
        "country_id:int country_name:text!",
        ("country_id",),
    ),
    SpireTable(
        "ref_do_not_report_values",
        "ref_do_not_report_value",
        "dnr_type:text dnr_value:text",
        ("dnr_type", "dnr_value"),
    ),
    SpireTable(
        "ref_report_ratings", "ref_report_rating", "rating:text report_rating:text!", ("rating",)
    ),
    SpireTable(
        "applications",
        "application",
        "ela_grp_id:int case_type:text! case_sub_type:text initial_processing_time:int! "
        "case_closed_date:ts! withheld_status:text batch_id:int! ela_id:int",
        ("ela_grp_id",),
        {"batch_id": "batches.id"},
        (
            f"case_type IN {CASE_TYPES}",
            SUB_TYPE_RULE,
            "withheld_status IS NULL OR withheld_status IN ('PENDING', 'WITHHELD')",
        ),
    ),
    SpireTable(
        "country_group_entries",
        "country_group_entry",
        "cg_id:int country_id:int",
        ("cg_id", "country_id"),
        {"cg_id": "country_groups.id"},
    ),
    SpireTable(
        "media_footnote_details",
        "media_footnote_detail",
        "id:int mf_id:int! status_control:text start_datetime:ts! end_datetime:ts "
        "footnote_type:text! display_text:text! single_footnote_text:text! "
        "joint_footnote_text:text",
        ("id",),
        {"mf_id": "media_footnotes.id"},
        (CONTROL_END_RULE, "footnote_type IN ('STANDARD', 'END_USER')"),
    ),
    SpireTable(
        "returns",
        "return",
        "elr_id:int elr_version:int status:text! created_datetime:ts! status_control:text! "
        "batch_id:int! licence_type:text! el_id:int! ogl_id:int return_period_date:ts "
        "end_country_id:int usage_count:int end_user_type:text eco_comment:text",
        ("elr_id", "elr_version"),
        {"batch_id": "batches.id"},
        (
            "elr_version > 0",
            "status IN ('WITHDRAWN', 'ACTIVE')",
            "status_control IN ('A', 'P', 'C')",
            "licence_type IN ('OGEL', 'OIEL', 'OITCL')",
            "(ogl_id IS NOT NULL) = (licence_type = 'OGEL')",
        ),
    ),
    SpireTable(
        "application_amendments",
        "application_amendment",
        "ela_grp_id:int ela_id:int case_type:text! case_sub_type:text "
        "case_processing_time:int! amendment_closed_date:ts! withheld_status:text batch_id:int!",
        ("ela_grp_id", "ela_id"),
        {"ela_grp_id": "applications.ela_grp_id"},
    ),
    SpireTable(
        "application_countries",
        "application_country",
        "ela_grp_id:int country_id:int report_date:ts! start_date:ts! batch_id:int!",
        ("ela_grp_id", "country_id"),
        {"ela_grp_id": "applications.ela_grp_id", "batch_id": "batches.id"},
    ),
    SpireTable(
        "footnote_entries",
        "footnote_entry",
        "fne_id:int fn_id:int ela_grp_id:int! goods_item_id:int country_id:int fnr_id:int "
        "start_date:ts! version_no:int batch_id:int! status_control:text! mfd_id:int "
        "mf_grp_id:int mf_free_text:text",
        ("fne_id", "version_no"),
        {
            "fn_id": "footnotes.id",
            "ela_grp_id": "applications.ela_grp_id",
            "batch_id": "batches.id",
            "mfd_id": "media_footnote_details.id",
        },
        (
            "(goods_item_id IS NULL AND country_id IS NULL AND fnr_id IS NULL) OR "
            "(goods_item_id IS NOT NULL AND country_id IS NULL AND fnr_id IS NULL) OR "
            "(goods_item_id IS NULL AND country_id IS NOT NULL AND fnr_id IS NULL) OR "
            "(goods_item_id IS NULL AND country_id IS NOT NULL AND fnr_id IS NOT NULL)",
            "version_no >= 0",
            "(fn_id IS NOT NULL AND mfd_id IS NULL AND mf_grp_id IS NULL "
            "AND mf_free_text IS NULL) OR "
            "(fn_id IS NULL AND mfd_id IS NOT NULL AND mf_grp_id IS NOT NULL "
            "AND mf_free_text IS NULL) OR "
            "(fn_id IS NULL AND mfd_id IS NULL AND mf_grp_id IS NOT NULL "
            "AND mf_free_text IS NOT NULL)",
        ),
    ),
    SpireTable(
        "goods_incidents",
        "goods_incident",
        "id:int inc_id:int! type:text! goods_item_id:int! dest_country_id:int! "
        "source_country_grp_id:int report_date:ts! ela_grp_id:int! start_date:ts! "
        "version_no:int! batch_id:int! status_control:text!",
        ("id",),
        {
            "source_country_grp_id": "country_groups.id",
            "ela_grp_id": "applications.ela_grp_id",
            "batch_id": "batches.id",
        },
        ("type IN ('REFUSAL', 'ISSUE', 'REVOKE', 'SURRENDER')", "version_no >= 0"),
    ),
    SpireTable(
        "incidents",
        "incident",
        "inc_id:int batch_id:int! status:text! type:text! case_type:text! case_sub_type:text "
        "ela_grp_id:int! ela_id:int licence_id:int report_date:ts! temporary_licence_flag:int! "
        "licence_conversion_flag:int! incorporation_flag:int! mil_flag:int! other_flag:int! "
        "torture_flag:int! start_date:ts! version_no:int ogl_id:int status_control:text! "
        "else_id:int stakeholders_confirmed:text",
        ("inc_id", "version_no"),
        {"batch_id": "batches.id", "ela_grp_id": "applications.ela_grp_id"},
        (
            "status IN ('READY', 'FOR_ATTENTION')",
            "version_no >= 0",
            "(ogl_id IS NOT NULL) = (case_type = 'OGEL')",
            *(
                f"{flag}_flag IN (0, 1)"
                for flag in (
                    "temporary_licence",
                    "licence_conversion",
                    "incorporation",
                    "mil",
                    "other",
                    "torture",
                )
            ),
            "(licence_id IS NULL) = (type = 'REFUSAL')",
            "(else_id IS NOT NULL) = (type = 'SUSPENSION')",
            "type IN ('REFUSAL', 'ISSUE', 'REDUCTION', 'REVOKE', 'DEREGISTRATION', "
            "'SUSPENSION', 'SURRENDER')",
            f"case_type IN {CASE_TYPES}",
            SUB_TYPE_RULE,
        ),
    ),
    SpireTable(
        "third_parties",
        "third_party",
        "tp_id:int ela_grp_id:int! sh_id:int country_id:int! ultimate_end_user_flag:int "
        "start_date:ts! version_no:int batch_id:int! status_control:text!",
        ("tp_id", "version_no"),
        {"ela_grp_id": "applications.ela_grp_id", "batch_id": "batches.id"},
        ("ultimate_end_user_flag IS NULL OR ultimate_end_user_flag IN (0, 1)", "version_no >= 0"),
    ),
    SpireTable(
        "ultimate_end_users",
        "ultimate_end_user",
        "ueu_id:int ela_grp_id:int! country_id:int! status_control:text! start_date:ts! "
        "version_no:int batch_id:int! sh_id:int ultimate_end_user_flag:int",
        ("ueu_id", "version_no"),
        {"ela_grp_id": "applications.ela_grp_id", "batch_id": "batches.id"},
        ("version_no >= 0", "status_control IN ('A', 'P', 'C', 'D')"),
    ),
    SpireTable(
        "ars",
        "ars",
        "gi_id:int ars_value:text ars_quantity:int",
        ("gi_id", "ars_value"),
        {"gi_id": "goods_incidents.id"},
    ),
    SpireTable(
        "control_entries",
        "control_entry",
        "gi_id:int rating:text value:numeric",
        ("gi_id", "rating"),
        {"gi_id": "goods_incidents.id", "rating": "ref_report_ratings.rating"},
    ),
    SpireTable(
        "reasons_for_refusal",
        "reason_for_refusal",
        "gi_id:int reason_for_refusal:text",
        ("gi_id", "reason_for_refusal"),
        {"gi_id": "goods_incidents.id"},
    ),
)


def spire_sources() -> list[Source]:
    """One source per table, ``dit.spire.<table>``, after the tables it refers to."""
    ids = {table.name: f"dit.spire.{table.name}" for table in TABLES}
    return [
        Source(
            id=ids[table.name],
            folder=f"dit/spire/{table.folder}",
            dataset=table.dataset(),
            depends_on=tuple(
                dict.fromkeys(ids[target.split(".")[0]] for target in table.foreign_keys.values())
            ),
            steps=SpireSteps(table),
        )
        for table in TABLES
    ]
