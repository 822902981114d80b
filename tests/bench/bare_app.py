"""The ceiling of the HTTP layer: falcon routes on runqy's paths that do no work.

Served by gunicorn with runqy's own config file (``tests.bench.bare_app:app``),
so the difference to runqy is what runqy does inside a request.
"""

import os

import falcon
import redis


class Health:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Add:
    """POST: the body is read (a server must drain it), not parsed."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        resp.media = {"info": {"id": "bare", "state": "pending"}}


class Status:
    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        resp.media = {"info": {"id": task_id, "state": "pending"}}


class RoundTrip:
    """POST: the bare route plus one Redis PING, what any Redis-backed request pays at least."""

    def __init__(self) -> None:
        self._redis = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.bounded_stream.read()
        self._redis.ping()
        resp.media = {"info": {"id": "bare", "state": "pending"}}


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/health", Health())
    app.add_route("/queue/add", Add())
    app.add_route("/queue/{task_id}", Status())
    app.add_route("/redis-round-trip", RoundTrip())
    return app


app = create_app()
