"""What the source commands share: choosing sources on the command line, and progress."""

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand
from django.db import DatabaseError
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from pipelines.catalogue import CATALOGUE
from pipelines.defined_sources import current_catalogue, defined_schemas
from pipelines.sources import Catalogue, Source

SELECTED = "selected_sources"


def command_catalogue() -> Catalogue:
    """The built-in and defined sources; the built-in ones alone when the database cannot
    be read (before the first migrate), so that the commands' help still shows."""
    try:
        return current_catalogue()
    except DatabaseError:
        return CATALOGUE


def add_source_arguments(parser: argparse.ArgumentParser, sources: Iterable[Source]) -> None:
    """``--all``, ``--list`` and one ``--<source id>`` flag per source."""
    parser.add_argument("--all", action="store_true", help="every source below")
    parser.add_argument("--list", action="store_true", help="list the sources and exit")
    group = parser.add_argument_group("sources")
    for source in sources:
        group.add_argument(
            f"--{source.id}",
            action="append_const",
            const=source.id,
            dest=SELECTED,
            help=f"storage folder {source.folder}",
        )


def selected_ids(options: dict, sources: Iterable[Source]) -> list[str]:
    if options["all"]:
        return [source.id for source in sources]
    return options.get(SELECTED) or []


def sources_to_run(
    command: BaseCommand, name: str, options: dict, sources: list[Source]
) -> list[str]:
    """The ids the options select; for ``--list`` or no selection, prints that and gives []."""
    if options["list"]:
        command.stdout.write("\n".join(describe(sources)))
        return []
    source_ids = selected_ids(options, sources)
    if not source_ids:
        command.print_help("manage.py", name)
    return source_ids


def describe(sources: Iterable[Source]) -> Iterator[str]:
    """One line per source: id, built-in or defined in admin, mode, storage folder, origin,
    dependencies."""
    try:
        defined = defined_schemas()
    except DatabaseError:
        defined = set()
    sources = list(sources)
    width = max((len(source.id) for source in sources), default=0)
    for source in sources:
        parts = [
            f"{source.id:<{width}}",
            f"{'defined' if source.dataset.schema in defined else 'built-in':<8}",
            f"{source.load_mode:<11}",
            f"folder {source.folder}" if source.folder else "no folder",
            f"origin: {source.files_from}",
        ]
        if source.depends_on:
            parts.append("after " + ", ".join(source.depends_on))
        if source.trigger_dataflow:
            parts.append("triggers data-flow")
        yield "  ".join(parts)


def terminal_progress() -> Callable | None:
    """A per-file byte progress bar factory when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None

    @contextmanager
    def bar(name: str, size: int | None) -> Iterator[Callable[[int], None]]:
        # Log lines written while the bar is drawn go through tqdm, which clears the bar,
        # writes the line and draws the bar again below it, instead of onto the bar's line.
        with (
            logging_redirect_tqdm(),
            tqdm(total=size, desc=name, unit="B", unit_scale=True, leave=False) as progress,
        ):
            yield progress.update

    return bar
