from django.core.management.base import BaseCommand

from dss.startup import check_services


class Command(BaseCommand):
    help = (
        "Check that the database, the file storage and (when configured) Redis answer. "
        "Exits non-zero with one line naming the setting to fix when one does not."
    )

    def handle(self, *args, **options):
        check_services()
        self.stdout.write("Database, file storage and cache answer.")
