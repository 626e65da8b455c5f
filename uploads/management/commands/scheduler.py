import logging
import signal

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.utils import timezone

logger = logging.getLogger(__name__)

# The periodic jobs: (command, hours between runs).
JOBS = (("mark_stale_uploads", 1), ("drop_expired_versions", 1), ("drop_abandoned_tables", 1))


def run_command(name: str) -> None:
    """Run one management command as a job; a failure is logged and the next run tries again."""
    close_old_connections()  # a connection the database closed meanwhile is not reused
    try:
        call_command(name)
    except Exception:
        logger.exception("scheduled command %s failed", name)
    finally:
        close_old_connections()


class Command(BaseCommand):
    help = (
        "Run the periodic jobs until stopped (SIGTERM or SIGINT): mark_stale_uploads, "
        "drop_expired_versions and drop_abandoned_tables every hour, the first runs at start."
    )

    def handle(self, *args, **options):
        scheduler = BlockingScheduler(timezone="UTC")
        for name, hours in JOBS:
            scheduler.add_job(
                run_command,
                IntervalTrigger(hours=hours),
                args=[name],
                id=name,
                next_run_time=timezone.now(),
                coalesce=True,
                max_instances=1,
            )

        def stop(signum, frame):
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"Scheduler running: {', '.join(name for name, _ in JOBS)}.")
        self.stdout.flush()
        scheduler.start()
        self.stdout.write("Scheduler stopped.")
