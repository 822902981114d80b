"""Connecting to Redis: the one place that knows where Redis is and how to reach it, directly
or through Redis Sentinel."""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection, SentinelManagedSSLConnection

from runqy import defaults
from runqy.config import Settings


class _SentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's Sentinel pool, bounded as the direct one is: a request waits for a free
    connection rather than opening one more. Each new connection asks the Sentinels where the
    primary is, so after a failover the next connection goes to the promoted replica, and a
    connection still open to a demoted primary is dropped at its first refused write."""


def connect(settings: Settings) -> redis.Redis:
    """A client that fails fast when Redis is gone or frozen, and reconnects by itself after.

    The pool is bounded, so a frozen Redis cannot make one process open a connection per
    waiting request. Only a connection error is retried (once, at once): it replaces a pooled
    connection that died with a Redis restart or a failover. A timeout is not retried, since the
    command may have run; there are no idle-connection health checks, which would cost a second
    wait on a frozen Redis.
    """
    options = dict(
        max_connections=defaults.REDIS_MAX_CONNECTIONS, timeout=defaults.REDIS_POOL_TIMEOUT,
        db=settings.redis_db, password=settings.redis_password or None,
        socket_connect_timeout=defaults.REDIS_CONNECT_TIMEOUT, socket_timeout=defaults.REDIS_SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )
    if settings.redis_sentinels:
        sentinels = Sentinel(settings.redis_sentinels, sentinel_kwargs={
            "password": settings.redis_sentinel_password or None, "ssl": settings.redis_tls,
            "socket_connect_timeout": defaults.REDIS_CONNECT_TIMEOUT, "socket_timeout": defaults.REDIS_SOCKET_TIMEOUT})
        pool = _SentinelPool(
            settings.redis_sentinel_master, sentinels,
            connection_class=SentinelManagedSSLConnection if settings.redis_tls else SentinelManagedConnection,
            **options)
    else:
        pool = redis.BlockingConnectionPool(
            connection_class=redis.SSLConnection if settings.redis_tls else redis.Connection,
            host=settings.redis_host, port=settings.redis_port, **options)
    return redis.Redis(connection_pool=pool)


def primary_address(client: redis.Redis) -> str:
    """``host:port`` of the Redis primary the client writes to: through Sentinel, the current one."""
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return "%s:%d" % pool.get_master_address()
    return "%s:%s" % (pool.connection_kwargs["host"], pool.connection_kwargs["port"])
