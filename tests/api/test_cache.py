"""The database cache that holds HAWK nonces when Redis is not configured."""

import pytest
from django.core.cache import caches
from django.db import connection

import api.cache

SMALL_CACHE = {
    "default": {
        "BACKEND": "api.cache.DatabaseCache",
        "LOCATION": "dss_cache",
        "OPTIONS": {"MAX_ENTRIES": 5},
    }
}


@pytest.fixture
def small_cache(db, settings):
    settings.CACHES = SMALL_CACHE
    return caches["default"]


def rows_like(pattern: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM dss_cache WHERE cache_key LIKE %s", [f"%:{pattern}"])
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
