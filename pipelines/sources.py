"""Sources: a dataset definition plus where its files come from and how runs treat it.

A ``Catalogue`` holds the sources of a deployment in registration order and gives any
selection of them back in dependency order.
"""

import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from pipelines.datasets import Dataset

if TYPE_CHECKING:
    from pipelines.steps import Steps

# A URL, or a function returning one when a run starts (so that settings can supply it).
UrlSetting = str | Callable[[], str]


def resolve_url(url: UrlSetting) -> str:
    return url() if callable(url) else url


@dataclass(frozen=True)
class StoredName:
    """How downloaded files are named in storage: a pattern with ``{date}`` in it."""

    pattern: str
    date_format: str
    upper_case: bool = False

    def __post_init__(self) -> None:
        if self.pattern.count("{date}") != 1:
            raise ValueError(f"file name pattern {self.pattern!r} needs one {{date}}")

    def name_for(self, day: date) -> str:
        text = day.strftime(self.date_format)
        return self.pattern.format(date=text.upper() if self.upper_case else text)

    def date_of(self, name: str) -> date | None:
        """The date in a stored file's name, or None when the name does not fit the pattern."""
        prefix, suffix = self.pattern.split("{date}")
        match = re.search(re.escape(prefix) + r"(?P<date>.+?)" + re.escape(suffix) + "$", name)
        if match is None:
            return None
        try:
            return datetime.strptime(match["date"], self.date_format).date()
        except ValueError:
            return None


@dataclass(frozen=True)
class Listing:
    """Files published as links on a page (HTML anchors, or the strings of a JSON answer).

    Links are matched with ``re.match`` against ``link_pattern``, whose named group ``date``
    is parsed with ``link_date_format``. With ``download_pattern``, a matched link leads to a
    page, and the file is the first link on that page matching it. A link is downloaded when
    its date is at least ``refresh_delay`` after the newest file already stored.
    """

    url: UrlSetting
    link_pattern: str
    link_date_format: str
    stored_name: StoredName
    download_pattern: str | None = None
    refresh_delay: timedelta = timedelta(days=1)

    def __post_init__(self) -> None:
        if "(?P<date>" not in self.link_pattern:
            raise ValueError(f"link pattern {self.link_pattern!r} needs a (?P<date>...) group")


@dataclass(frozen=True)
class FixedUrl:
    """One URL whose content changes over time; each download is named by its date.

    The date is the answer's ``Last-Modified`` date, or today's when there is none; a file
    already stored under that name is not downloaded again.
    """

    url: UrlSetting
    stored_name: StoredName


Origin = Listing | FixedUrl


@dataclass(frozen=True)
class Source:
    """An ingestion source.

    ``folder`` is the storage folder below the datasets folder. With ``unpack``, the datafile
    name recorded in the tables of a zipped file is its member's name, else the stored name.
    ``trigger_dataflow`` sends the data-flow trigger after a run that loaded a file.
    ``steps`` replaces the L0/L1 loader for sources that read or build their tables their
    own way (``pipelines.steps``); ``dataset`` then describes what their files hold.
    """

    id: str
    dataset: Dataset
    folder: str
    origin: Origin | None = None
    unpack: bool = True
    trigger_dataflow: bool = False
    depends_on: tuple[str, ...] = ()
    steps: "Steps | None" = None

    @property
    def tables(self) -> tuple[tuple[str, str], ...]:
        """The (schema, table) pairs the source writes."""
        if self.steps is not None:
            return self.steps.tables(self)
        return tuple(
            (self.dataset.schema, table) for table in ("L0", "L1")[: 1 + self.dataset.has_l1]
        )

    @property
    def load_mode(self) -> str:
        """How its files load, as operators see it (``--list``, the desk): its dataset's mode,
        or its steps' own (``replace``, ``transform``)."""
        if self.steps is not None and self.steps.listed_mode:
            return self.steps.listed_mode
        return self.dataset.mode.value

    @property
    def files_from(self) -> str:
        """Where its files come from: ``listing``, ``fixed URL``, ``placed by hand``, or
        ``none (built from its inputs)`` for a source without files."""
        if isinstance(self.origin, Listing):
            return "listing"
        if isinstance(self.origin, FixedUrl):
            return "fixed URL"
        if self.steps is not None and self.steps.without_files:
            return "none (built from its inputs)"
        return "placed by hand"

    def storage_prefix(self, datasets_folder: str) -> str:
        return posixpath.join(datasets_folder, self.folder.strip("/"))

    def datafile_name(self, stored_name: str, member: str | None) -> str:
        """The name written to datafile_created/updated: the last component of what is loaded."""
        name = member if (member and self.unpack) else stored_name
        return posixpath.basename(name)

    def file_order(self, names: Iterable[str]) -> list[str]:
        """Stored files in the order they are loaded: by the date in their name, then by name."""
        stored_name = self.origin.stored_name if self.origin else None

        def key(name: str) -> tuple[date, str]:
            day = stored_name.date_of(name) if stored_name else None
            return (day or date.min, name)

        return sorted(names, key=key)


class Catalogue:
    """The sources of a deployment, by id, in registration order."""

    def __init__(self, sources: Iterable[Source]):
        self._sources: dict[str, Source] = {}
        owners: dict[tuple[str, str], str] = {}
        for source in sources:
            if source.id in self._sources:
                raise ValueError(f"source {source.id!r} is registered twice")
            for table in source.tables:
                if table in owners:
                    raise ValueError(
                        f"sources {owners[table]!r} and {source.id!r} would both load into "
                        f"{'.'.join(table)}"
                    )
                owners[table] = source.id
            self._sources[source.id] = source
        for source in self._sources.values():
            unknown = set(source.depends_on) - set(self._sources)
            if unknown:
                raise ValueError(f"source {source.id!r} depends on unknown {sorted(unknown)}")
        self.in_dependency_order(self._sources)

    def __iter__(self) -> Iterator[Source]:
        return iter(self._sources.values())

    def __contains__(self, source_id: str) -> bool:
        return source_id in self._sources

    def get(self, source_id: str) -> Source:
        try:
            return self._sources[source_id]
        except KeyError:
            raise KeyError(f"unknown source {source_id!r}") from None

    def in_dependency_order(self, source_ids: Iterable[str]) -> list[Source]:
        """The selected sources, each after those it depends on, else in registration order.

        A dependency that is not selected is not added: it is only ordered when selected.
        """
        selected = {self.get(source_id).id for source_id in source_ids}
        ordered: list[Source] = []
        done: set[str] = set()
        visiting: list[str] = []

        def visit(source: Source) -> None:
            if source.id in done:
                return
            if source.id in visiting:
                cycle = " -> ".join([*visiting[visiting.index(source.id) :], source.id])
                raise ValueError(f"sources depend on each other in a cycle: {cycle}")
            visiting.append(source.id)
            for dependency in source.depends_on:
                visit(self._sources[dependency])
            visiting.pop()
            done.add(source.id)
            if source.id in selected:
                ordered.append(source)

        for source in self._sources.values():
            if source.id in selected:
                visit(source)
        return ordered

    def extended(self, sources: Iterable[Source]) -> "Catalogue":
        """A new catalogue: these sources, then ``sources`` (checked as any catalogue is)."""
        return Catalogue([*self, *sources])
