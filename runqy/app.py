"""The WSGI application: ``create_app`` wires settings, store and the route table."""

import logging
from typing import Any

import falcon
import redis

from runqy import background, defaults, jsontext, validation
from runqy.auth import ADMIN, CLIENT, WORKER, AuthMiddleware
from runqy.config import Settings
from runqy.errors import MaybeWritten, NotFound, NotReplicated, RunqyError
from runqy.housekeeper import Housekeeper
from runqy.metrics import Metrics
from runqy.resources import configs, dashboard, docs, health, queues, stats, tasks, vaults, workers
from runqy.sessions import SAFE_METHODS, Sessions
from runqy.store import Store, connect
from runqy.validation import SCHEMA_DIR
from runqy.vault import Cipher
from runqy.waiting import Waiters

logger = logging.getLogger(__name__)

ADMIN_ONLY = frozenset((ADMIN,))
CLIENTS = frozenset((ADMIN, CLIENT))
WORKERS = frozenset((ADMIN, WORKER))


class RequestLimits:
    """Hands each request the body size limit that ``read_json`` enforces, and refuses
    encoded slashes: the server decodes ``%2F`` before routing, so one would move a
    path parameter's text into another route."""

    def __init__(self, max_body_size: int):
        self._max = max_body_size

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.max_body_size = self._max
        raw = req.env.get("RAW_URI", "").partition("?")[0]
        if "%2f" in raw.lower():
            raise NotFound("no route for a path with an encoded '/': %s" % raw[:200])


class Replicated:
    """RUNQY_REDIS_WAIT_REPLICAS: a change is answered 2xx only once that many replicas have it;
    otherwise 503, as a Redis that did not answer would be (docs/product.md §8)."""

    def __init__(self, store: Store, replicas: int, timeout: float = defaults.REDIS_WAIT_TIMEOUT):
        self._store = store
        self._replicas = replicas
        self._timeout = timeout

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: object,
                         req_succeeded: bool) -> None:
        if (not req_succeeded or req.method in SAFE_METHODS or not 200 <= resp.status_code < 300
                or not getattr(resource, "writes", True)):
            return
        try:
            confirmed = self._store.replicas_confirming(self._replicas, self._timeout)
        except redis.exceptions.RedisError as exc:
            _runqy_error(req, resp, MaybeWritten(exc), {})
            return
        if confirmed < self._replicas:
            _runqy_error(req, resp, NotReplicated(confirmed, self._replicas, self._timeout), {})


class BackgroundLoops:
    """Starts the background loops of a process forked after they were started, at its first
    request, for servers without a hook after the fork (runqy.background)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        background.ensure_running()


def _errors(resp: falcon.Response, status: int, messages: list[str]) -> None:
    resp.status = status
    resp.media = {"errors": messages}


def _runqy_error(req: falcon.Request, resp: falcon.Response, ex: RunqyError, params: dict) -> None:
    _errors(resp, ex.status, ex.messages)
    if ex.status == 401:
        resp.set_header("WWW-Authenticate", "Bearer")
    elif ex.status == 503:
        resp.set_header("Retry-After", "1")


def _redis_error(req: falcon.Request, resp: falcon.Response, ex: redis.exceptions.RedisError, params: dict) -> None:
    if isinstance(ex, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        message = "redis unavailable: %s" % ex
    else:
        logger.error("redis refused %s %s: %s", req.method, req.path, ex)
        message = "redis error: %s" % str(ex).split("\n")[0]
    _errors(resp, 503, [message])
    resp.set_header("Retry-After", "1")


def _http_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict) -> None:
    message = ex.title if not ex.description else "%s: %s" % (ex.title, ex.description)
    _errors(resp, ex.status_code, [message])
    for name, value in (ex.headers or {}).items():
        resp.set_header(name, value)


def _no_route(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPRouteNotFound, params: dict) -> None:
    _errors(resp, 404, ["no route for %s %s: the routes are listed at /swagger/index.html (and in /openapi.yaml)"
                        % (req.method, req.path[:200])])


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    logger.exception("unexpected error in %s %s", req.method, req.path)
    _errors(resp, 500, ["internal server error"])


def _dashboard_routes(sessions: Sessions | None, keys: AuthMiddleware) -> list[tuple[str, object]]:
    """The dashboard's page, assets and sign-in; while it is turned off, a 404 that says so."""
    paths = ("/monitoring", "/monitoring/session", "/monitoring/assets/{name}", "/monitoring/{page:path}")
    if sessions is None:
        off = dashboard.Off()
        return [(path, off) for path in paths]
    page = dashboard.Page()
    return list(zip(paths, (page, dashboard.Session(sessions, keys), dashboard.Asset(), page)))


def create_app(settings: Settings, *, store: Store | None = None, housekeeper: Housekeeper | None = None,
               **store_options: Any) -> falcon.App:
    """The runqy application; ``store`` defaults to one on the configured Redis. ``housekeeper``
    (the one this process runs, if any) reports to /metrics."""
    store = store or Store(connect(settings), **store_options)
    validation.compile_all()
    cipher = Cipher(settings.vault_master_key)
    if not cipher.enabled:
        logger.debug("%s", cipher.problem)  # the server's start-up summary says so once
    metrics = Metrics(store, housekeeper)
    waiters = Waiters(store)
    sessions = Sessions(store, settings.dashboard_read_only) if settings.dashboard else None
    keys = AuthMiddleware(settings, sessions)
    middleware = [BackgroundLoops(), metrics, RequestLimits(settings.max_body_size), keys]
    if settings.redis_wait_replicas:
        middleware.append(Replicated(store, settings.redis_wait_replicas))  # its answer is the one measured
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(dumps=jsontext.dumps)

    for path, resource in (
        ("/health", health.Health()),
        ("/healthz", health.Ready(store)),
        ("/metrics", metrics),
        ("/openapi.yaml", docs.OpenAPI()),
        ("/swagger", docs.SwaggerRedirect()),
        ("/swagger/index.html", docs.SwaggerIndex()),
        ("/worker/register", workers.Register(store, settings, cipher, WORKERS)),
        ("/queue/add", tasks.Enqueue(store, CLIENTS)),
        ("/queue/add-batch", tasks.EnqueueBatch(store, CLIENTS)),
        ("/queue/{task_id}", tasks.TaskStatus(store, waiters, CLIENTS)),
        ("/queue/{task_id}/{queue_name}", tasks.TaskStatus(store, waiters, CLIENTS)),
        ("/api/cli/queues", queues.Queues(store, ADMIN_ONLY)),
        ("/api/cli/queues/{queue}", queues.Queue(store, ADMIN_ONLY)),
        ("/api/cli/queues/{queue}/pause", queues.Pause(store, ADMIN_ONLY, paused=True)),
        ("/api/cli/queues/{queue}/unpause", queues.Pause(store, ADMIN_ONLY, paused=False)),
        ("/api/cli/queues/{queue}/run", queues.Run(store, ADMIN_ONLY)),
        ("/api/cli/queues/{queue}/tasks", tasks.QueueTasks(store, ADMIN_ONLY)),
        ("/api/cli/queues/{queue}/tasks/{task_id}", tasks.QueueTask(store, ADMIN_ONLY)),
        ("/api/cli/queues/{queue}/tasks/{task_id}/run", tasks.RunTask(store, ADMIN_ONLY)),
        ("/api/cli/tasks", tasks.Enqueue(store, ADMIN_ONLY)),
        ("/api/cli/tasks/{task_id}", tasks.CancelTask(store, ADMIN_ONLY)),
        ("/api/cli/stats", stats.Stats(store, ADMIN_ONLY)),
        ("/api/cli/workers", workers.Workers(store, ADMIN_ONLY)),
        ("/api/cli/workers/{worker_id}", workers.WorkerDetail(store, ADMIN_ONLY)),
        ("/api/cli/configs", configs.Configs(store, ADMIN_ONLY)),
        ("/api/cli/configs/reload", configs.Reload(store, settings, ADMIN_ONLY)),
        ("/api/cli/configs/{name}", configs.Config(store, ADMIN_ONLY)),
        ("/api/vaults", vaults.Vaults(store, cipher, ADMIN_ONLY)),
        ("/api/vaults/{name}", vaults.Vault(store, cipher, ADMIN_ONLY)),
        ("/api/vaults/{name}/entries", vaults.VaultEntries(store, cipher, ADMIN_ONLY)),
        ("/api/vaults/{name}/entries/{key}", vaults.VaultEntry(store, cipher, ADMIN_ONLY)),
    ):
        app.add_route(path, resource)
    for path, resource in _dashboard_routes(sessions, keys):
        app.add_route(path, resource)

    app.add_static_route("/swagger", str(docs.SWAGGER_ASSETS))
    app.add_static_route("/schemas", str(SCHEMA_DIR))  # the request schemas openapi.yaml refers to

    # the most general handler first: falcon picks the most specific match
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(falcon.HTTPRouteNotFound, _no_route)
    app.add_error_handler(redis.exceptions.RedisError, _redis_error)
    app.add_error_handler(RunqyError, _runqy_error)
    return app
