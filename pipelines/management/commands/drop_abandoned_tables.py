from django.core.management.base import BaseCommand
from django.db import connection

from pipelines.copy_streams import drop_abandoned_tables


class Command(BaseCommand):
    help = (
        "Drop the tables that loads killed while copying a large file left in the schema "
        "dss_loads (never served); a load running now keeps its own."
    )

    def handle(self, *args, **options):
        connection.ensure_connection()
        dropped = drop_abandoned_tables(connection.connection)
        names = f": {', '.join(dropped)}" if dropped else ""
        self.stdout.write(f"Dropped {len(dropped)} abandoned load table(s){names}.")
