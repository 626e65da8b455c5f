"""manage.py fetch_sources: download the sources' new files into storage."""

from django.core.management.base import BaseCommand, CommandError

from pipelines.management.selection import add_source_arguments, command_catalogue, sources_to_run
from pipelines.models import RunRecord
from pipelines.runs import run_recorded


def fetchable(catalogue) -> list:
    return [source for source in catalogue if source.origin is not None]


class Command(BaseCommand):
    help = (
        "Download every file that the selected sources (built-in and defined in admin) offer "
        "and storage does not hold yet (newer than the newest stored). A source that fails "
        "does not stop the others; exits non-zero when a source failed. Each source's run is "
        "recorded (admin: sources)."
    )

    def add_arguments(self, parser):
        add_source_arguments(parser, fetchable(command_catalogue()))

    def handle(self, *args, **options):
        catalogue = command_catalogue()
        source_ids = sources_to_run(self, "fetch_sources", options, fetchable(catalogue))
        if not source_ids:
            return
        results = []
        for source in catalogue.in_dependency_order(source_ids):
            record = RunRecord.objects.create(
                source=source.id, kind=RunRecord.Kind.FETCH, started_by="manage.py fetch_sources"
            )
            result = run_recorded(catalogue, record)
            if result is None:
                raise CommandError(f"{source.id}: {record.summary}")
            results.append(result)
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
