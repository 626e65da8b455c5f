"""The loader: one file into a dataset's L0/L1 tables, in one transaction.

Semantics (see the design's "Dataset tables"):

- incremental: the file's rows are appended to L0 (``datafile_created`` = the datafile), and
  each new L0 row gets its L1 row (``data_source_row_id`` = the L0 ``id``);
- snapshot: rows are identified by ``data_hash``, the md5 of ``ROW(<hash columns>)::text``
  over the typed values. A row not yet in L0 is inserted (created = updated = the datafile),
  a row already there only gets ``datafile_updated``; duplicates within the file collapse.
  L1 receives the rows this file created. With ``delete_previous``, rows absent from the file
  are deleted (not on a rebuild);
- rebuild (``--force``, uploads): new tables are filled under temporary names and swapped in
  by rename at the end, so readers never see an empty table.

A table that does not exist yet (a first load, a rebuild) is created without keys, filled,
and then given its primary key and unique keys: building an index once is much faster than
keeping it up to date row by row. L1 rows are built for the L0 rows whose id is above L0's
largest id before the load (ids come from a sequence, and loads of a dataset never overlap).

Speed: incremental rows are COPYed straight into L0. Snapshot rows are COPYed into an unlogged
stage table and hashed from there by statements that parallel workers can help with (CREATE
TABLE AS; INSERT cannot run in parallel); a new snapshot L0 is that CREATE TABLE AS itself.

Concurrency: a transaction-level advisory lock per dataset serialises loads; a second load
of the same dataset waits for the first to commit. Readers keep reading the old rows until
the load commits (MVCC), and then see all of the new ones.

Failures roll the whole transaction back; the error is re-raised as ``LoadError`` naming the
datafile, line, column and value that PostgreSQL's COPY reported.
"""

import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pipelines.datasets import Column, Dataset, L1Context, Mode
from pipelines.locking import lock_dataset_for_transaction

logger = logging.getLogger(__name__)

# A snapshot load's work tables, in the dataset's schema and dropped before the load commits.
STAGE_TABLE = "dss_stage"
HASHES_TABLE = "dss_hashes"
REBUILD_SUFFIX = ".new"
# The session setting that L0's datafile_created column takes its default from, so that COPY
# can write straight into L0 without naming the datafile on every row.
DATAFILE_SETTING = "dss.datafile"
DATAFILE_DEFAULT = sql.SQL("current_setting({}, true)").format(sql.Literal(DATAFILE_SETTING))
# L0's id sequence hands a session this many ids at a time: drawing them one by one costs
# about a tenth of a COPY (see _attach_id_sequence for why ids stay dense and increasing).
ID_CACHE = 1000
# Settings for the load's transaction, set back to what they were after it.
LOAD_SETTINGS = {
    # The row hash costs much more than the planner assumes a function does: let parallel
    # workers hash any stage large enough for a parallel scan while the leader writes.
    "parallel_setup_cost": "0",
    "parallel_tuple_cost": "0",
    # Joins of a file's row hashes with L0's in memory rather than in batches on disk.
    "work_mem": "128MB",
    # Sorts for the keys of a new L0 in memory (0.44 s instead of 0.53 s for 1M ids).
    "maintenance_work_mem": "256MB",
}
NO_OPTIONS = sql.SQL("")


class LoadError(Exception):
    """A file could not be loaded; the message says where and why, for a person to act on."""


@dataclass(frozen=True)
class LoadResult:
    rows_read: int
    l0_rows_added: int
    l1_rows_added: int


@dataclass(frozen=True)
class Tables:
    """The L0/L1 tables that a load writes to (their final names, or the rebuild names)."""

    schema: str
    l0_name: str = "L0"
    l1_name: str = "L1"

    @property
    def l0(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.l0_name)

    @property
    def l1(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.l1_name)


def load_file(
    conn: psycopg.Connection,
    dataset: Dataset,
    chunks: Iterable[bytes],
    *,
    datafile: str,
    member: str | None = None,
    rebuild: bool = False,
) -> LoadResult:
    """Load one file's bytes (``chunks``, e.g. from ``reading.iter_chunks``) into ``dataset``.

    ``datafile`` is recorded in ``datafile_created``/``datafile_updated``. ``rebuild`` drops
    the dataset's tables and replaces them by this file's data. Runs in one transaction (a
    savepoint when the caller has one open); raises ``LoadError`` and changes nothing on
    failure.
    """
    try:
        with conn.transaction():
            lock_dataset_for_transaction(conn, dataset.schema)
            return _load(conn, dataset, chunks, datafile, member or datafile, rebuild)
    except psycopg.Error as error:
        raise LoadError(describe_error(error, datafile)) from error
    except UnicodeDecodeError as error:  # from transcoding an encoding PostgreSQL lacks
        encoding = dataset.file_format.encoding
        raise LoadError(f"{datafile}: cannot be read as {encoding}: {error}") from error


def _load(
    conn: psycopg.Connection,
    dataset: Dataset,
    chunks: Iterable[bytes],
    datafile: str,
    member: str,
    rebuild: bool,
) -> LoadResult:
    final = Tables(dataset.schema)
    tables = (
        Tables(dataset.schema, "L0" + REBUILD_SUFFIX, "L1" + REBUILD_SUFFIX) if rebuild else final
    )
    params = {"datafile": datafile, "member": member}
    with conn.cursor() as cursor, _settings(cursor, LOAD_SETTINGS):
        cursor.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(dataset.schema))
        )
        cursor.execute("SELECT set_config(%s, %s, true)", (DATAFILE_SETTING, datafile))
        # Ids this session drew for an earlier load that failed are below the ids handed out
        # since; forget them.
        cursor.execute("DISCARD SEQUENCES")
        new_l0 = not table_exists(cursor, tables.schema, tables.l0_name)
        new_l1 = dataset.has_l1 and create_table(
            cursor, tables.schema, tables.l1_name, _l1_columns(dataset)
        )
        previous_max_id = 0
        if not new_l0:
            cursor.execute(sql.SQL("SELECT coalesce(max(id), 0) FROM {}").format(tables.l0))
            previous_max_id = cursor.fetchone()[0]
        if dataset.mode is Mode.INCREMENTAL:
            if new_l0:
                _create_incremental_l0(cursor, dataset, tables, datafile)
            rows_read = l0_added = _copy(cursor, dataset, tables.l0, chunks)
            if new_l0:
                _set_datafile_default(cursor, tables)
        else:
            rows_read, l0_added = _load_snapshot_l0(cursor, dataset, tables, chunks, params, new_l0)
        if new_l0:
            l0_added -= add_l0_keys(cursor, dataset, tables)
        if l0_added:
            _settle_id_sequence(cursor, tables)
        if dataset.mode is Mode.SNAPSHOT and dataset.delete_previous and not rebuild:
            _delete_previous(cursor, dataset, tables, params)
        l1_added = 0
        if dataset.has_l1:
            cursor.execute(_l1_insert(dataset, tables, previous_max_id), params)
            l1_added = cursor.rowcount
            if new_l1:
                add_l1_keys(cursor, dataset, tables)
        if rebuild:
            swap_tables(cursor, dataset, tables, final)
    logger.info(
        "%s: loaded %s (%d rows read, %d L0 rows added, %d L1 rows added)",
        dataset.schema,
        datafile,
        rows_read,
        l0_added,
        l1_added,
    )
    return LoadResult(rows_read=rows_read, l0_rows_added=l0_added, l1_rows_added=l1_added)


@contextmanager
def _settings(cursor: psycopg.Cursor, settings: dict[str, str]) -> Iterator[None]:
    """``settings`` inside the block, then back to their values before it (a rollback of the
    block's transaction or savepoint also sets them back)."""
    names = list(settings)
    cursor.execute(
        sql.SQL("SELECT {}").format(
            sql.SQL(", ").join(sql.SQL("current_setting(%s)") for _ in names)
        ),
        names,
    )
    previous = dict(zip(names, cursor.fetchone(), strict=True))
    _set_local(cursor, settings)
    yield
    _set_local(cursor, previous)


def _set_local(cursor: psycopg.Cursor, settings: dict[str, str]) -> None:
    for name, value in settings.items():
        cursor.execute("SELECT set_config(%s, %s, true)", (name, value))


def table_exists(cursor: psycopg.Cursor, schema: str, name: str) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname = %s AND tablename = %s)",
        (schema, name),
    )
    return cursor.fetchone()[0]


def create_table(
    cursor: psycopg.Cursor,
    schema: str,
    name: str,
    columns: list[sql.Composable],
    storage: sql.Composable = NO_OPTIONS,
) -> bool:
    """Create the table unless it exists; True when it was created (it has no keys yet).

    Keys and indexes of a new table are added after it is filled: building an index from
    sorted data is much faster than keeping it up to date row by row.
    """
    if table_exists(cursor, schema, name):
        return False
    cursor.execute(
        sql.SQL("CREATE TABLE {} ({}){}").format(
            sql.Identifier(schema, name), sql.SQL(", ").join(columns), storage
        )
    )
    return True


def _create_incremental_l0(
    cursor: psycopg.Cursor, dataset: Dataset, tables: Tables, datafile: str
) -> None:
    """A new incremental L0 whose datafile_created defaults to ``datafile`` itself until
    ``_set_datafile_default``: no other transaction sees the table before this load commits,
    and a constant saves evaluating current_setting() for every row (4% of the COPY)."""
    columns = [
        sql.SQL("id integer NOT NULL"),
        sql.SQL("datafile_created text DEFAULT {}").format(sql.Literal(datafile)),
        *_data_columns(dataset.columns),
    ]
    create_table(cursor, tables.schema, tables.l0_name, columns)
    _attach_id_sequence(cursor, tables)


def _set_datafile_default(cursor: psycopg.Cursor, tables: Tables) -> None:
    """L0's datafile_created default for the loads to come: the datafile each one names."""
    cursor.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN datafile_created SET DEFAULT {}").format(
            tables.l0, DATAFILE_DEFAULT
        )
    )


def _attach_id_sequence(cursor: psycopg.Cursor, tables: Tables) -> None:
    """Give a new L0's id column its sequence, as ``serial`` does, drawn ``ID_CACHE`` at a time.

    A session keeps the ids it drew and did not use. So that ids stay dense and increasing
    from load to load, each load first forgets any (DISCARD SEQUENCES), and sets the sequence
    back to L0's largest id when it is done (``_settle_id_sequence``).
    """
    name = f"{tables.l0_name}_id_seq"
    sequence = sql.Identifier(tables.schema, name)
    cursor.execute(
        sql.SQL("CREATE SEQUENCE {} AS integer CACHE {} OWNED BY {}.id").format(
            sequence, sql.Literal(ID_CACHE), tables.l0
        )
    )
    cursor.execute(
        sql.SQL("ALTER TABLE {} ALTER COLUMN id SET DEFAULT nextval({}::regclass)").format(
            tables.l0, sql.Literal(sequence.as_string(cursor))
        )
    )


def _settle_id_sequence(cursor: psycopg.Cursor, tables: Tables) -> None:
    """Set L0's id sequence to L0's largest id: the next load's ids follow on from this load's,
    not from the last of the ids this session drew."""
    cursor.execute(
        sql.SQL("SELECT setval(pg_get_serial_sequence(%s, 'id'), max(id)) FROM {}").format(
            tables.l0
        ),
        (tables.l0.as_string(cursor),),
    )


def _data_columns(columns: Iterable[Column]) -> list[sql.Composable]:
    return [
        sql.SQL("{} {}").format(sql.Identifier(column.name), sql.SQL(column.type))
        for column in columns
    ]


def _l1_columns(dataset: Dataset) -> list[sql.Composable]:
    helper_columns = [sql.SQL("id serial NOT NULL"), sql.SQL("data_source_row_id integer")]
    return helper_columns + _data_columns(dataset.l1_columns)


def add_l0_keys(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> int:
    """Primary key on id and, for a snapshot, UNIQUE(data_hash) after removing repeats;
    returns the number of repeated rows removed."""
    _add_constraint(cursor, tables.l0, f"{tables.l0_name}_pkey", "PRIMARY KEY (id)")
    if dataset.mode is not Mode.SNAPSHOT:
        return 0
    name = f"{tables.l0_name}_data_hash_key"
    try:
        with cursor.connection.transaction():
            _add_constraint(cursor, tables.l0, name, "UNIQUE (data_hash)")
        return 0
    except psycopg.errors.UniqueViolation:
        # Rows repeated within the file: keep the first of each, as a load into an existing
        # table does.
        cursor.execute(
            sql.SQL(
                "DELETE FROM {l0} WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
                "(PARTITION BY data_hash ORDER BY id) AS copy FROM {l0}) AS r WHERE copy > 1)"
            ).format(l0=tables.l0)
        )
        removed = cursor.rowcount
        _add_constraint(cursor, tables.l0, name, "UNIQUE (data_hash)")
        return removed


def add_l1_keys(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> None:
    _add_constraint(cursor, tables.l1, f"{tables.l1_name}_pkey", "PRIMARY KEY (id)")
    if dataset.mode is Mode.SNAPSHOT and dataset.l1_unique_source_row:
        name = f"{tables.l1_name}_data_source_row_id_key"
        _add_constraint(cursor, tables.l1, name, "UNIQUE (data_source_row_id)")
    for column in dataset.l1_indexes:
        cursor.execute(
            sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"{tables.l1_name}_{column}_idx"),
                tables.l1,
                sql.Identifier(column),
            )
        )


def _add_constraint(cursor: psycopg.Cursor, table: sql.Composable, name: str, what: str) -> None:
    cursor.execute(
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            table, sql.Identifier(name), sql.SQL(what)
        )
    )


def _copy(
    cursor: psycopg.Cursor, dataset: Dataset, table: sql.Composable, chunks: Iterable[bytes]
) -> int:
    """COPY the file into ``table``'s data columns; return the number of rows."""
    file_format = dataset.file_format
    options = [
        sql.SQL("FORMAT csv"),
        sql.SQL("HEADER {}").format(sql.SQL("true" if file_format.header else "false")),
        sql.SQL("DELIMITER {}").format(sql.Literal(file_format.delimiter)),
        sql.SQL("QUOTE {}").format(sql.Literal(file_format.quote)),
        sql.SQL("ENCODING {}").format(sql.Literal(file_format.postgres_encoding or "UTF8")),
    ]
    if dataset.force_null_columns:
        options.append(
            sql.SQL("FORCE_NULL ({})").format(
                sql.SQL(", ").join(map(sql.Identifier, dataset.force_null_columns))
            )
        )
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH ({})").format(
        table,
        sql.SQL(", ").join(map(sql.Identifier, dataset.column_names)),
        sql.SQL(", ").join(options),
    )
    with cursor.copy(statement) as copy:
        for chunk in chunks:
            copy.write(chunk)
    return cursor.rowcount


def _load_snapshot_l0(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    chunks: Iterable[bytes],
    params: dict[str, str],
    new_table: bool,
) -> tuple[int, int]:
    """COPY the file into the stage, then build L0 from it or merge it into L0; returns the
    number of rows read and of rows inserted into L0 (repeats included in a new L0).

    The stage is unlogged rather than temporary: parallel workers can scan unlogged tables,
    not temporary ones. Its ``id`` numbers the rows in file order.
    """
    stage = sql.Identifier(tables.schema, STAGE_TABLE)
    cursor.execute(
        sql.SQL(
            "CREATE UNLOGGED TABLE {} (id integer GENERATED ALWAYS AS IDENTITY (CACHE {}), {})"
        ).format(stage, sql.Literal(ID_CACHE), sql.SQL(", ").join(_data_columns(dataset.columns)))
    )
    rows_read = _copy(cursor, dataset, stage, chunks)
    row_hash = sql.SQL('md5(ROW({})::text) COLLATE "C"').format(
        sql.SQL(", ").join(map(sql.Identifier, dataset.hashed_column_names))
    )
    if new_table:
        _create_snapshot_l0(cursor, dataset, tables, stage, row_hash, params)
        inserted = rows_read
    else:
        inserted = _merge_snapshot(cursor, dataset, tables, stage, row_hash, params)
    cursor.execute(sql.SQL("DROP TABLE {}").format(stage))
    return rows_read, inserted


def _create_snapshot_l0(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    stage: sql.Composable,
    row_hash: sql.Composable,
    params: dict[str, str],
) -> None:
    """L0 as one CREATE TABLE AS over the stage, ids in file order.

    Collation "C" for the hashes: hex digits, compared bytewise (faster index upkeep). Half-
    empty pages: every load sets datafile_updated on every row the file still has, and with
    room on the page PostgreSQL updates a row in place (a HOT update, no index entries), about
    eight times faster than moving it. Rows repeated within the file are removed when the
    unique key is added.
    """
    datafile = sql.Literal(params["datafile"])
    cursor.execute(
        sql.SQL(
            "CREATE TABLE {l0} WITH (fillfactor = 50) AS SELECT id, "
            "{datafile}::text AS datafile_created, {datafile}::text AS datafile_updated, "
            "{row_hash} AS data_hash, {columns} FROM {stage}"
        ).format(
            l0=tables.l0,
            datafile=datafile,
            row_hash=row_hash,
            columns=sql.SQL(", ").join(map(sql.Identifier, dataset.column_names)),
            stage=stage,
        )
    )
    _attach_id_sequence(cursor, tables)
    _set_datafile_default(cursor, tables)


def _merge_snapshot(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    stage: sql.Composable,
    row_hash: sql.Composable,
    params: dict[str, str],
) -> int:
    """Rows already in L0 only learn that this file has them too (same id, same created);
    new rows are inserted once each (the first of the file's copies), in hash order (cheap
    upkeep of the hash index). Returns the number of rows inserted."""
    hashes = sql.Identifier(tables.schema, HASHES_TABLE)
    cursor.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT id, {} AS data_hash FROM {}").format(
            hashes, row_hash, stage
        )
    )
    cursor.execute(
        sql.SQL(
            "UPDATE {l0} SET datafile_updated = %(datafile)s FROM {hashes} AS file "
            "WHERE {l0}.data_hash = file.data_hash "
            "AND {l0}.datafile_updated IS DISTINCT FROM %(datafile)s"
        ).format(l0=tables.l0, hashes=hashes),
        params,
    )
    names = dataset.column_names
    cursor.execute(
        sql.SQL(
            "INSERT INTO {l0} (datafile_created, datafile_updated, data_hash, {columns}) "
            "SELECT DISTINCT ON (file.data_hash) %(datafile)s, %(datafile)s, file.data_hash, "
            "{row_columns} FROM {hashes} AS file JOIN {stage} AS staged USING (id) "
            "WHERE NOT EXISTS (SELECT FROM {l0} WHERE {l0}.data_hash = file.data_hash) "
            "ORDER BY file.data_hash, file.id"
        ).format(
            l0=tables.l0,
            columns=sql.SQL(", ").join(map(sql.Identifier, names)),
            row_columns=sql.SQL(", ").join(sql.Identifier("staged", name) for name in names),
            hashes=hashes,
            stage=stage,
        ),
        params,
    )
    inserted = cursor.rowcount
    cursor.execute(sql.SQL("DROP TABLE {}").format(hashes))
    return inserted


def _delete_previous(
    cursor: psycopg.Cursor, dataset: Dataset, tables: Tables, params: dict[str, str]
) -> None:
    absent = sql.SQL("datafile_updated IS DISTINCT FROM %(datafile)s")
    if dataset.has_l1:
        cursor.execute(
            sql.SQL(
                "DELETE FROM {l1} WHERE data_source_row_id IN (SELECT id FROM {l0} WHERE {absent})"
            ).format(l1=tables.l1, l0=tables.l0, absent=absent),
            params,
        )
    cursor.execute(sql.SQL("DELETE FROM {} WHERE {}").format(tables.l0, absent), params)


def _l1_insert(dataset: Dataset, tables: Tables, after_id: int) -> sql.Composable:
    context = L1Context(l0=tables.l0, l1=tables.l1, after_id=sql.Literal(after_id))
    if dataset.l1_builder is not None:
        return dataset.l1_builder(dataset, context)
    expressions = [
        sql.SQL(column.expression) if column.expression else sql.Identifier(column.name)
        for column in dataset.l1_columns
    ]
    return sql.SQL(
        "INSERT INTO {l1} (data_source_row_id, {names}) SELECT id, {expressions} "
        "FROM {l0} WHERE id > {after_id}"
    ).format(
        l1=context.l1,
        names=sql.SQL(", ").join(sql.Identifier(column.name) for column in dataset.l1_columns),
        expressions=sql.SQL(", ").join(expressions),
        l0=context.l0,
        after_id=context.after_id,
    )


def swap_tables(cursor: psycopg.Cursor, dataset: Dataset, new: Tables, final: Tables) -> None:
    """Replace ``final``'s tables by ``new``'s: drop, rename, and rename indexes/sequences."""
    pairs = [(new.l0_name, final.l0_name)]
    if dataset.has_l1:
        pairs.append((new.l1_name, final.l1_name))
    for new_name, final_name in pairs:
        cursor.execute(
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(dataset.schema, final_name))
        )
        cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(dataset.schema, new_name), sql.Identifier(final_name)
            )
        )
        _rename_dependents(cursor, dataset.schema, new_name, final_name)


def _rename_dependents(cursor: psycopg.Cursor, schema: str, old: str, new: str) -> None:
    """Rename the indexes and sequences named after table ``old`` to be named after ``new``.

    PostgreSQL names them ``<table>_pkey``, ``<table>_id_seq``, ...; a later rebuild creates
    the same names again, so they must follow the table.
    """
    cursor.execute(
        "SELECT c.relname, c.relkind FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('i', 'S') AND starts_with(c.relname, %s)",
        (schema, old + "_"),
    )
    for relname, relkind in cursor.fetchall():
        kind = sql.SQL("INDEX" if relkind == "i" else "SEQUENCE")
        cursor.execute(
            sql.SQL("ALTER {} {} RENAME TO {}").format(
                kind, sql.Identifier(schema, relname), sql.Identifier(new + relname[len(old) :])
            )
        )


_COPY_CONTEXT = re.compile(
    r"^COPY .+?, line (?P<line>\d+)(?:, column (?P<column>.+?): (?P<value>.*)|: (?P<text>.*))?$"
)
_MAX_QUOTED = 200


def describe_error(error: psycopg.Error, datafile: str) -> str:
    """A message naming the datafile, and for COPY errors the line, column and value."""
    diag = error.diag
    primary = diag.message_primary or str(error).strip()
    context = (diag.context or "").splitlines()
    match = _COPY_CONTEXT.match(context[0]) if context else None
    if match is None:
        return f"{datafile}: {primary}"
    where = f"line {match['line']}"
    if match["column"]:
        value = match["value"]
        value = "empty (NULL)" if value == "null input" else _truncate(value)
        where += f", column {match['column']}, value {value}"
    elif match["text"]:
        where += f" ({_truncate(match['text'])})"
    return f"{datafile}: {where}: {primary}"


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_QUOTED else text[:_MAX_QUOTED] + "…"


def create_empty_tables(conn: psycopg.Connection, dataset: Dataset) -> bool:
    """Create the dataset's schema and those of its tables (L0, L1) that do not exist, empty,
    laid out and keyed as a first load leaves them; True when a table was created.

    Idempotent: existing tables are left as they are. Runs in one transaction (a savepoint
    when the caller has one open) under the dataset's lock.
    """
    tables = Tables(dataset.schema)
    created = False
    with conn.transaction(), conn.cursor() as cursor:
        lock_dataset_for_transaction(conn, dataset.schema)
        cursor.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(dataset.schema))
        )
        if not table_exists(cursor, tables.schema, tables.l0_name):
            _create_empty_l0(cursor, dataset, tables)
            add_l0_keys(cursor, dataset, tables)
            created = True
        if dataset.has_l1 and create_table(
            cursor, tables.schema, tables.l1_name, _l1_columns(dataset)
        ):
            add_l1_keys(cursor, dataset, tables)
            created = True
    return created


def _create_empty_l0(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> None:
    """An empty L0 with the columns, in order, that a first load of the dataset gives it."""
    if dataset.mode is Mode.INCREMENTAL:
        _create_incremental_l0(cursor, dataset, tables, datafile="")
    else:
        columns = [
            sql.SQL("id integer NOT NULL"),
            sql.SQL("datafile_created text"),
            sql.SQL("datafile_updated text"),
            sql.SQL('data_hash text COLLATE "C"'),
            *_data_columns(dataset.columns),
        ]
        storage = sql.SQL(" WITH (fillfactor = 50)")
        create_table(cursor, tables.schema, tables.l0_name, columns, storage)
        _attach_id_sequence(cursor, tables)
    _set_datafile_default(cursor, tables)
