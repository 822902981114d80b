"""Worker registration: POST /worker/register (docs/worker-protocol.md §1)."""

from typing import Any

import falcon

from runqy import defaults
from runqy.config import Settings, sub_queues
from runqy.errors import QueueNotFound
from runqy.queue_names import is_sub_queue
from runqy.resources import Resource, read_json
from runqy.store import Store
from runqy.vault import Cipher, deployment_secrets

_DEPLOYMENT_DEFAULTS = {"code_path": "", "startup_timeout_secs": 0, "requirements_file": "", "vaults": []}


def registration(settings: Settings, config: dict[str, Any], requested: str,
                 vaults: dict[str, str], git_token: str, redis_addr: str) -> dict[str, Any]:
    """The register answer for ``requested`` (a parent, or one ``parent.sub``), with the Redis
    address workers are to use.

    Every type is what the worker's Go decoder expects; priorities are >= 1 so
    that every sub-queue is polled.
    """
    subs = sub_queues(config)
    one = is_sub_queue(requested)
    if one:
        if requested not in subs:
            raise QueueNotFound(requested, subs)  # its siblings are the names to suggest
        subs = {requested: subs[requested]}
    listed = [{"name": name, "priority": priority}
              for name, priority in sorted(subs.items(), key=lambda item: (-item[1], item[0]))]
    deployment = {**_DEPLOYMENT_DEFAULTS, **config["deployment"]}
    deployment.pop("git_token", None)
    answer = {
        "redis": {"addr": redis_addr, "password": settings.redis_password,
                  "db": settings.redis_db, "use_tls": settings.redis_tls},
        "queue": {"name": requested, "priority": listed[0]["priority"] if one else config["priority"],
                  "mode": config["mode"]},
        "sub_queues": listed,
        "deployment": deployment,
        "vaults": vaults,
    }
    if git_token:
        answer["git_token"] = git_token
    return answer


class Register(Resource):
    """POST /worker/register: Redis credentials, sub-queues and the deployment spec."""

    writes = False  # a POST that changes nothing: no replica has anything to confirm

    def __init__(self, store: Store, settings: Settings, cipher: Cipher, roles: frozenset[str]):
        super().__init__(store, roles)
        self._settings = settings
        self._cipher = cipher

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, "register")
        requested = body["queue"]
        config = self._store.configs.of(requested)
        vaults, git_token = deployment_secrets(self._store.vaults, self._cipher, requested, config["deployment"])
        # RUNQY_REDIS_PUBLIC_ADDR (a proxy or virtual IP in front of the primary), else the primary
        # itself: through Sentinel, the one promoted last
        redis_addr = self._settings.redis_public_addr or self._store.primary_address()
        resp.media = registration(self._settings, config, requested, vaults, git_token, redis_addr)


class Workers(Resource):
    """GET /api/cli/workers: workers from their heartbeat hashes."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        workers = [w.to_dict() for w in self._store.workers.all()]
        resp.media = {"workers": workers, "count": len(workers)}


class WorkerDetail(Resource):
    """GET /api/cli/workers/{worker_id}: one worker and its recent log lines."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, worker_id: str) -> None:
        worker, logs = self._store.workers.get(worker_id, defaults.WORKER_LOG_LINES)
        resp.media = {**worker.to_dict(), "logs": logs}
