"""The ceiling of the HTTP layer: falcon routes on runqy's paths that do no work.

Served by gunicorn with runqy's own config file (``tests.bench.bare_app:app``),
so the difference to runqy is what runqy does inside a request.
"""

import falcon


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


def create_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/health", Health())
    app.add_route("/queue/add", Add())
    app.add_route("/queue/{task_id}", Status())
    return app


app = create_app()
