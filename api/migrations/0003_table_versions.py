"""The table of table versions (``pipelines.versions``), so that the API finds it from the
start; the loader also creates it where it is missing (a database only loads have seen)."""

from django.db import migrations

from pipelines.versions import ensure_versions_table


def create_versions_table(apps, schema_editor) -> None:
    with schema_editor.connection.connection.cursor() as cursor:
        ensure_versions_table(cursor)


class Migration(migrations.Migration):
    dependencies = [("api", "0002_cache_tables")]

    operations = [migrations.RunPython(create_versions_table, migrations.RunPython.noop)]
