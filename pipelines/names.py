"""Names in PostgreSQL: the limits every identifier meets, and the columns the service adds.

PostgreSQL cuts an identifier longer than 63 *bytes* (UTF-8) without an error, so two long
names can become one. The service measures every name in bytes: a name given in a definition
that is too long is refused when the definition is made (``check_identifier``); a name the
service derives from a header is shortened by a rule that keeps it unique
(``derive_column_names``).
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence

# PostgreSQL's NAMEDATALEN - 1: the longest identifier, in bytes.
MAX_IDENTIFIER_BYTES = 63
# The most columns a PostgreSQL table can have (the service's own columns count too).
MAX_TABLE_COLUMNS = 1600

# The columns the service adds to the tables it makes (see pipelines.loading), in order.
SNAPSHOT_L0_COLUMNS = ("id", "datafile_created", "datafile_updated", "data_hash")
INCREMENTAL_L0_COLUMNS = ("id", "datafile_created")
L1_COLUMNS = ("id", "data_source_row_id")
# The names a data column may not take: every column the service adds.
RESERVED_COLUMNS = frozenset(SNAPSHOT_L0_COLUMNS + INCREMENTAL_L0_COLUMNS + L1_COLUMNS)
# The columns the service adds that the API never serves.
HELPER_COLUMNS = ("datafile_created", "datafile_updated", "data_hash")

# A column name that needs no renaming: what the upload journey asks of a header.
VALID_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_]*")


def identifier_bytes(name: str) -> int:
    """The length of ``name`` as PostgreSQL counts it: bytes of UTF-8."""
    return len(name.encode("utf-8"))


def check_identifier(name: str, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``name`` is empty, holds NUL or ``%``, or is
    longer than 63 bytes.

    ``what`` says which name it is, e.g. ``"column 'a' of test.things"``.
    """
    if not name:
        raise ValueError(f"{what}: a name cannot be empty")
    if "\x00" in name:
        raise ValueError(f"{what}: a name cannot contain the NUL character")
    if "%" in name:
        # psycopg reads % in a query with parameters as a placeholder, quoted or not.
        raise ValueError(f"{what}: {name!r} contains %, which the loader's SQL cannot hold")
    size = identifier_bytes(name)
    if size > MAX_IDENTIFIER_BYTES:
        raise ValueError(
            f"{what}: {name!r} is {size} bytes long; PostgreSQL names are at most "
            f"{MAX_IDENTIFIER_BYTES} bytes (UTF-8) and a longer one would be cut"
        )


def check_column_count(data_columns: int, added: int, what: str) -> None:
    """Raise ``ValueError`` when ``data_columns`` plus the ``added`` service columns exceed
    the most columns a table can have."""
    total = data_columns + added
    if total > MAX_TABLE_COLUMNS:
        raise ValueError(
            f"{what} would have {total} columns ({data_columns} data columns and {added} the "
            f"service adds); a PostgreSQL table holds at most {MAX_TABLE_COLUMNS}"
        )


def is_valid_column_name(name: str) -> bool:
    """Whether ``name`` can be a column name as it is: ``^[a-z][a-z0-9_]*$``, at most 63
    bytes, and not one of the service's own columns."""
    return (
        VALID_COLUMN_NAME.fullmatch(name) is not None
        and identifier_bytes(name) <= MAX_IDENTIFIER_BYTES
        and name not in RESERVED_COLUMNS
    )


def derive_column_names(headers: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """The column name each header loads as, in order: valid, unique and at most 63 bytes.

    A header that is already a valid column name (``is_valid_column_name``) keeps it, the
    first time it appears. Any other header is lower-cased, its accents dropped (``é`` ->
    ``e``), every other character that is not ``[a-z0-9_]`` made ``_`` (runs of ``_``
    collapse, and none lead or trail), prefixed with ``c_`` when it starts with a digit,
    ``column_<position>`` (1-based) when nothing is left, and cut to 63 bytes. A name that is
    reserved, already given or in ``taken`` gets the first free suffix ``_1``, ``_2``, ...,
    cutting the name further so that the suffix fits.
    """
    taken = set(taken)
    kept = _kept_positions(headers, taken)
    used = {*RESERVED_COLUMNS, *taken, *(headers[index] for index in kept)}
    names = []
    for position, header in enumerate(headers, start=1):
        if position - 1 in kept:
            names.append(header)
            continue
        name = _unique(_clean(header) or f"column_{position}", used)
        used.add(name)
        names.append(name)
    return names


def _kept_positions(headers: Sequence[str], taken: set[str]) -> set[int]:
    """The indexes of the headers that keep their name: first valid occurrences."""
    kept, seen = set(), set(taken)
    for index, header in enumerate(headers):
        if is_valid_column_name(header) and header not in seen:
            kept.add(index)
            seen.add(header)
    return kept


def _clean(header: str) -> str:
    decomposed = unicodedata.normalize("NFKD", header.lower())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    name = re.sub(r"[^a-z0-9_]+", "_", plain)
    name = re.sub(r"_+", "_", name).strip("_")
    if name[:1].isdigit():
        name = "c_" + name
    return cut_to_bytes(name, MAX_IDENTIFIER_BYTES).rstrip("_")


def _unique(name: str, used: set[str]) -> str:
    if name not in used:
        return name
    number = 1
    while True:
        suffix = f"_{number}"
        candidate = cut_to_bytes(name, MAX_IDENTIFIER_BYTES - len(suffix)).rstrip("_") + suffix
        if candidate not in used:
            return candidate
        number += 1


def cut_to_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")
