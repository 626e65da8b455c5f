"""manage.py ingest_sources: load the stored files of sources into their dataset tables."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from pipelines.catalogue import CATALOGUE
from pipelines.ingesting import ingest_sources
from pipelines.management.selection import (
    add_source_arguments,
    sources_to_run,
    terminal_progress,
)


class Command(BaseCommand):
    help = (
        "Load each selected source's files from storage into its L0/L1 tables, skipping files "
        "the datafile registry marks processed or ignored, sources in dependency order. "
        "Exits non-zero when a file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="rebuild each selected dataset from all its files, processed ones included",
        )
        add_source_arguments(parser, CATALOGUE)

    def handle(self, *args, **options):
        source_ids = sources_to_run(self, "ingest_sources", options, list(CATALOGUE))
        if not source_ids:
            return
        runs = ingest_sources(
            CATALOGUE,
            source_ids,
            settings.DATASETS_FOLDER,
            force=options["force"],
            progress=terminal_progress(),
        )
        for run in runs:
            for name, message in run.failures:
                self.stderr.write(f"{run.source_id}: {name} failed: {message}")
            if run.dataflow_error:
                self.stderr.write(
                    f"{run.source_id}: data-flow trigger failed: {run.dataflow_error}"
                )
        processed = sum(run.processed for run in runs)
        failed = sum(run.failed for run in runs)
        skipped = sum(run.skipped for run in runs)
        rows = sum(run.rows_loaded for run in runs)
        self.stdout.write(
            f"{len(runs)} source(s): {processed} file(s) processed, {failed} failed, "
            f"{skipped} skipped; {rows} rows loaded"
        )
        dataflow_failures = sum(1 for run in runs if run.dataflow_error)
        if failed or dataflow_failures:
            raise CommandError(
                f"{failed} file(s) failed, {dataflow_failures} data-flow trigger(s) failed"
            )
