"""The nonce cache: an alias of its own, never evicted early, not cleared with the default.

Its database table when Redis is not configured, Redis (REDIS_TEST_URL) when it is.
"""

import pytest
from django.core.cache import caches
from django.core.management import call_command
from django.db import connection

import api.cache
from tests.api.builders import make_client, sign

NONCE_TABLE = "dss_hawk_nonces"
SMALL_CACHE = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "dss_cache",
    },
    "hawk_nonces": {
        "BACKEND": "api.cache.NoEvictionDatabaseCache",
        "LOCATION": NONCE_TABLE,
        "OPTIONS": {"MAX_ENTRIES": 5},
    },
}


@pytest.fixture
def small_cache(db, settings):
    settings.CACHES = SMALL_CACHE
    return caches["hawk_nonces"]


def rows_like(pattern: str, table: str = NONCE_TABLE) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {table} WHERE cache_key LIKE %s",  # noqa: S608 (a constant)
            [f"%:{pattern}"],
        )
        return cursor.fetchone()[0]


def test_live_nonces_outlast_max_entries(small_cache):
    for number in range(20):
        assert small_cache.add(f"nonce-{number}", True, timeout=60)
    assert all(small_cache.get(f"nonce-{number}") for number in range(20))
    assert not small_cache.add("nonce-0", True, timeout=60)


def test_adds_delete_expired_entries_now_and_then(small_cache, monkeypatch):
    monkeypatch.setattr(api.cache, "PURGE_EVERY", 3)
    for number in range(3):
        small_cache.set(f"old-{number}", True, timeout=-1)
    assert rows_like("old-%") == 3
    for number in range(3):
        assert small_cache.add(f"new-{number}", True, timeout=60)
    assert rows_like("old-%") == 0
    assert rows_like("new-%") == 3


def test_an_expired_key_can_be_added_again(small_cache):
    small_cache.set("nonce", True, timeout=-1)
    assert small_cache.add("nonce", True, timeout=60)
    assert not small_cache.add("nonce", True, timeout=60)


def test_set_culls_expired_entries_only(small_cache):
    for number in range(6):
        small_cache.set(f"live-{number}", True, timeout=60)
    small_cache.set("old", True, timeout=-1)
    for number in range(6, 12):
        small_cache.set(f"live-{number}", True, timeout=60)
    assert rows_like("old") == 0
    assert all(small_cache.get(f"live-{number}") for number in range(12))


@pytest.fixture
def redis_caches(settings, redis_url):
    """Both aliases in the test Redis, as settings.py configures them with REDIS_URL."""
    settings.CACHES = {
        alias: {
            "BACKEND": "api.cache.PrefixedRedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
        for alias, prefix in [("default", "dss"), ("hawk_nonces", "dss-hawk-nonces")]
    }
    yield
    caches["default"].clear()
    caches["hawk_nonces"].clear()


STRUCTURE = "/api/v1/table-structure/acme.things/L0"


def assert_replay_refused_after_clearing_the_default_cache(client, tables) -> None:
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    caches["default"].set("something", "else", timeout=60)
    signed = sign(make_client(), f"http://testserver{STRUCTURE}")
    assert client.get(STRUCTURE, headers=signed.headers).status_code == 200

    caches["default"].clear()

    assert caches["default"].get("something") is None
    replayed = client.get(STRUCTURE, headers=signed.headers)
    assert replayed.status_code == 401
    assert replayed.json() == {"error": "HAWK nonce has already been used"}


def test_nonces_go_to_their_own_table_not_the_default_cache(client, tables):
    tables.create("acme.things", "L0", {"name": "text"}, [("a",)])
    signed = sign(make_client(), f"http://testserver{STRUCTURE}")

    assert client.get(STRUCTURE, headers=signed.headers).status_code == 200

    assert rows_like("hawk-nonce:%") == 1
    assert rows_like("hawk-nonce:%", table="dss_cache") == 0


def test_clearing_the_default_database_cache_does_not_reopen_a_replay(client, tables):
    assert_replay_refused_after_clearing_the_default_cache(client, tables)


def test_clearing_the_default_redis_cache_does_not_reopen_a_replay(client, tables, redis_caches):
    assert_replay_refused_after_clearing_the_default_cache(client, tables)


def test_clearing_a_redis_alias_deletes_only_its_own_keys(redis_caches):
    caches["default"].set("shared-name", 1, timeout=60)
    caches["hawk_nonces"].set("shared-name", 2, timeout=60)

    caches["default"].clear()

    assert caches["default"].get("shared-name") is None
    assert caches["hawk_nonces"].get("shared-name") == 2


@pytest.mark.django_db(transaction=True)
def test_migrate_creates_the_nonce_table():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {NONCE_TABLE}")
    call_command("migrate", "api", "0001", verbosity=0)

    call_command("migrate", "api", verbosity=0)

    assert NONCE_TABLE in connection.introspection.table_names()
