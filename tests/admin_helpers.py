"""Shared helpers of the admin API tests: a pinned clock, and Redis seeded by hand
exactly as runqy-worker leaves it (docs/worker-protocol.md §2.2, §2.9, §2.14)."""

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import falcon.testing
import redis

from runqy import keys, protobuf
from runqy.app import create_app
from runqy.config import Settings
from runqy.store import Store, connect

#: The pinned "now" of the admin tests: 2025-06-15T15:06:40Z.
NOW = 1_750_000_000
TODAY = "2025-06-15"
YESTERDAY = "2025-06-14"
TTL_COMPLETED, TTL_ARCHIVED = 86400, 259200
LEASE_SECONDS = 120


def rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pinned_client(settings: Settings, now: int = NOW) -> falcon.testing.TestClient:
    """A TestClient whose store reads the clock ``now`` (configs must already be in Redis)."""
    return falcon.testing.TestClient(create_app(settings, store=Store(connect(settings), clock=lambda: now)))


def errors_of(result: Any) -> list[str]:
    """The messages of a JSON error body; fails when the body has another shape."""
    body = result.json() if callable(getattr(result, "json", None)) else result.json
    assert set(body) == {"errors"}, body
    assert body["errors"] and all(isinstance(m, str) and m for m in body["errors"]), body
    return body["errors"]


def seed_task(r: redis.Redis, queue: str, state: str, task_id: str | None = None, *,
              payload: Any = None, now: int = NOW, score: int | None = None, retried: int = 0,
              **fields: Any) -> str:
    """One task in ``state`` with every key runqy-worker would have written; its id.

    ``score`` is the zset score (next attempt, process time or purge time);
    extra keyword arguments become hash fields.
    """
    task_id = task_id or str(uuid.uuid4())
    payload = {"task": task_id[:8]} if payload is None else payload
    msg = protobuf.encode(protobuf.TaskMessage(
        type=queue, payload=json.dumps(payload).encode(), id=task_id, queue=queue, retry=3,
        retried=retried, timeout=300, retention=TTL_COMPLETED))
    h: dict[str, Any] = {"msg": msg, "state": state, "enqueued_at": now - 100, "ttl_completed": TTL_COMPLETED,
                         "ttl_archived": TTL_ARCHIVED, "pending_timeout": 0, "active_timeout": 300}
    if state == "pending":
        h["pending_since"] = now - 100
    if retried:
        h["retried"] = retried
    h.update(fields)
    pipe = r.pipeline()
    pipe.hset(keys.task(queue, task_id), mapping=h)
    pipe.hset(keys.task_queue(task_id), "queue", queue)
    pipe.expire(keys.task_queue(task_id), 30 * 24 * 3600)
    pipe.sadd(keys.QUEUES, queue)
    if state == "pending":
        pipe.lpush(keys.pending(queue), task_id)
    elif state == "active":
        pipe.lpush(keys.active(queue), task_id)
        pipe.zadd(keys.lease(queue), {task_id: now + LEASE_SECONDS})
    elif state == "retry":
        pipe.zadd(keys.retry(queue), {task_id: score or now + 10})
    elif state == "scheduled":
        pipe.zadd(keys.scheduled(queue), {task_id: score or now + 3600})
    elif state == "archived":
        pipe.zadd(keys.archived(queue), {task_id: score or now + TTL_ARCHIVED})
    elif state == "completed":
        pipe.zadd(keys.completed(queue), {task_id: score or now + TTL_COMPLETED})
    pipe.execute()
    return task_id


def task_traces(r: redis.Redis, queue: str, task_id: str) -> dict[str, Any]:
    """Everything Redis holds about one task: hash, reverse key and list/zset membership."""
    member = task_id.encode()
    return {
        "hash": r.hgetall(keys.task(queue, task_id)),
        "reverse": r.hgetall(keys.task_queue(task_id)),
        "pending": member in r.lrange(keys.pending(queue), 0, -1),
        "held": member in r.lrange(keys.held(queue), 0, -1),
        "active": member in r.lrange(keys.active(queue), 0, -1),
        **{state: r.zscore(keys.state_key(queue, state), task_id)
           for state in ("scheduled", "retry", "archived", "completed")},
    }
