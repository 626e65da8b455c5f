"""The loader: a file (or a zip's members) into a dataset's L0/L1 tables, in one transaction.

Semantics (see the design's "Dataset tables"):

- incremental: the file's rows are appended to L0 (``datafile_created`` = the datafile), and
  each new L0 row gets its L1 row (``data_source_row_id`` = the L0 ``id``);
- snapshot: rows are identified by ``data_hash``, the md5 of ``ROW(<hash columns>)::text``
  over the typed values. A row not yet in L0 is inserted (created = updated = the datafile),
  a row already there only gets ``datafile_updated``; duplicates within the file collapse.
  L1 receives the rows this file created. With ``delete_previous``, rows absent from the file
  are deleted (not on a rebuild);
- rebuild (``--force``, uploads): new tables are filled under temporary names and swapped in
  by rename at the end, so readers never see an empty table. A rebuild from several files
  loads each with ``swap=False`` and swaps once, after the last (``swap_rebuilt_tables``).

Versions (``pipelines.versions``): every load that changes a table records a new version of
it; a swap moves the replaced table into the versions schema instead of dropping it, and a
load that deletes rows in place first copies the rows earlier versions hold. A read that
follows ``next`` thus ends on the version it began on.

Ids: every COPY reads each row's id with its values (``pipelines.row_ids``), numbered on from
the table's largest id, under the dataset's lock; the id sequences, which INSERTs draw from,
are set to follow on. Ids thus stay dense whatever earlier loads that failed or were killed
did (sequences are not transactional).

A table that does not exist yet (a first load, a rebuild) is created without keys, filled,
and then given its primary key and unique keys: building an index once is much faster than
keeping it up to date row by row. A new incremental L0 is filled through several connections
at once when its first file is large (``pipelines.copy_streams``). L1 rows are built for the
L0 rows whose id is above L0's largest id before the load (loads of a dataset never overlap).

Speed: incremental rows are COPYed straight into L0. Snapshot rows are COPYed into an unlogged
stage table and hashed from there by statements that parallel workers can help with (CREATE
TABLE AS; INSERT cannot run in parallel); a new snapshot L0 is that CREATE TABLE AS itself.

Concurrency: a transaction-level advisory lock per dataset serialises loads; a second load
of the same dataset waits for the first to commit. Readers keep reading the old rows until
the load commits (MVCC), and then see all of the new ones.

Files come from the reading layer (``pipelines.reading``: encoding, line breaks, header,
zip members) and are copied by ``pipelines.copying`` (straight into an incremental L0 when
every column of the file is the dataset's, else through the stage). Rows with no value at all
are deleted and counted; a load left with no data rows is refused.

Failures roll the whole transaction back; the error is re-raised as ``LoadError`` naming the
file, line, column and value.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from pipelines.copy_streams import StreamError, copy_into_new_table
from pipelines.copying import CopyProblem, Stage, copies_directly, copy_file, copy_problem
from pipelines.datasets import Column, Dataset, L1Context, Mode
from pipelines.locking import lock_dataset_for_transaction
from pipelines.reading import NoDataRows, ReadError, ReadFile
from pipelines.versions import record_version, replace_table, retain_copy

logger = logging.getLogger(__name__)

# A snapshot load's work tables, in the dataset's schema and dropped before the load commits.
STAGE_TABLE = "dss_stage"
HASHES_TABLE = "dss_hashes"
REBUILD_SUFFIX = ".new"
# The session setting that L0's datafile_created column takes its default from, so that COPY
# can write straight into L0 without naming the datafile on every row.
DATAFILE_SETTING = "dss.datafile"
DATAFILE_DEFAULT = sql.SQL("current_setting({}, true)").format(sql.Literal(DATAFILE_SETTING))
# L0's id sequence, which INSERTs draw from (a COPY reads the ids with the rows), hands a
# session this many ids at a time (see _restart_id_sequences for why ids stay dense).
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
    # Stored values never depend on the server's or the session's settings: dates are read
    # year first (a day-first or month-first value is refused unless its column declares its
    # format), declared formats with times are read in UTC.
    "DateStyle": "ISO, YMD",
    "TimeZone": "UTC",
    # The load's own connection waits, in its transaction, while the COPY streams copy
    # (pipelines.copy_streams): a timeout on idle transactions must not end it then.
    "idle_in_transaction_session_timeout": "0",
}
# What a COPY's values are read with (for a COPY on a connection of its own).
COPY_SESSION = {name: LOAD_SETTINGS[name] for name in ("DateStyle", "TimeZone")}
NO_OPTIONS = sql.SQL("")


class LoadError(Exception):
    """A file could not be loaded; the message says where and why, for a person to act on.

    ``problem``: PostgreSQL's error in parts when it refused the file (else None); a file the
    reading layer refused is this error's ``__cause__`` (a ``ReadError``).
    """

    def __init__(self, message: str, problem: CopyProblem | None = None):
        super().__init__(message)
        self.problem = problem


@dataclass(frozen=True)
class LoadResult:
    """What a load did: data rows read (rows with no value at all are ``skipped_rows``
    instead), rows added to L0 and L1, and the file columns the dataset ignores.
    ``skipped_parts``: (part, why) for each part of the file a parser could not read and
    left out (a broken document of a bulk zip)."""

    rows_read: int
    l0_rows_added: int
    l1_rows_added: int
    skipped_rows: int = 0
    ignored_columns: tuple[str, ...] = ()
    skipped_parts: tuple[tuple[str, str], ...] = ()

    @property
    def notes(self) -> str:
        """What a person should know about a load that succeeded; empty when nothing."""
        notes = []
        if self.ignored_columns:
            notes.append(f"ignored extra columns: {', '.join(self.ignored_columns)}")
        if self.skipped_rows:
            notes.append(f"skipped {self.skipped_rows} row(s) with no value")
        if self.skipped_parts:
            parts = "; ".join(f"{part} ({why})" for part, why in self.skipped_parts)
            notes.append(f"skipped {len(self.skipped_parts)} unreadable part(s): {parts}")
        return "; ".join(notes)


@dataclass
class _Filled:
    """How L0 was filled: rows read and added, rows skipped, columns ignored, and whether by
    several COPY streams."""

    rows_read: int = 0
    l0_added: int = 0
    skipped: int = 0
    ignored: list[str] = field(default_factory=list)
    may_have_empty_rows: bool = False
    streamed: bool = False


@dataclass
class _Reading:
    """The file being copied, for error messages."""

    file: ReadFile | None = None


@dataclass(frozen=True)
class _Target:
    """Where a load writes: the dataset's tables, or the rebuild's (swapped in at its end
    when ``swap``)."""

    rebuild: bool
    swap: bool


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
    files: Iterable[ReadFile],
    *,
    datafile: str,
    member: str | None = None,
    rebuild: bool = False,
    swap: bool = True,
) -> LoadResult:
    """Load ``files`` (from ``pipelines.reading``: a file, or a zip's members) into ``dataset``.

    ``datafile`` is recorded in ``datafile_created``/``datafile_updated``. ``rebuild`` loads
    into new tables (the first rebuilding load creates them, later ones add to them) which
    replace the dataset's tables at the end of this load, or, with ``swap=False``, when
    ``swap_rebuilt_tables`` is called in the same transaction. Runs in one transaction (a
    savepoint when the caller has one open); raises ``LoadError`` and changes nothing on
    failure, and for a load with no data rows.
    """
    reading = _Reading()
    try:
        with conn.transaction():
            lock_dataset_for_transaction(conn, dataset.schema)
            target = _Target(rebuild=rebuild, swap=rebuild and swap)
            return _load(conn, dataset, files, datafile, member or datafile, target, reading)
    except psycopg.Error as error:
        label = reading.file.label if reading.file else datafile
        problem = copy_problem(error, label, dataset, reading.file, numbered=True)
        raise LoadError(problem.message, problem) from error
    except StreamError as error:
        label = reading.file.label if reading.file else datafile
        problem = copy_problem(
            error.error,
            label,
            dataset,
            reading.file,
            numbered=True,
            line_in_file=error.line_in_file,
        )
        raise LoadError(problem.message, problem) from error.error
    except ReadError as error:
        raise LoadError(str(error)) from error


def _load(
    conn: psycopg.Connection,
    dataset: Dataset,
    files: Iterable[ReadFile],
    datafile: str,
    member: str,
    target: _Target,
    reading: _Reading,
) -> LoadResult:
    """The steps of a load, in order: the session, the tables, L0, its keys, L1, the swap
    or the new versions."""
    final = Tables(dataset.schema)
    tables = rebuild_tables(dataset) if target.rebuild else final
    params = {"datafile": datafile, "member": member}
    with conn.cursor() as cursor, _settings(cursor, LOAD_SETTINGS):
        _prepare_session(cursor, dataset, datafile)
        new_l0 = not table_exists(cursor, tables.schema, tables.l0_name)
        new_l1 = dataset.has_l1 and create_table(
            cursor, tables.schema, tables.l1_name, _l1_columns(dataset)
        )
        previous_max_id = 0 if new_l0 else _restart_id_sequences(cursor, dataset, tables)
        fill = _fill_incremental_l0 if dataset.mode is Mode.INCREMENTAL else _fill_snapshot_l0
        filled = fill(cursor, dataset, tables, files, params, new_l0, previous_max_id, reading)
        if filled.rows_read == 0:
            raise NoDataRows(f"{datafile}: no data rows")
        if new_l0:
            filled.l0_added -= add_l0_keys(cursor, dataset, tables)
        deleted = False
        if dataset.mode is Mode.SNAPSHOT and dataset.delete_previous and not new_l0:
            deleted = _delete_previous(cursor, dataset, tables, params, live=not target.rebuild)
        l1_added = _fill_l1(
            cursor, dataset, tables, previous_max_id, params, new_l1, filled.streamed
        )
        if target.swap:
            swap_tables(cursor, dataset, tables, final)
        elif not target.rebuild and (filled.l0_added or l1_added or deleted):
            _record_versions(cursor, dataset)
    logger.info(
        "%s: loaded %s (%d rows read, %d skipped, %d L0 rows added, %d L1 rows added)",
        dataset.schema,
        datafile,
        filled.rows_read,
        filled.skipped,
        filled.l0_added,
        l1_added,
    )
    return LoadResult(
        rows_read=filled.rows_read,
        l0_rows_added=filled.l0_added,
        l1_rows_added=l1_added,
        skipped_rows=filled.skipped,
        ignored_columns=tuple(dict.fromkeys(filled.ignored)),
    )


def _prepare_session(cursor: psycopg.Cursor, dataset: Dataset, datafile: str) -> None:
    cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(dataset.schema)))
    cursor.execute("SELECT set_config(%s, %s, true)", (DATAFILE_SETTING, datafile))
    # Ids this session drew for an earlier load that failed are below the ids handed out
    # since; forget them.
    cursor.execute("DISCARD SEQUENCES")


def rebuild_tables(dataset: Dataset) -> Tables:
    """The tables a rebuild fills before they are swapped in."""
    return Tables(dataset.schema, "L0" + REBUILD_SUFFIX, "L1" + REBUILD_SUFFIX)


def _restart_id_sequences(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> int:
    """Set the id sequences of L0 and L1 to follow on from their largest ids; L0's largest.

    Sequences are not transactional: ids drawn by a load that failed or was killed stay
    drawn. Under the dataset's lock no other load draws from them, so each load starts again
    from the table's largest id and ids stay dense.
    """
    largest = 0
    names = [tables.l0_name] + ([tables.l1_name] if dataset.has_l1 else [])
    for name in names:
        table = sql.Identifier(tables.schema, name)
        cursor.execute(
            sql.SQL(
                "SELECT coalesce(max(id), 0), setval(pg_get_serial_sequence(%s, 'id'), "
                "coalesce(max(id), 0) + 1, false) FROM {}"
            ).format(table),
            (table.as_string(cursor),),
        )
        if name == tables.l0_name:
            largest = cursor.fetchone()[0]
    return largest


def _continue_id_sequence(cursor: psycopg.Cursor, tables: Tables, next_id: int) -> None:
    """L0's id sequence on from the ids that a COPY read with the rows (``next_id`` next)."""
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s, false)",
        (tables.l0.as_string(cursor), next_id),
    )


def _record_versions(cursor: psycopg.Cursor, dataset: Dataset) -> None:
    for name in ("L0", "L1") if dataset.has_l1 else ("L0",):
        record_version(cursor, dataset.schema, name)


def _fill_l1(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    previous_max_id: int,
    params: dict[str, str],
    new_l1: bool,
    streamed: bool,
) -> int:
    """L1 rows for the L0 rows this load created; the number added. ``streamed``: L0's rows
    were copied by several streams (``_Destination.streamed``)."""
    if not dataset.has_l1:
        return 0
    cursor.execute(l1_insert(dataset, tables, previous_max_id, in_id_order=streamed), params)
    added = cursor.rowcount
    if new_l1:
        add_l1_keys(cursor, dataset, tables)
    return added


@dataclass
class _Destination:
    """A table that files are copied into: the id of its next row, and whether its rows are
    written frozen (it was made in this transaction). A table still to be made
    (``to_create``: its columns) is made by the first COPY into it, through several streams
    when the file is large (``pipelines.copy_streams``)."""

    schema: str
    name: str
    next_id: int
    frozen: bool = False
    to_create: list[sql.Composable] | None = None
    # Filled by several COPY streams: its rows lie in the order the streams wrote them.
    streamed: bool = False

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _copy_each(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    files: Iterable[ReadFile],
    reading: _Reading,
    target: Callable[[ReadFile, int], tuple[_Destination, list[str]]],
    filled: _Filled,
) -> int:
    """COPY every file where ``target`` says (the table, and its columns in the file's
    order); the number of rows copied. A file with no data rows refuses the load."""
    copied = 0
    for number, read_file in enumerate(files):
        reading.file = read_file
        destination, columns = target(read_file, number)
        rows = _copy_into(cursor, dataset, destination, read_file, columns)
        if rows == 0:
            raise NoDataRows(f"{read_file.label}: no data rows")
        copied += rows
        filled.ignored.extend(read_file.match.ignored)
        filled.may_have_empty_rows |= read_file.may_have_empty_rows
    reading.file = None
    return copied


def _copy_into(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    destination: _Destination,
    read_file: ReadFile,
    columns: list[str],
) -> int:
    if destination.to_create is not None:
        rows, destination.frozen = copy_into_new_table(
            cursor,
            dataset,
            destination.schema,
            destination.name,
            destination.to_create,
            read_file,
            columns,
            first_id=destination.next_id,
            session=COPY_SESSION,
        )
        destination.streamed = not destination.frozen
        destination.to_create = None
    else:
        rows = copy_file(
            cursor,
            dataset,
            destination.table,
            read_file,
            columns,
            first_id=destination.next_id,
            freeze=destination.frozen,
        )
    destination.next_id += rows
    return rows


def _create_stage(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> Stage:
    """The load's stage table (unlogged: parallel workers can scan it, unlike a temporary
    table); its ``id`` numbers the rows in file order, from 1."""
    stage = Stage(dataset, sql.Identifier(tables.schema, STAGE_TABLE))
    cursor.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} (id integer NOT NULL, {})").format(
            stage.table, sql.SQL(", ").join(stage.column_definitions())
        )
    )
    stage.add_checks(cursor)
    return stage


def _no_value(dataset: Dataset) -> sql.Composable:
    """True for a row with no value at all: every column NULL or empty text."""
    tests = [
        sql.SQL("{} IS NULL").format(sql.Identifier(column.name))
        if column.type != "text"
        and column.date_format is None
        and not dataset.file_format.decimal_comma
        else sql.SQL("coalesce({}::text, '') = ''").format(sql.Identifier(column.name))
        for column in dataset.columns
    ]
    return sql.SQL(" AND ").join(tests)


def _delete_empty_rows(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    table: sql.Composable,
    filled: _Filled,
    after_id: int | None = None,
) -> int:
    """Delete the rows with no value at all (blank lines, ``,,,`` lines); their number. Only
    looked for when the reading layer saw a line that may be one (a scan of every row)."""
    if not filled.may_have_empty_rows:
        return 0
    where = _no_value(dataset)
    if after_id is not None:
        where = sql.SQL("id > {} AND ({})").format(sql.Literal(after_id), where)
    cursor.execute(sql.SQL("DELETE FROM {} WHERE {}").format(table, where))
    return cursor.rowcount


def _fill_incremental_l0(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    files: Iterable[ReadFile],
    params: dict[str, str],
    new_l0: bool,
    previous_max_id: int,
    reading: _Reading,
) -> _Filled:
    """Files whose columns are all the dataset's are copied straight into L0; from the first
    one that is not (extra columns, converted values), the rest go through the stage."""
    filled = _Filled()
    stages: list[Stage] = []
    l0 = _Destination(tables.schema, tables.l0_name, next_id=previous_max_id + 1)
    if new_l0:
        l0.to_create = _incremental_l0_columns(dataset)
    staged = _Destination(tables.schema, STAGE_TABLE, next_id=1)

    def target(read_file: ReadFile, number: int) -> tuple[_Destination, list[str]]:
        if not stages and copies_directly(dataset, read_file):
            return l0, list(read_file.match.targets)
        if not stages:
            stages.append(_create_stage(cursor, dataset, tables))
        return staged, stages[0].spare_columns(cursor, read_file, number)

    copied = _copy_each(cursor, dataset, files, reading, target, filled)
    filled.streamed = l0.streamed
    if new_l0:
        if l0.to_create is not None:  # no file was copied straight into it
            create_table(cursor, tables.schema, tables.l0_name, l0.to_create)
        _attach_id_sequence(cursor, tables)
    if l0.next_id > previous_max_id + 1:
        _continue_id_sequence(cursor, tables, l0.next_id)
    filled.skipped = _delete_empty_rows(cursor, dataset, tables.l0, filled, previous_max_id)
    if stages:
        stage = stages[0]
        filled.skipped += _delete_empty_rows(cursor, dataset, stage.table, filled)
        cursor.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ORDER BY id").format(
                tables.l0,
                sql.SQL(", ").join(map(sql.Identifier, dataset.column_names)),
                sql.SQL(", ").join(stage.expressions()),
                stage.table,
            )
        )
        cursor.execute(sql.SQL("DROP TABLE {}").format(stage.table))
    if new_l0:
        _add_datafile_column(cursor, tables, params["datafile"])
    filled.rows_read = filled.l0_added = copied - filled.skipped
    return filled


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


def _incremental_l0_columns(dataset: Dataset) -> list[sql.Composable]:
    """A new incremental L0's columns: its id and data columns. ``datafile_created`` comes
    last, added by ``_add_datafile_column`` once the table is filled."""
    return [sql.SQL("id integer NOT NULL"), *_data_columns(dataset.columns)]


def _add_datafile_column(cursor: psycopg.Cursor, tables: Tables, datafile: str | None) -> None:
    """Add a new incremental L0's datafile_created, ``datafile`` for the rows it holds, and
    its default for the loads to come.

    Added after the first file's rows are in: PostgreSQL keeps the constant default of a
    column added to a table with rows in its catalog instead of in each row (PostgreSQL 11's
    "fast default"), so the rows hold no copy of the datafile's name. Written into each row,
    a 60-byte name cost a tenth of the COPY's time, and half as much disk and WAL again (195
    MB against 129 MB for the bench's 1,000,000 rows).
    """
    first = sql.Literal(datafile) if datafile is not None else DATAFILE_DEFAULT
    cursor.execute(
        sql.SQL("ALTER TABLE {} ADD COLUMN datafile_created text DEFAULT {}").format(
            tables.l0, first
        )
    )
    if datafile is not None:
        _set_datafile_default(cursor, tables)


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
    from load to load, each load first forgets any (DISCARD SEQUENCES) and restarts the
    sequence after L0's largest id (``_restart_id_sequences``).
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


def _fill_snapshot_l0(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    files: Iterable[ReadFile],
    params: dict[str, str],
    new_l0: bool,
    previous_max_id: int,
    reading: _Reading,
) -> _Filled:
    """COPY the files into the stage, then build L0 from it or merge it into L0; rows read
    and rows inserted into L0 (repeats included in a new L0)."""
    stage = _create_stage(cursor, dataset, tables)
    filled = _Filled()
    staged = _Destination(tables.schema, STAGE_TABLE, next_id=1)

    def target(read_file: ReadFile, number: int) -> tuple[_Destination, list[str]]:
        return staged, stage.spare_columns(cursor, read_file, number)

    copied = _copy_each(cursor, dataset, files, reading, target, filled)
    filled.skipped = _delete_empty_rows(cursor, dataset, stage.table, filled)
    filled.rows_read = copied - filled.skipped
    if filled.rows_read:
        expressions = dict(zip(dataset.column_names, stage.expressions(), strict=True))
        row_hash = sql.SQL('md5(ROW({})::text) COLLATE "C"').format(
            sql.SQL(", ").join(expressions[name] for name in dataset.hashed_column_names)
        )
        if new_l0:
            _create_snapshot_l0(cursor, dataset, tables, stage, row_hash, params)
            filled.l0_added = filled.rows_read
        else:
            filled.l0_added = _merge_snapshot(cursor, dataset, tables, stage, row_hash, params)
    cursor.execute(sql.SQL("DROP TABLE {}").format(stage.table))
    return filled


def _create_snapshot_l0(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    stage: Stage,
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
            columns=sql.SQL(", ").join(
                sql.SQL("{} AS {}").format(expression, sql.Identifier(name))
                for expression, name in zip(stage.expressions(), dataset.column_names, strict=True)
            ),
            stage=stage.table,
        )
    )
    _attach_id_sequence(cursor, tables)
    _set_datafile_default(cursor, tables)


def _merge_snapshot(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    stage: Stage,
    row_hash: sql.Composable,
    params: dict[str, str],
) -> int:
    """Rows already in L0 only learn that this file has them too (same id, same created);
    new rows are inserted once each (the first of the file's copies), in hash order (cheap
    upkeep of the hash index). Returns the number of rows inserted."""
    hashes = sql.Identifier(tables.schema, HASHES_TABLE)
    cursor.execute(
        sql.SQL("CREATE UNLOGGED TABLE {} AS SELECT id, {} AS data_hash FROM {}").format(
            hashes, row_hash, stage.table
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
            row_columns=sql.SQL(", ").join(stage.expressions("staged")),
            hashes=hashes,
            stage=stage.table,
        ),
        params,
    )
    inserted = cursor.rowcount
    cursor.execute(sql.SQL("DROP TABLE {}").format(hashes))
    return inserted


def _delete_previous(
    cursor: psycopg.Cursor,
    dataset: Dataset,
    tables: Tables,
    params: dict[str, str],
    *,
    live: bool,
) -> bool:
    """Delete the rows absent from this file (from L1 first); whether any were. In ``live``
    tables, the rows of the earlier versions are copied first, so that they stay readable."""
    absent = sql.SQL("datafile_updated IS DISTINCT FROM %(datafile)s")
    cursor.execute(
        sql.SQL("SELECT EXISTS (SELECT FROM {} WHERE {})").format(tables.l0, absent), params
    )
    if not cursor.fetchone()[0]:
        return False
    if live:
        for name in (tables.l0_name, tables.l1_name) if dataset.has_l1 else (tables.l0_name,):
            retain_copy(cursor, tables.schema, name)
    if dataset.has_l1:
        cursor.execute(
            sql.SQL(
                "DELETE FROM {l1} WHERE data_source_row_id IN (SELECT id FROM {l0} WHERE {absent})"
            ).format(l1=tables.l1, l0=tables.l0, absent=absent),
            params,
        )
    cursor.execute(sql.SQL("DELETE FROM {} WHERE {}").format(tables.l0, absent), params)
    return True


def l1_insert(
    dataset: Dataset, tables: Tables, after_id: int, *, in_id_order: bool = False
) -> sql.Composable:
    """The INSERT of L1's rows for L0's rows above ``after_id``; by default one L1 row per L0
    row, in L0's order on disk, which is the file's, or with ``in_id_order`` (an L0 filled by
    several COPY streams, its rows in the streams' order) sorted by id, so that L1's ids
    follow the file's rows too (the sort costs some 0.5 s a million rows, so only then)."""
    context = L1Context(l0=tables.l0, l1=tables.l1, after_id=sql.Literal(after_id))
    if dataset.l1_builder is not None:
        return dataset.l1_builder(dataset, context)
    expressions = [
        sql.SQL(column.expression) if column.expression else sql.Identifier(column.name)
        for column in dataset.l1_columns
    ]
    return sql.SQL(
        "INSERT INTO {l1} (data_source_row_id, {names}) SELECT id, {expressions} "
        "FROM {l0} WHERE id > {after_id}{order}"
    ).format(
        order=sql.SQL(" ORDER BY id" if in_id_order else ""),
        l1=context.l1,
        names=sql.SQL(", ").join(sql.Identifier(column.name) for column in dataset.l1_columns),
        expressions=sql.SQL(", ").join(expressions),
        l0=context.l0,
        after_id=context.after_id,
    )


def swap_tables(cursor: psycopg.Cursor, dataset: Dataset, new: Tables, final: Tables) -> None:
    """Replace ``final``'s tables by ``new``'s and record their versions. A replaced table is
    retained (``pipelines.versions.retain_table``), so that reads begun on it end on it."""
    pairs = [(new.l0_name, final.l0_name)]
    if dataset.has_l1:
        pairs.append((new.l1_name, final.l1_name))
    for new_name, final_name in pairs:
        replace_table(cursor, dataset.schema, new_name, final_name)
    _record_versions(cursor, dataset)


def swap_rebuilt_tables(conn: psycopg.Connection, dataset: Dataset) -> bool:
    """Swap in the tables that loads with ``rebuild=True, swap=False`` filled in the current
    transaction; False (and nothing changed) when no such load succeeded."""
    with conn.transaction(), conn.cursor() as cursor:
        lock_dataset_for_transaction(conn, dataset.schema)
        tables = rebuild_tables(dataset)
        if not table_exists(cursor, tables.schema, tables.l0_name):
            return False
        swap_tables(cursor, dataset, tables, Tables(dataset.schema))
        return True


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
        if created:
            _record_versions(cursor, dataset)
    return created


def _create_empty_l0(cursor: psycopg.Cursor, dataset: Dataset, tables: Tables) -> None:
    """An empty L0 with the columns, in order, that a first load of the dataset gives it."""
    if dataset.mode is Mode.INCREMENTAL:
        create_table(cursor, tables.schema, tables.l0_name, _incremental_l0_columns(dataset))
        _attach_id_sequence(cursor, tables)
        _add_datafile_column(cursor, tables, datafile=None)
        return
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
