from django.core.management.base import BaseCommand

from uploads.journey import STALE_AFTER, mark_stale_uploads


class Command(BaseCommand):
    help = (
        "Mark failed the uploads stuck in verified or processing for over 24 hours, with a "
        "message asking for the file again."
    )

    def handle(self, *args, **options):
        marked = mark_stale_uploads()
        hours = STALE_AFTER.total_seconds() / 3600
        self.stdout.write(f"{marked} upload(s) stuck for over {hours:g} hours marked failed.")
