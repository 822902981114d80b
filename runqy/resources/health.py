"""Liveness and readiness."""

import falcon
import redis

from runqy.store import Store


class Health:
    """Liveness: the process answers."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """Readiness: Redis answers a PING."""

    def __init__(self, store: Store):
        self._store = store

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            ok = self._store.ping()
        except redis.exceptions.RedisError:
            ok = False
        resp.media = {"status": "ok" if ok else "degraded", "redis": ok}
        resp.status = falcon.HTTP_200 if ok else falcon.HTTP_503
