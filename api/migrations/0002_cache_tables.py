"""Creates the database cache tables, the HAWK nonces' among them, as ``migrate`` runs.

A release that adds a cache alias (as the nonce cache's own table did) then needs no separate
``createcachetable`` step before HAWK requests can be answered. It creates the tables the
settings name at the time (none when the caches are in Redis); ``createcachetable`` skips
tables that exist, so running it again later is harmless.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor) -> None:
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
