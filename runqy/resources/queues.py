"""Queue administration: /api/cli/queues[/{queue}[/pause|/unpause]]."""

from typing import Any

import falcon

from runqy import defaults, validation
from runqy.errors import ValidationError
from runqy.queue_names import is_sub_queue, parent_of
from runqy.resources import Resource
from runqy.resources.configs import public_config
from runqy.states import RUNNABLE_STATES
from runqy.store import QueueStats, Store

_COUNTS = ("pending", "held", "active", "scheduled", "retry", "archived", "completed",
           "processed", "failed", "processed_today", "failed_today")


def queue_param(name: str) -> str:
    """A queue name from the URL path (a parent or a full sub-queue name), validated."""
    validation.check_param("queue_name", name, "queue")
    return name


def page_params(req: falcon.Request, default_limit: int = defaults.PAGE) -> tuple[int, int]:
    """``limit`` (at most 1000) and ``offset`` of a listing."""
    limit = req.get_param_as_int("limit", min_value=1, max_value=defaults.MAX_PAGE) or default_limit
    return limit, req.get_param_as_int("offset", min_value=0, max_value=defaults.MAX_OFFSET) or 0


def summary(name: str, subs: list[QueueStats]) -> dict[str, Any]:
    """One queue (a parent or a single sub-queue): the sums of its sub-queues' statistics."""
    out: dict[str, Any] = {"name": name}
    for field in _COUNTS:
        out[field] = sum(getattr(s, field) for s in subs)
    out["paused"] = all(s.paused for s in subs)
    out["latency_seconds"] = max(s.latency_seconds for s in subs)
    priorities = [s.priority for s in subs if s.priority is not None]
    out["priority"] = max(priorities) if priorities else None
    out["configured"] = any(s.configured for s in subs)  # a parent's config names at least one of them
    return out


class Queues(Resource):
    """GET /api/cli/queues: every configured queue and every queue in asynq:queues."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit, offset = page_params(req, default_limit=defaults.MAX_PAGE)
        total, queues = self._store.queues.page(limit, offset)
        resp.media = {"queues": [q.to_dict() for q in queues], "count": len(queues), "total": total,
                      "limit": limit, "offset": offset}


class Queue(Resource):
    """GET /api/cli/queues/{queue}: statistics (summed over a parent's sub-queues) and config."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        subs = self._store.queues.stats(self._store.queues.resolve(queue_param(queue)))
        config = self._store.configs.get(parent_of(queue))
        answer = summary(queue, subs)
        if config and not is_sub_queue(queue):
            answer["priority"] = config["priority"]
        resp.media = {**answer, "sub_queues": [s.to_dict() for s in subs], "config": public_config(config)}


class Pause(Resource):
    """POST /api/cli/queues/{queue}/pause and /unpause; repeating either is harmless."""

    def __init__(self, store: Store, roles: frozenset[str], paused: bool):
        super().__init__(store, roles)
        self._paused = paused

    def on_post(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        moved = self._store.queues.pause(queue_param(queue), self._paused)
        resp.media = {"queue": queue, "paused": self._paused,
                      "sub_queues": [{"name": q, "moved": n} for q, n in moved.items()]}


class Run(Resource):
    """POST /api/cli/queues/{queue}/run?state=archived|retry|scheduled: every such task, now."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        state = req.get_param("state", required=True)
        if state not in RUNNABLE_STATES:
            raise ValidationError("state: %r is not one of %s" % (state, ", ".join(RUNNABLE_STATES)))
        moved = self._store.tasks.run_all(list(self._store.queues.resolve(queue_param(queue))), state)
        resp.media = {"queue": queue, "state": state, "moved": sum(moved.values()),
                      "sub_queues": [{"name": q, "moved": n} for q, n in moved.items()]}
