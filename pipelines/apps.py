from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PipelinesConfig(AppConfig):
    name = "pipelines"
    verbose_name = "Pipelines and sources"

    def ready(self) -> None:
        from pipelines.builtin_tables import create_builtin_tables

        # After every migrate (and every flush), each built-in source's tables exist, so its
        # endpoints answer an empty page before its first load; sources added in a later
        # release get theirs at that release's migrate.
        post_migrate.connect(create_builtin_tables, sender=self)
