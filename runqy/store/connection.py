"""Connecting to Redis: the one place that knows where Redis is and how to reach it."""

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from runqy import defaults
from runqy.config import Settings


def connect(settings: Settings) -> redis.Redis:
    """A client that fails fast when Redis is gone or frozen, and reconnects by itself after.

    The pool is bounded, so a frozen Redis cannot make one process open a connection per
    waiting request. Only a connection error is retried (once, at once): it replaces a pooled
    connection that died with a Redis restart. A timeout is not retried, since the command
    may have run; there are no idle-connection health checks, which would cost a second wait
    on a frozen Redis.
    """
    pool = redis.BlockingConnectionPool(
        max_connections=defaults.REDIS_MAX_CONNECTIONS, timeout=defaults.REDIS_POOL_TIMEOUT,
        connection_class=redis.SSLConnection if settings.redis_tls else redis.Connection,
        host=settings.redis_host, port=settings.redis_port, db=settings.redis_db,
        password=settings.redis_password or None,
        socket_connect_timeout=defaults.REDIS_CONNECT_TIMEOUT,
        socket_timeout=defaults.REDIS_SOCKET_TIMEOUT,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )
    return redis.Redis(connection_pool=pool)
