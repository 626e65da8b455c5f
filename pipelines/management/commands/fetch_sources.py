"""manage.py fetch_sources: download the sources' new files into storage."""

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from pipelines.catalogue import CATALOGUE
from pipelines.fetching import FetchError, fetch_source, http_session
from pipelines.management.selection import add_source_arguments, sources_to_run

logger = logging.getLogger(__name__)


def fetchable():
    return [source for source in CATALOGUE if source.origin is not None]


class Command(BaseCommand):
    help = (
        "Download every file that the selected sources offer and storage does not hold yet "
        "(newer than the newest stored). Exits non-zero when a source failed."
    )

    def add_arguments(self, parser):
        add_source_arguments(parser, fetchable())

    def handle(self, *args, **options):
        source_ids = sources_to_run(self, "fetch_sources", options, fetchable())
        if not source_ids:
            return
        session = http_session()
        downloaded, stored, failures = 0, 0, []
        ordered = CATALOGUE.in_dependency_order(source_ids)
        for source in tqdm(ordered, desc="sources", disable=None):
            try:
                result = fetch_source(source, settings.DATASETS_FOLDER, session)
            except FetchError as error:
                # One source failing does not stop the others.
                logger.error("%s: %s", source.id, error)
                failures.append((source.id, str(error)))
                continue
            downloaded += len(result.downloaded)
            stored += result.already_stored
            for name in result.downloaded:
                self.stdout.write(f"{source.id}: downloaded {name}")
        for source_id, message in failures:
            self.stderr.write(f"{source_id}: {message}")
        self.stdout.write(
            f"{len(ordered)} source(s): {downloaded} file(s) downloaded, "
            f"{stored} already stored, {len(failures)} source(s) failed"
        )
        if failures:
            raise CommandError(f"{len(failures)} source(s) failed")
