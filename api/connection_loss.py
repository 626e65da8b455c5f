"""Losing the database or cache connection in the middle of a request.

A restart, a failover or a terminated backend breaks the connection a request holds. A read
is run once more on a fresh connection; when that fails too, or the lost work was a write,
the request answers 503 with ``Retry-After`` (``api.errors``), never a 500.
"""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Seconds a client is asked to wait before trying again.
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
CACHE_ERRORS = (ConnectionInterrupted, RedisConnectionError, RedisTimeoutError)


def is_connection_loss(error: BaseException) -> bool:
    """Whether ``error`` means the database (or Redis) connection is gone, rather than a
    fault of the query: the connection is closed or broken, or could not be made."""
    if isinstance(error, CACHE_ERRORS):
        return True
    if not isinstance(error, DATABASE_ERRORS):
        return False
    raw = connection.connection
    return raw is None or raw.closed or raw.broken


def read_again_after(error: Exception, read: Callable[[], T]) -> T:
    """``read()`` once more on a fresh connection when ``error`` lost the connection outside
    a transaction; ``error`` raised again otherwise. Only for reads: a write whose connection
    was lost may or may not have been committed."""
    if connection.in_atomic_block or not is_connection_loss(error):
        raise error
    logger.warning("Database connection lost (%s); reading again on a fresh connection", error)
    connection.close()
    return read()


def retried_once(read: Callable[[], T]) -> T:
    """``read()``, run once more on a fresh connection when its connection was lost."""
    try:
        return read()
    except DATABASE_ERRORS as error:
        return read_again_after(error, read)
