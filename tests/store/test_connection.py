"""Connecting to Redis (runqy/store/connection.py): a bounded pool that fails fast."""

import dataclasses
import time

import pytest
import redis

from runqy import defaults
from runqy.store import Store, connect


def test_connect_reaches_the_configured_redis_through_a_bounded_pool_with_short_timeouts(settings, r):
    client = connect(settings)

    assert Store(client).ping() is True
    pool = client.connection_pool
    assert isinstance(pool, redis.BlockingConnectionPool)
    assert (pool.max_connections, pool.timeout) == (defaults.REDIS_MAX_CONNECTIONS, defaults.REDIS_POOL_TIMEOUT)
    options = pool.connection_kwargs
    assert (options["port"], options["socket_timeout"], options["socket_connect_timeout"]) == (
        settings.redis_port, defaults.REDIS_SOCKET_TIMEOUT, defaults.REDIS_CONNECT_TIMEOUT)


def test_a_store_on_a_redis_that_is_not_there_fails_fast_with_a_connection_error(settings):
    gone = connect(dataclasses.replace(settings, redis_port=1))
    started = time.monotonic()

    with pytest.raises(redis.exceptions.ConnectionError):
        Store(gone).ping()

    assert time.monotonic() - started < 2 * defaults.REDIS_CONNECT_TIMEOUT  # one try and one retry at most
