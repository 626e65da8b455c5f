"""The caches of the service: HAWK nonces in an alias of their own, never evicted early.

``dss/settings.py`` configures two aliases: ``default`` and ``hawk_nonces``. Nonces go to the
latter only, so that clearing the default cache (or filling it) cannot make a used nonce
acceptable again. Without REDIS_URL both are database caches, each in its own table (made by
``manage.py createcachetable``); with it, both live in that Redis under their own key prefix,
and clearing one alias deletes only its own keys.
"""

import base64
import itertools
import pickle
from datetime import UTC, datetime

from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.db import DatabaseCache
from django.db import connections, router
from django_redis.cache import RedisCache

# The alias of the nonce cache in settings.CACHES.
NONCE_CACHE_ALIAS = "hawk_nonces"

# Expired entries are deleted by every this many adds: a delete scans the table, an add
# alone is a single index insert.
PURGE_EVERY = 100
_adds = itertools.count(1)


def nonce_cache() -> BaseCache:
    """The cache that remembers HAWK nonces."""
    return caches[NONCE_CACHE_ALIAS]


class NoEvictionDatabaseCache(DatabaseCache):
    """Django's database cache, with an ``add`` of one statement that never evicts live keys.

    Django's ``add`` takes five round trips (count, begin, select, insert, commit) and culls a
    third of all entries, live ones included, once there are more than MAX_ENTRIES; a nonce
    evicted early could be replayed. Here ``add`` is one atomic INSERT ... ON CONFLICT, every
    ``PURGE_EVERY``-th add of a process also deletes expired entries, and culling (for
    ``set``) deletes expired entries only.
    """

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        database = router.db_for_write(self.cache_model_class)
        connection = connections[database]
        table = connection.ops.quote_name(self._table)
        now = datetime.now(UTC).replace(microsecond=0)
        backend_timeout = self.get_backend_timeout(timeout)
        expires = (
            datetime.max.replace(tzinfo=UTC)
            if backend_timeout is None
            else datetime.fromtimestamp(backend_timeout, tz=UTC)
        ).replace(microsecond=0)
        pickled = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        # An expired entry under the same key is replaced; a live one makes the insert a no-op
        # that returns no row.
        statement = f"""
            INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s)
            ON CONFLICT (cache_key) DO UPDATE
                SET value = EXCLUDED.value, expires = EXCLUDED.expires
                WHERE {table}.expires < %s
            RETURNING cache_key
        """  # noqa: S608 (the cache table's name, quoted)
        with connection.cursor() as cursor:
            cursor.execute(statement, [key, pickled, expires, now])
            added = cursor.fetchone() is not None
            if next(_adds) % PURGE_EVERY == 0:
                self._cull(database, cursor, now, 0)
        return added

    def _cull(self, db: str, cursor, now, num: int) -> None:
        operations = connections[db].ops
        table = operations.quote_name(self._table)
        cursor.execute(
            f"DELETE FROM {table} WHERE expires < %s",  # noqa: S608 (the cache table's name)
            [operations.adapt_datetimefield_value(now)],
        )


class PrefixedRedisCache(RedisCache):
    """django-redis's cache whose ``clear`` deletes only the keys under its own KEY_PREFIX.

    django-redis clears with FLUSHDB, which would also forget the nonces that another alias
    keeps in the same Redis database.
    """

    def clear(self) -> None:
        self.delete_pattern("*")
