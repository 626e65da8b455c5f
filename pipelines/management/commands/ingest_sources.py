"""manage.py ingest_sources: load the stored files of sources into their dataset tables."""

from django.core.management.base import BaseCommand, CommandError

from pipelines.management.selection import (
    SELECTED,
    add_source_arguments,
    command_catalogue,
    sources_to_run,
    terminal_progress,
)
from pipelines.models import RunRecord
from pipelines.runs import run_recorded
from pipelines.sources import Source


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
        parser.add_argument(
            "--transform",
            action="store_true",
            help="run the sources without files (the World Bank tariff transform): only with "
            "this flag, after the sources they depend on when those are selected too",
        )
        parser.add_argument(
            "--continue",
            action="store_true",
            help="with --transform: keep the products an interrupted transform built",
        )
        parser.add_argument(
            "--products",
            help="with --transform: only these products, e.g. 10111,20110",
        )
        add_source_arguments(parser, command_catalogue())

    def handle(self, *args, **options):
        catalogue = command_catalogue()
        transforms = [source.id for source in catalogue if _without_files(source)]
        if options["transform"] and not (options["all"] or options.get(SELECTED)):
            source_ids = transforms
        else:
            source_ids = sources_to_run(self, "ingest_sources", options, list(catalogue))
        if not options["transform"]:
            source_ids = [source_id for source_id in source_ids if source_id not in transforms]
        if not source_ids:
            return
        kind = RunRecord.Kind.REBUILD if options["force"] else RunRecord.Kind.INGEST
        progress = terminal_progress()
        transform_options = {"continue": options["continue"], "products": options["products"]}
        runs = []
        for source in catalogue.in_dependency_order(source_ids):
            record = RunRecord.objects.create(
                source=source.id, kind=kind, started_by="manage.py ingest_sources"
            )
            run = run_recorded(catalogue, record, progress=progress, options=transform_options)
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


def _without_files(source: Source) -> bool:
    return source.steps is not None and source.steps.without_files
