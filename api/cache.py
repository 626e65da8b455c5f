"""The database cache backend for HAWK nonces (used when REDIS_URL is not set)."""

from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import connections


class DatabaseCache(DjangoDatabaseCache):
    """Django's database cache, except that it never evicts an entry before it expires.

    Django's culls a third of all entries, live ones included, once there are more than
    MAX_ENTRIES; a nonce evicted early could be replayed. Here culling deletes expired
    entries only, so MAX_ENTRIES is merely how many entries trigger that clean-up.
    """

    def _cull(self, db: str, cursor, now, num: int) -> None:
        operations = connections[db].ops
        table = operations.quote_name(self._table)
        cursor.execute(
            f"DELETE FROM {table} WHERE expires < %s",  # noqa: S608 (the cache table's name)
            [operations.adapt_datetimefield_value(now)],
        )
