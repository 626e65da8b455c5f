"""manage.py fetch_sources: download the sources' new files into storage."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.catalogue import CATALOGUE
from pipelines.fetching import fetch_sources
from pipelines.management.selection import add_source_arguments, sources_to_run


def fetchable():
    return [source for source in CATALOGUE if source.origin is not None]


class Command(BaseCommand):
    help = (
        "Download every file that the selected sources offer and storage does not hold yet "
        "(newer than the newest stored). A source that fails does not stop the others; "
        "exits non-zero when a source failed."
    )

    def add_arguments(self, parser):
        add_source_arguments(parser, fetchable())

    def handle(self, *args, **options):
        source_ids = sources_to_run(self, "fetch_sources", options, fetchable())
        if not source_ids:
            return
        results = fetch_sources(CATALOGUE, source_ids, settings.DATASETS_FOLDER)
        for result in results:
            for key in result.cleaned:
                self.stdout.write(f"{result.source_id}: removed {key}, left by a killed fetch")
            for damage in result.damaged:
                self.stdout.write(f"{result.source_id}: stored {damage}; fetched again")
            for refusal in result.refused:
                self.stdout.write(f"{result.source_id}: refused {refusal}")
            for name in result.downloaded:
                self.stdout.write(f"{result.source_id}: downloaded {name}")
        failures = [result for result in results if result.error]
        for result in failures:
            self.stderr.write(f"{result.source_id}: {result.error}")
        downloaded = sum(len(result.downloaded) for result in results)
        stored = sum(result.already_stored for result in results)
        refused = sum(len(result.refused) for result in results)
        damaged = sum(len(result.damaged) for result in results)
        self.stdout.write(
            f"{len(results)} source(s): {downloaded} file(s) downloaded, "
            f"{stored} already stored, {damaged} stored file(s) damaged, "
            f"{refused} download(s) refused, {len(failures)} source(s) failed"
        )
        if failures:
            raise CommandError(f"{len(failures)} source(s) failed")
