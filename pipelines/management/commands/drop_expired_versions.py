from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from pipelines.versions import drop_expired


class Command(BaseCommand):
    help = (
        "Drop the dataset table versions replaced longer ago than DSS_TABLE_VERSION_RETENTION "
        "(each load also drops its dataset's). Reads of them answer 410."
    )

    def handle(self, *args, **options):
        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor() as cursor:
                dropped = drop_expired(cursor, settings.TABLE_VERSION_RETENTION)
        self.stdout.write(f"Dropped {len(dropped)} retained table version(s).")
