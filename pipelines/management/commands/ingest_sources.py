"""manage.py ingest_sources: load the stored files of sources into their dataset tables."""

from django.core.management.base import BaseCommand, CommandError

from pipelines.management.selection import (
    add_source_arguments,
    command_catalogue,
    sources_to_run,
    terminal_progress,
)
from pipelines.models import RunRecord
from pipelines.runs import run_recorded


class Command(BaseCommand):
    help = (
        "Load each selected source's files from storage into its L0/L1 tables, skipping files "
        "the datafile registry marks processed or ignored, sources in dependency order. "
        "Built-in sources and those defined in admin; each source's run is recorded (admin: "
        "sources). Exits non-zero when a file failed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force",
            action="store_true",
            help="rebuild each selected dataset from all its files, processed ones included",
        )
        add_source_arguments(parser, command_catalogue())

    def handle(self, *args, **options):
        catalogue = command_catalogue()
        source_ids = sources_to_run(self, "ingest_sources", options, list(catalogue))
        if not source_ids:
            return
        kind = RunRecord.Kind.REBUILD if options["force"] else RunRecord.Kind.INGEST
        progress = terminal_progress()
        runs = []
        for source in catalogue.in_dependency_order(source_ids):
            record = RunRecord.objects.create(
                source=source.id, kind=kind, started_by="manage.py ingest_sources"
            )
            run = run_recorded(catalogue, record, progress=progress)
            if run is None:
                raise CommandError(f"{source.id}: {record.summary}")
            runs.append(run)
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
