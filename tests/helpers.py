"""What the tests write into Redis, read back from it and send to the API, each written once.

Redis is seeded by hand exactly as runqy-worker leaves it (docs/worker-protocol.md §2.2, §2.9,
§2.14). The API helpers take a falcon TestClient or the URL of a served runqy alike. The
harness itself (the private redis-server, gunicorn, the API keys) is in ``tests/conftest.py``.
"""

import contextlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import falcon.testing
import redis
import requests

from runqy import defaults, keys, protobuf
from runqy.app import create_app
from runqy.config import Settings
from runqy.store import Store, connect
from tests.conftest import ADMIN, WORKER, RedisServer, wait_for
from tests.worker_sim import LEASE_SECONDS

#: The pinned "now" of the tests: 2025-06-15T15:06:40Z.
NOW = 1_750_000_000
TODAY = "2025-06-15"
YESTERDAY = "2025-06-14"


def rfc3339(seconds: int) -> str:
    """Unix seconds as the API writes times, computed apart from runqy's own formatting."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ids_in(r: redis.Redis, key: str) -> list[str]:
    """A list's ids from the tail (the next one a worker takes) to the head."""
    return [i.decode() for i in reversed(r.lrange(key, 0, -1))]


# --- the API -------------------------------------------------------------------------------------


def pinned_client(settings: Settings, now: int = NOW) -> falcon.testing.TestClient:
    """A TestClient whose store reads the clock ``now`` (configs must already be in Redis)."""
    return falcon.testing.TestClient(create_app(settings, store=Store(connect(settings), clock=lambda: now)))


def json_of(answer: Any) -> Any:
    """The JSON body of a falcon test Result or a requests Response."""
    return answer.json() if isinstance(answer, requests.Response) else answer.json


def errors_of(answer: Any) -> list[str]:
    """The messages of a JSON error answer; fails when the answer has another type or shape."""
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body = json_of(answer)
    assert set(body) == {"errors"}, body
    assert body["errors"] and all(isinstance(m, str) and m for m in body["errors"]), body
    return body["errors"]


def assert_queue_not_found(messages: list[str], queue: str) -> None:
    """The messages of a 404 for an unknown queue: its name, then the known queues, closest first."""
    (message,) = messages
    assert message.startswith("queue not found: %s; known queues, closest first: " % queue), message


def assert_json_405(client: falcon.testing.TestClient, method: str, path: str) -> falcon.testing.Result:
    """A method that ``path`` does not serve is a 405 with a JSON error body; the answer."""
    answer = client.simulate_request(method, path, headers=ADMIN)
    assert answer.status_code == 405, (method, path)
    errors_of(answer)
    return answer


def post(client: Any, path: str, body: Any, headers: dict = ADMIN) -> Any:
    """POST ``body`` as JSON to ``path``; ``client`` is a falcon TestClient or the URL of a served runqy."""
    if isinstance(client, str):
        return requests.post(client + path, json=body, headers=headers, timeout=5)
    return client.simulate_post(path, json=body, headers=headers)


def add(client: Any, body: Any, headers: dict = ADMIN) -> Any:
    """POST /queue/add, the answer unchecked."""
    return post(client, "/queue/add", body, headers)


def batch(client: Any, body: Any, headers: dict = ADMIN) -> Any:
    """POST /queue/add-batch, the answer unchecked."""
    return post(client, "/queue/add-batch", body, headers)


def register(client: Any, body: Any, headers: dict = WORKER) -> Any:
    """POST /worker/register, the answer unchecked."""
    return post(client, "/worker/register", body, headers)


def enqueue(client: Any, queue: str, n: int = 1, *, data: Any = None, path: str = "/queue/add",
            headers: dict = ADMIN, **fields: Any) -> list[str]:
    """Enqueue ``n`` tasks one request each (data ``{"i": <index>}`` unless given); their ids."""
    ids = []
    for i in range(n):
        answer = post(client, path, {"queue": queue, "data": {"i": i} if data is None else data, **fields}, headers)
        assert answer.status_code == 200, answer.text
        ids.append(json_of(answer)["info"]["id"])
    return ids


# --- tasks as Redis holds them -------------------------------------------------------------------


def seed_task(r: redis.Redis, queue: str, state: str, task_id: str | None = None, *,
              payload: Any = None, msg: protobuf.TaskMessage | None = None, now: int = NOW,
              score: int | None = None, retried: int = 0, **fields: Any) -> str:
    """One task in ``state`` with every key runqy-worker would have written; its id.

    ``msg`` replaces the task message built from ``payload`` and ``retried``; ``score`` is the
    zset score (next attempt, process time or purge time); extra keyword arguments become hash
    fields, and a field given as None is left out.
    """
    task_id = task_id or str(uuid.uuid4())
    payload = {"task": task_id[:8]} if payload is None else payload
    msg = msg or protobuf.TaskMessage(
        type=queue, payload=json.dumps(payload).encode(), id=task_id, queue=queue, retry=3,
        retried=retried, timeout=300, retention=defaults.RESULT_TTL)
    h: dict[str, Any] = {"msg": protobuf.encode(msg), "state": state, "enqueued_at": now - 100,
                         "ttl_completed": defaults.RESULT_TTL, "ttl_archived": defaults.FAILED_TTL,
                         "pending_timeout": 0, "active_timeout": 300}
    if state == "pending":
        h["pending_since"] = now - 100
    if retried:
        h["retried"] = retried
    h.update(fields)
    pipe = r.pipeline()
    pipe.hset(keys.task(queue, task_id), mapping={k: v for k, v in h.items() if v is not None})
    pipe.hset(keys.task_queue(task_id), keys.TASK_QUEUE_FIELD, queue)
    pipe.expire(keys.task_queue(task_id), defaults.TASK_QUEUE_TTL)
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
        pipe.zadd(keys.archived(queue), {task_id: score or now + defaults.FAILED_TTL})
    elif state == "completed":
        pipe.zadd(keys.completed(queue), {task_id: score or now + defaults.RESULT_TTL})
    pipe.execute()
    return task_id


def stored(r: redis.Redis, queue: str, task_id: str) -> tuple[dict, protobuf.TaskMessage]:
    """A task's hash and its decoded message; fails when the hash is missing."""
    fields = r.hgetall(keys.task(queue, task_id))
    assert fields, "no task hash for %s in %s" % (task_id, queue)
    return fields, protobuf.decode(fields[b"msg"])


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


def assert_canceled(r: redis.Redis, queue: str, task_id: str, before: dict) -> None:
    """The task whose traces were ``before`` is archived as canceled at NOW, in no other list, its
    hash and reverse key kept for the queue's failed_ttl."""
    traces = task_traces(r, queue, task_id)
    h = traces["hash"]
    assert (h[b"state"], h[b"error_msg"], h[b"last_failed_at"]) == (b"archived", b"canceled", str(NOW).encode())
    assert b"pending_since" not in h
    assert h[b"msg"] == before["hash"][b"msg"]
    assert traces["archived"] == NOW + defaults.FAILED_TTL
    assert not any(traces[k] for k in ("pending", "held", "active", "scheduled", "retry", "completed"))
    assert defaults.FAILED_TTL - 5 <= r.ttl(keys.task(queue, task_id)) <= defaults.FAILED_TTL
    assert traces["reverse"] == {keys.TASK_QUEUE_FIELD.encode(): queue.encode()}
    assert defaults.FAILED_TTL - 5 <= r.ttl(keys.task_queue(task_id)) <= defaults.FAILED_TTL


@contextlib.contextmanager
def cancel_channel(redis_server: RedisServer) -> Iterator[Callable[[], str]]:
    """Listens on ``asynq:cancel``, where asynq-native workers learn which active task to stop;
    yields a call that waits for the next id published there."""
    pubsub = redis_server.client().pubsub()
    pubsub.subscribe(keys.CANCEL_CHANNEL)
    wait_for(lambda: pubsub.get_message(timeout=1)["type"] == "subscribe", what="the subscription")

    def published() -> str:
        message = wait_for(lambda: pubsub.get_message(timeout=1), what="a message on " + keys.CANCEL_CHANNEL)
        assert message["channel"] == keys.CANCEL_CHANNEL.encode(), message
        return message["data"].decode()

    try:
        yield published
    finally:
        pubsub.close()


# --- workers as their heartbeats leave them (docs/worker-protocol.md §2.14) ---------------------

#: runqy-worker's own constants: its heartbeat hash and log list expire after HEARTBEAT_TTL
#: seconds, each beat pushes its registry score REGISTRY_AHEAD seconds ahead, and the log list
#: keeps its last LOG_LINES_KEPT lines.
HEARTBEAT_TTL = 30
REGISTRY_AHEAD = 1800
LOG_LINES_KEPT = 500
METRICS = {"cpu_percent": 12.5, "memory_used_bytes": 2147483648, "memory_total_bytes": 17179869184,
           "gpus": [{"index": 0, "name": "NVIDIA A10G", "utilization_percent": 87, "memory_used_mb": 20110,
                     "memory_total_mb": 23028, "temperature_c": 61}],
           "collected_at": "2025-06-15T15:06:38Z"}
RECOVERY = {"inference": {"state": "idle", "consecutive_fails": 0, "total_restarts": 1}}
RUNNING_QUEUES = "map[inference.high:10 inference.low:2]"


def heartbeat(r: redis.Redis, wid: str, *, status: str = "running", healthy: str = "1",
              queues: str = RUNNING_QUEUES, last_beat: int = NOW, started_at: int = NOW - 600,
              concurrency: int = 4, recovery: dict | None = RECOVERY, registered: bool = True) -> None:
    """One heartbeat of runqy-worker ``wid``: ZADD last_beat + REGISTRY_AHEAD, HSET the status hash, EXPIRE."""
    fields = {"worker_id": wid, "started_at": str(started_at), "last_beat": str(last_beat),
              "concurrency": str(concurrency), "queues": queues, "status": status, "healthy": healthy,
              "metrics": json.dumps(METRICS)}
    if recovery is not None:
        fields["recovery"] = json.dumps(recovery)
    if registered:
        r.zadd(keys.WORKERS, {wid: last_beat + REGISTRY_AHEAD})
    r.hset(keys.worker(wid), mapping=fields)
    r.expire(keys.worker(wid), HEARTBEAT_TTL)


def log_lines(r: redis.Redis, wid: str, n: int, start_ms: int = NOW * 1000) -> list[dict]:
    """``n`` log lines as the worker pushes them: RPUSH, LTRIM to the last LOG_LINES_KEPT, EXPIRE."""
    lines = [{"ts": start_ms + i, "src": "stderr" if i % 3 else "stdout", "text": "line %d: ünïcode ok" % i,
              "seq": i + 1} for i in range(n)]
    r.rpush(keys.worker_logs(wid), *(json.dumps(line) for line in lines))
    r.ltrim(keys.worker_logs(wid), -LOG_LINES_KEPT, -1)
    r.expire(keys.worker_logs(wid), HEARTBEAT_TTL)
    return lines
