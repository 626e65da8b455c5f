"""Sources that read or build their tables their own way, instead of the L0/L1 loader alone.

A source's ``steps`` (``pipelines.sources.Source.steps``) say which tables it writes, create
them empty (at ``migrate``), and load one stored file into them, in one transaction that the
ingest run opens (``load`` runs inside it and may only raise to undo its work). A source
with no files (a transform) is run once per ingest run with ``run`` instead.

``ParsedRows`` is the steps of a source whose files are not delimited text PostgreSQL can
read (zips of zips of ragged lines, XML documents): a parser turns the stored file into rows,
which are written as CSV and loaded into the source's L0/L1 by the usual loader.
"""

import io
import logging
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol

import psycopg

from pipelines import storage
from pipelines.archives import ArchiveError
from pipelines.loading import LoadError, LoadResult, create_empty_tables, load_file
from pipelines.reading import CHUNK_SIZE, read_stream

if TYPE_CHECKING:
    from pipelines.sources import Source

logger = logging.getLogger(__name__)


class Steps(Protocol):
    """What a source with its own steps does; see the module's docstring. ``listed_mode``:
    how ``--list`` names the way it loads, when not by its dataset's mode."""

    without_files: bool
    listed_mode: str | None

    def tables(self, source: "Source") -> tuple[tuple[str, str], ...]: ...

    def create_tables(self, conn: psycopg.Connection, source: "Source") -> bool: ...

    def load(
        self, conn: psycopg.Connection, source: "Source", key: str, name: str, rebuild: bool
    ) -> LoadResult: ...

    def run(
        self, conn: psycopg.Connection, source: "Source", options: Mapping[str, object]
    ) -> LoadResult: ...


@dataclass
class Parsed:
    """A parser's output: ``rows`` (one value per dataset column, None for NULL) and, filled
    while they are read, the parts of the file it skipped with why (``skipped``)."""

    rows: Iterator[list[str | None]]
    skipped: list[tuple[str, str]] = field(default_factory=list)


# Given the stored file's stream and its name: its rows.
Parser = Callable[[IO[bytes], str], Parsed]


@dataclass(frozen=True)
class ParsedRows:
    """Steps of a source whose files a Python ``parser`` reads into rows of its dataset.

    Rows are written as CSV, every value quoted and NULL unquoted, so an empty string stays
    an empty string in text columns; the loader then treats them as any file of the source.
    """

    parser: Parser
    without_files: bool = False
    listed_mode: str | None = None

    def tables(self, source: "Source") -> tuple[tuple[str, str], ...]:
        dataset = source.dataset
        return tuple((dataset.schema, table) for table in ("L0", "L1")[: 1 + dataset.has_l1])

    def create_tables(self, conn: psycopg.Connection, source: "Source") -> bool:
        return create_empty_tables(conn, source.dataset)

    def load(
        self, conn: psycopg.Connection, source: "Source", key: str, name: str, rebuild: bool
    ) -> LoadResult:
        dataset = source.dataset
        try:
            with storage.open_file(key) as stream:
                parsed = self.parser(stream, name)
                csv_stream = RowsAsCsv(dataset.column_names, parsed.rows)
                files = (read_stream(csv_stream, dataset, name) for _ in range(1))
                result = load_file(
                    conn, dataset, files, datafile=posixpath.basename(name), rebuild=rebuild
                )
        except (zipfile.BadZipFile, ArchiveError) as error:
            raise LoadError(f"{name}: {error}") from error
        for part, reason in parsed.skipped:
            logger.warning("%s: %s: skipped %s: %s", source.id, name, part, reason)
        return LoadResult(
            rows_read=result.rows_read,
            l0_rows_added=result.l0_rows_added,
            l1_rows_added=result.l1_rows_added,
            skipped_rows=result.skipped_rows,
            ignored_columns=result.ignored_columns,
            skipped_parts=tuple(parsed.skipped),
        )

    def run(
        self, conn: psycopg.Connection, source: "Source", options: Mapping[str, object]
    ) -> LoadResult:
        raise NotImplementedError(f"{source.id} loads files")


class RowsAsCsv(io.RawIOBase):
    """A binary stream of CSV (UTF-8, header first) made from rows as they are read."""

    def __init__(self, header: Iterable[str], rows: Iterator[list[str | None]]):
        self._rows = rows
        self._text = io.StringIO()
        self._pending = _csv_line(list(header)).encode()
        self._done = False

    def readable(self) -> bool:
        return True

    def _take(self) -> bytes:
        data = self._text.getvalue().encode()
        self._text.seek(0)
        self._text.truncate()
        return data

    def readinto(self, buffer) -> int:
        while len(self._pending) < len(buffer) and not self._done:
            for _ in range(1000):
                row = next(self._rows, None)
                if row is None:
                    self._done = True
                    break
                self._text.write(_csv_line(row))
            self._pending += self._take()
            if len(self._pending) >= CHUNK_SIZE:
                break
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _csv_line(row: list[str | None]) -> str:
    """Every value quoted (quotes doubled); NULL as nothing at all."""
    return (
        ",".join("" if value is None else '"' + value.replace('"', '""') + '"' for value in row)
        + "\n"
    )
