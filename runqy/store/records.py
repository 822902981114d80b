"""The plain records the store answers with, and how each is read from what Redis holds."""

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from runqy import defaults, jsontext, keys, protobuf

#: Fields of a task hash that a task's record is built from (docs/worker-protocol.md §3.2).
TASK_FIELDS = ("state", "msg", "result", "error_msg", "retried", "enqueued_at", "pending_since",
               "completed_at", "last_failed_at", "active_timeout")


def uuid4() -> str:
    """A random (version 4) UUID as text, as ``str(uuid.uuid4())`` makes it, in a third of the time."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40
    raw[8] = raw[8] & 0x3F | 0x80
    text = raw.hex()
    return "%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


def rfc3339(seconds: Any) -> str | None:
    """Unix seconds (or nanoseconds, as asynq writes) as an RFC 3339 UTC string."""
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    if value > 1e12:
        value /= 1e9
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(value)))


def json_value(raw: bytes | None) -> Any:
    """Stored JSON text as a value (NaN and Infinity as None); text that is not JSON comes back as a string."""
    if raw is None:
        return None
    try:
        return jsontext.loads_stored(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def to_int(raw: Any, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


class Record:
    """A dataclass whose answer form is its fields, one level deep (payloads may nest deeper
    than ``dataclasses.asdict`` can recurse); its ``__dict__`` holds exactly its fields, in order."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class NewTask:
    """What the store needs to enqueue one task."""

    payload: bytes
    timeout: int | None = None
    task_id: str | None = None


@dataclass
class Enqueued:
    id: str
    queue: str
    state: str
    max_retry: int
    timeout: int
    held: bool = False
    #: when a scheduled task is to run, Unix seconds
    process_at: int | None = None
    #: True when an idempotent request was repeated: the task is the first request's
    replayed: bool = False


@dataclass
class Idempotency:
    """What makes an enqueue idempotent: the record of its key, and the fingerprint of the
    request (route and body) that the key may be used again with."""

    key: str
    fingerprint: str


@dataclass
class Task(Record):
    id: str
    queue: str
    type: str
    state: str
    payload: Any
    result: Any
    last_err: str | None
    retried: int
    max_retry: int
    timeout: int | None
    enqueued_at: str | None
    completed_at: str | None
    last_failed_at: str | None
    next_process_at: str | None

    @classmethod
    def from_hash(cls, task_id: str, queue: str, h: dict[str, bytes | None], next_at: Any) -> "Task | None":
        """A task from its hash's TASK_FIELDS (docs/worker-protocol.md §3.2); None when the hash is gone."""
        if h["state"] is None and h["msg"] is None:
            return None
        try:
            msg = protobuf.decode(h["msg"] or b"")
        except protobuf.DecodeError:
            msg = protobuf.TaskMessage()
        return cls(
            id=task_id, queue=queue, type=msg.type or queue,
            state=(h["state"] or b"unknown").decode(),
            payload=json_value(msg.payload) if msg.payload else None,
            result=json_value(h["result"]),
            last_err=h["error_msg"].decode("utf-8", "replace") if h["error_msg"] else None,
            retried=max(msg.retried, to_int(h["retried"])),
            max_retry=msg.retry, timeout=to_int(h["active_timeout"], msg.timeout) or None,
            enqueued_at=rfc3339(h["enqueued_at"] or h["pending_since"]),
            completed_at=rfc3339(h["completed_at"] or msg.completed_at),
            last_failed_at=rfc3339(h["last_failed_at"]),
            next_process_at=rfc3339(next_at),
        )


@dataclass
class QueueStats(Record):
    name: str
    priority: int | None
    pending: int
    held: int
    active: int
    scheduled: int
    retry: int
    archived: int
    completed: int
    paused: bool
    processed: int
    failed: int
    processed_today: int
    failed_today: int
    latency_seconds: int
    #: a queue config names it; else only ``asynq:queues`` does (its config removed, or never made)
    configured: bool


def parse_go_map(text: str) -> list[dict[str, Any]]:
    """``map[inference.default:1 inference.high:5]`` as ``[{name, priority}]`` (docs/worker-protocol.md §3.3)."""
    text = text.strip()
    if text.startswith("map[") and text.endswith("]"):
        text = text[4:-1]
    queues = []
    for token in text.split():
        name, _, priority = token.rpartition(":")
        queues.append({"name": name or priority, "priority": to_int(priority) if name else 0})
    return queues


@dataclass
class Worker(Record):
    worker_id: str
    status: str
    healthy: bool
    queues: list[dict[str, Any]]
    concurrency: int
    started_at: str | None
    last_beat: str | None
    is_stale: bool
    metrics: Any
    recovery: Any

    @classmethod
    def from_hash(cls, worker_id: str, h: dict[bytes, bytes], now: int) -> "Worker":
        """A worker from its heartbeat hash; a missing hash means it is offline."""
        text = {k.decode(): v.decode("utf-8", "replace") for k, v in h.items()}
        last_beat = to_int(text.get("last_beat"))
        return cls(
            worker_id=text.get("worker_id") or worker_id,
            status=text.get("status", "offline") if h else "offline",
            healthy=text.get("healthy") == "1",
            queues=parse_go_map(text.get("queues", "")),
            concurrency=to_int(text.get("concurrency")),
            started_at=rfc3339(text.get("started_at")),
            last_beat=rfc3339(last_beat),
            is_stale=not h or now - last_beat > defaults.WORKER_STALE_AFTER,
            metrics=json_value(h.get(b"metrics")),
            recovery=json_value(h.get(b"recovery")),
        )


def vault_entries(fields: dict[bytes, bytes]) -> dict[str, dict[str, Any]] | None:
    """A vault hash's entries by key (values still encrypted); None when the vault does not exist."""
    meta = keys.VAULT_META.encode()
    if meta not in fields:
        return None
    prefix = len(keys.vault_entry_field(""))
    return {k.decode()[prefix:]: json.loads(v) for k, v in fields.items() if k != meta}
