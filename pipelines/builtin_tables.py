"""Every built-in source's tables exist from ``migrate`` on, empty until its first load, so
its endpoints answer an empty page rather than 404.

``create_builtin_tables`` is connected to Django's ``post_migrate`` (see ``pipelines.apps``):
it runs after every ``migrate`` (and every ``flush``), and creates only what is missing, so a
source added in a later release gets its tables at that release's migrate.
"""

import logging

from django.db import DEFAULT_DB_ALIAS, connections

from pipelines.catalogue import CATALOGUE
from pipelines.loading import create_empty_tables
from pipelines.sources import Catalogue

logger = logging.getLogger(__name__)


def create_builtin_tables(
    using: str = DEFAULT_DB_ALIAS, catalogue: Catalogue | None = None, **kwargs
) -> list[str]:
    """Create the missing tables of every source of ``catalogue`` (the built-in one by
    default), empty, in the database ``using``; returns the ids of the sources that got one."""
    connection = connections[using]
    connection.ensure_connection()
    created = []
    for source in CATALOGUE if catalogue is None else catalogue:
        if source.steps is not None:
            made = source.steps.create_tables(connection.connection, source)
        else:
            made = create_empty_tables(connection.connection, source.dataset)
        if made:
            logger.info("%s: created its empty tables", source.id)
            created.append(source.id)
    return created
