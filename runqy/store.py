"""The only code that talks to Redis: one method per operation, no HTTP here.

Keys come from :mod:`runqy.keys`; multi-key writes are the Lua scripts of
``runqy/lua``, loaded once and called by SHA inside pipelines so that every
hot path is one round trip.
"""

import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import redis
from redis.backoff import NoBackoff
from redis.client import EMPTY_RESPONSE, NEVER_DECODE
from redis.retry import Retry

from runqy import defaults, jsontext, keys, protobuf
from runqy.coalescer import Coalescer
from runqy.config import Settings, digest, sub_queues
from runqy.errors import Conflict, NotFound, RunqyError, Unavailable, ValidationError

logger = logging.getLogger(__name__)

LUA_DIR = Path(__file__).resolve().parent / "lua"
CONFIGS_LOST = "redis has lost its data: the queue configs are being restored; retry in a second"
MAYBE_WRITTEN = ("redis unavailable: %s; the task may have been written: retry with the same task_id "
                 "to avoid a duplicate")
#: redis-py options that steer reading a reply, not parsing it
_NOT_FOR_CALLBACKS = frozenset(("keys", EMPTY_RESPONSE, NEVER_DECODE))
_TASK_FIELDS = ("state", "msg", "result", "error_msg", "retried", "enqueued_at", "pending_since",
                "completed_at", "last_failed_at", "active_timeout")


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


def _json_value(raw: bytes | None) -> Any:
    """Stored JSON text as a value (NaN and Infinity as None); text that is not JSON comes back as a string."""
    if raw is None:
        return None
    try:
        return jsontext.loads_stored(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def _int(raw: Any, default: int = 0) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return default


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict, one level deep (payloads may nest deeper than ``asdict`` can recurse).

    Its ``__dict__`` holds exactly its fields, in their order.
    """
    return dict(vars(obj))


@dataclass
class Enqueued:
    id: str
    queue: str
    state: str
    max_retry: int
    timeout: int
    held: bool = False


@dataclass
class Task:
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

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)


@dataclass
class QueueStats:
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

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)


def parse_go_map(text: str) -> list[dict[str, Any]]:
    """``map[inference.default:1 inference.high:5]`` as ``[{name, priority}]`` (worker-protocol §3.3)."""
    text = text.strip()
    if text.startswith("map[") and text.endswith("]"):
        text = text[4:-1]
    queues = []
    for token in text.split():
        name, _, priority = token.rpartition(":")
        queues.append({"name": name or priority, "priority": _int(priority) if name else 0})
    return queues


@dataclass
class Worker:
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
        last_beat = _int(text.get("last_beat"))
        return cls(
            worker_id=text.get("worker_id") or worker_id,
            status=text.get("status", "offline") if h else "offline",
            healthy=text.get("healthy") == "1",
            queues=parse_go_map(text.get("queues", "")),
            concurrency=_int(text.get("concurrency")),
            started_at=rfc3339(text.get("started_at")),
            last_beat=rfc3339(last_beat),
            is_stale=not h or now - last_beat > defaults.WORKER_STALE_AFTER,
            metrics=_json_value(h.get(b"metrics")),
            recovery=_json_value(h.get(b"recovery")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _fields(self)


def _vault_entries(fields: dict[bytes, bytes]) -> dict[str, dict[str, Any]] | None:
    """A vault hash's entries by key (values still encrypted); None when the vault does not exist."""
    meta = keys.VAULT_META.encode()
    if meta not in fields:
        return None
    prefix = len(keys.vault_entry_field(""))
    return {k.decode()[prefix:]: json.loads(v) for k, v in fields.items() if k != meta}


@dataclass
class NewTask:
    """What the store needs to enqueue one task."""

    payload: bytes
    timeout: int | None = None
    task_id: str | None = None


class Script:
    """A Lua script from ``runqy/lua``, addressed by its SHA1."""

    def __init__(self, name: str):
        self.name = name
        self.source = (LUA_DIR / (name + ".lua")).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()


class Store:
    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = uuid4):
        self.redis = client
        self.clock = clock
        self.new_id = new_id
        self.scripts = {p.stem: Script(p.stem) for p in LUA_DIR.glob("*.lua")}
        self._coalescer = Coalescer(client.connection_pool)
        self._queue_of: OrderedDict[str, str] = OrderedDict()  # task id -> queue, see get_task

    # --- plumbing ----------------------------------------------------------------

    def ping(self) -> bool:
        return bool(self.redis.ping())

    def _load_scripts(self) -> None:
        for script in self.scripts.values():
            self.redis.script_load(script.source)

    def _pipeline(self, fill: Callable[[redis.client.Pipeline], None]) -> list:
        """Run the commands ``fill`` queues in one round trip; errors come back as values.

        The commands go through the coalescer, with those of other requests in flight, and
        each reply is parsed as redis-py would. When Redis has forgotten a script (restart,
        SCRIPT FLUSH) the scripts are loaded and only the script calls that failed run
        again: a script that is not found has not run, and the other commands must not run
        twice.
        """
        pipe = self.redis.pipeline(transaction=False)
        fill(pipe)
        return self._run(list(pipe.command_stack))

    def _run(self, stack: list[tuple[tuple, dict]]) -> list:
        """``_pipeline`` for commands given as ``(args, options)``, as a pipeline's stack holds them."""
        results = self._execute(stack)
        missing = [i for i, r in enumerate(results) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:
            self._load_scripts()
            for i, result in zip(missing, self._execute([stack[i] for i in missing])):
                results[i] = result
        return results

    def _execute(self, stack: list[tuple[tuple, dict]]) -> list:
        """The parsed replies to pipeline commands ``(args, options)``, errors as values."""
        replies = self._coalescer.execute([args for args, _ in stack])
        return [reply if isinstance(reply, Exception) else self._parse(args, options, reply)
                for (args, options), reply in zip(stack, replies)]

    def _parse(self, args: tuple, options: dict, reply: Any) -> Any:
        """A raw reply as redis-py's own parsing makes it (its response callback for the command)."""
        callback = self.redis.response_callbacks.get(args[0])
        if callback is None:
            return reply
        return callback(reply, **{k: v for k, v in options.items() if k not in _NOT_FOR_CALLBACKS})

    def _replies(self, fill: Callable[[redis.client.Pipeline], None]) -> list:
        """``_pipeline``, raising the first error Redis answered instead of returning it."""
        replies = self._pipeline(fill)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def _evalsha(self, pipe: redis.client.Pipeline, name: str, keys_: Sequence[str], args: Iterable) -> None:
        pipe.evalsha(self.scripts[name].sha, len(keys_), *keys_, *args)

    def _now(self) -> int:
        return int(self.clock())

    # --- queue configs -------------------------------------------------------------

    def put_configs(self, configs: dict[str, dict[str, Any]], replace: bool = True, *,
                    yaml_digest: str | None = None) -> list[str]:
        """Create or replace queue configs, with the enqueue defaults of each sub-queue; the new names.

        One optimistic transaction on ``runqy:configs``: a concurrent change makes it
        start over. Without ``replace`` an existing name is a Conflict and nothing is
        written. Sub-queues a config no longer lists lose their defaults (so enqueue
        to them is refused); their tasks stay in Redis. ``yaml_digest`` is recorded
        with the configs of the YAML directory (see :meth:`unknown_queue`).
        """
        names = list(configs)

        def write(pipe: redis.client.Pipeline) -> list[str]:
            old = pipe.hmget(keys.CONFIGS, names) if names else []
            existing = [name for name, previous in zip(names, old) if previous]
            if existing and not replace:
                raise Conflict(*("queue config already exists: %s (use ?force=true to replace it)" % name
                                 for name in existing))
            pipe.multi()
            for name, previous in zip(names, old):
                config = configs[name]
                full = sub_queues(config)
                for gone in set(sub_queues(json.loads(previous)) if previous else ()) - set(full):
                    pipe.delete(keys.queue_config(gone))
                pipe.hset(keys.CONFIGS, name, json.dumps(config, sort_keys=True))
                for queue in sorted(full):
                    pipe.hset(keys.queue_config(queue), mapping={
                        "max_retry": config["max_retry"], "timeout": config["timeout"],
                        "result_ttl": config["result_ttl"], "failed_ttl": config["failed_ttl"],
                        "pending_timeout": config["pending_timeout"]})
                    pipe.sadd(keys.QUEUES, queue)
            if yaml_digest:
                pipe.set(keys.CONFIGS_YAML, yaml_digest)
            return [name for name in names if name not in existing]

        return self.redis.transaction(write, keys.CONFIGS, value_from_callable=True)

    def put_yaml_configs(self, configs: dict[str, dict[str, Any]]) -> None:
        """Write the configs of the YAML directory, recording their digest (see :meth:`unknown_queue`)."""
        self.put_configs(configs, yaml_digest=digest(configs))

    def yaml_digest(self) -> str | None:
        """The digest recorded with the YAML configs; None when Redis has lost them."""
        raw = self.redis.get(keys.CONFIGS_YAML)
        return raw.decode() if raw is not None else None

    def unknown_queue(self, name: str) -> RunqyError:
        """The error for a queue without a config: 404, unless Redis has lost its data.

        A Redis that restarted empty, was flushed or failed over to an empty replica
        has lost the digest key too; every server process puts the YAML configs back
        within a second or two (runqy.server), so until then the answer is a
        retryable 503, never a 404 for a queue that exists.
        """
        if self.redis.exists(keys.CONFIGS_YAML):
            return NotFound("queue not found: %s" % name)
        return Unavailable(CONFIGS_LOST)

    def get_config(self, name: str) -> dict[str, Any] | None:
        raw = self.redis.hget(keys.CONFIGS, name)
        return json.loads(raw) if raw else None

    def config_of(self, queue: str) -> dict[str, Any]:
        """The config of ``queue``'s parent; NotFound (or Unavailable, see unknown_queue) without one."""
        config = self.get_config(queue.partition(".")[0])
        if config is None:
            raise self.unknown_queue(queue)
        return config

    def list_configs(self) -> list[dict[str, Any]]:
        return [json.loads(v) for _, v in sorted(self.redis.hgetall(keys.CONFIGS).items())]

    # --- enqueue -------------------------------------------------------------------

    def enqueue(self, queue: str, tasks: Sequence[NewTask], max_retry: int | None = None) -> list[Enqueued]:
        """Write ``tasks`` onto ``queue`` (a full sub-queue name) with one call of the enqueue script.

        The script writes every reverse key and task hash and pushes the ids, or
        nothing. When Redis does not answer, the tasks may have been written: the
        error says to retry with the same ``task_id``, which then finds the task
        (409) or writes it.
        """
        ids = [t.task_id or self.new_id() for t in tasks]
        if len(set(ids)) != len(ids):
            raise Conflict("a task id repeats within one request")
        script_keys = [keys.queue_config(queue), keys.pending(queue), keys.held(queue), keys.paused(queue),
                       keys.QUEUES]
        script_keys += [keys.task(queue, task_id) for task_id in ids]
        script_keys += [keys.task_queue(task_id) for task_id in ids]
        args: list[Any] = [self._now(), "" if max_retry is None else max_retry, queue, defaults.TASK_QUEUE_TTL]
        head = protobuf.head_encoder(queue, queue)
        for task_id, task in zip(ids, tasks):
            args += [task_id, head(task.payload, task_id),
                     "" if task.timeout is None else task.timeout]
        try:
            reply = self._script("enqueue", script_keys, args)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise Unavailable(MAYBE_WRITTEN % exc) from None
        code = int(reply[0])
        if code == -1:
            raise self.unknown_queue(queue)
        if code == -2:
            raise Conflict("task already exists: %s" % ids[int(reply[1]) - 1])
        self._remember(dict.fromkeys(ids, queue))
        held, resolved_retry, default_timeout = code == 1, int(reply[1]), int(reply[2])
        return [Enqueued(task_id, queue, "pending", resolved_retry,
                         default_timeout if task.timeout is None else task.timeout, held)
                for task_id, task in zip(ids, tasks)]

    # --- tasks ----------------------------------------------------------------------

    def task_queue(self, task_id: str) -> str | None:
        (raw,) = self._replies(lambda pipe: pipe.hget(keys.task_queue(task_id), "queue"))
        return raw.decode() if raw else None

    def get_task(self, task_id: str, queue: str | None = None) -> Task:
        """The task ``task_id``; its queue comes from the reverse key unless given.

        A task's queue never changes, so this process remembers it: the reverse key
        and the task in the remembered queue are then read in one round trip, and
        the task is used only when the reverse key still names that queue.
        """
        if queue is None:
            remembered = self._queue_of.get(task_id)
            if remembered:
                def fill(pipe: redis.client.Pipeline) -> None:
                    pipe.hget(keys.task_queue(task_id), "queue")
                    self._read_tasks(pipe, remembered, [task_id])

                replies = self._pipeline(fill)
                queue = replies[0].decode() if replies[0] else None
                found = self._parse_tasks(remembered, [task_id], replies[1:]) if queue == remembered else []
                if found:
                    return found[0]
            else:
                queue = self.task_queue(task_id)
            if queue is None:
                raise NotFound("task not found: %s" % task_id)
            self._remember({task_id: queue})
        found = self._tasks(queue, [task_id])
        if not found:
            raise NotFound("task not found: %s" % task_id)
        return found[0]

    def _remember(self, queues_of: dict[str, str]) -> None:
        """Remember the newest tasks' queues, forgetting the oldest."""
        remembered = self._queue_of
        remembered.update(queues_of)
        for _ in range(len(remembered) - defaults.REMEMBERED_TASKS):
            remembered.popitem(last=False)

    def _task(self, task_id: str, queue: str, h: dict[str, bytes | None], next_at: Any) -> Task | None:
        """A task from its hash fields (worker-protocol §3.2); None when the hash is gone."""
        if h["state"] is None and h["msg"] is None:
            return None
        try:
            msg = protobuf.decode(h["msg"] or b"")
        except protobuf.DecodeError:
            msg = protobuf.TaskMessage()
        timeout = _int(h["active_timeout"], msg.timeout) or None
        return Task(
            id=task_id, queue=queue, type=msg.type or queue,
            state=(h["state"] or b"unknown").decode(),
            payload=_json_value(msg.payload) if msg.payload else None,
            result=_json_value(h["result"]),
            last_err=h["error_msg"].decode("utf-8", "replace") if h["error_msg"] else None,
            retried=max(msg.retried, _int(h["retried"])),
            max_retry=msg.retry, timeout=timeout,
            enqueued_at=rfc3339(h["enqueued_at"] or h["pending_since"]),
            completed_at=rfc3339(h["completed_at"] or msg.completed_at),
            last_failed_at=rfc3339(h["last_failed_at"]),
            next_process_at=rfc3339(next_at),
        )

    # --- queues ----------------------------------------------------------------------

    def _known_queues(self) -> dict[str, int | None]:
        """Every configured sub-queue and every queue in ``asynq:queues``, with its priority."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.CONFIGS)
        pipe.smembers(keys.QUEUES)
        configs, members = pipe.execute()
        known: dict[str, int | None] = {m.decode(): None for m in members}
        for raw in configs.values():
            known.update(sub_queues(json.loads(raw)))
        return known

    def resolve_queues(self, name: str) -> dict[str, int | None]:
        """The sub-queues ``name`` stands for: itself when dotted, else all of its parent's."""
        known = self._known_queues()
        if "." in name:
            found = {name: known[name]} if name in known else {}
        else:
            found = {q: p for q, p in known.items() if q.partition(".")[0] == name}
        if not found:
            raise self.unknown_queue(name)
        return dict(sorted(found.items()))

    def queue_stats(self, queues: dict[str, int | None]) -> list[QueueStats]:
        """Statistics of ``queues`` (name -> priority), read in one pipeline."""
        now = self._now()
        today = time.strftime("%Y-%m-%d", time.gmtime(now))

        def fill(pipe: redis.client.Pipeline) -> None:
            for q in queues:
                self._evalsha(pipe, "queue_stats", [
                    keys.pending(q), keys.held(q), keys.active(q), keys.scheduled(q), keys.retry(q),
                    keys.archived(q), keys.completed(q), keys.paused(q), keys.processed(q), keys.failed(q),
                    keys.processed(q, today), keys.failed(q, today)], [keys.task_prefix(q)])

        stats = []
        for (q, priority), reply in zip(queues.items(), self._replies(fill)):
            counts = [int(v) for v in reply[:12]]
            since = _int(reply[12])
            if since > 1e12:
                since //= 10**9
            stats.append(QueueStats(q, priority, *counts[:7], bool(counts[7]), *counts[8:],
                                    latency_seconds=max(0, now - since) if since else 0))
        return stats

    def list_queues(self, limit: int, offset: int = 0) -> tuple[int, list[QueueStats]]:
        """One page of every known queue, by name, with its statistics; and how many there are."""
        known = sorted(self._known_queues().items())
        return len(known), self.queue_stats(dict(known[offset:offset + limit]))

    def one_queue(self, name: str) -> str:
        """The one sub-queue ``name`` stands for; a parent with several sub-queues is ambiguous."""
        queues = list(self.resolve_queues(name))
        if len(queues) > 1:
            raise ValidationError("queue: %s has sub-queues %s; name one of them" % (name, ", ".join(queues)))
        return queues[0]

    def pause(self, name: str, paused: bool) -> dict[str, int]:
        """Pause or unpause ``name`` (every sub-queue of a parent); ids moved per sub-queue."""
        queues = list(self.resolve_queues(name))
        flag = self._now() if paused else ""

        def fill(pipe: redis.client.Pipeline) -> None:
            for q in queues:
                lists = [keys.pending(q), keys.held(q)]
                self._evalsha(pipe, "move_pending", (lists if paused else lists[::-1]) + [keys.paused(q)], [flag])

        return dict(zip(queues, map(int, self._replies(fill))))

    # --- task administration -----------------------------------------------------------

    def list_tasks(self, queue: str, state: str, limit: int, offset: int) -> tuple[int, list[Task]]:
        """One page of the tasks of ``queue`` in ``state``, oldest first, and their total.

        Pending includes the ids held back while the queue is paused (held first:
        they are older and run first after unpause).
        """
        if state == "pending":
            lists = [keys.held(queue), keys.pending(queue)]
        elif state == "active":
            lists = [keys.active(queue)]
        else:
            lists = []
        pipe = self.redis.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        if not lists:
            pipe.zcard(keys.state_key(queue, state))
        sizes = pipe.execute()
        total = sum(sizes)

        pipe = self.redis.pipeline(transaction=False)
        if lists:
            start, wanted = offset, limit
            for key, size in zip(lists, sizes):
                if wanted > 0 and start < size:
                    count = min(size - start, wanted)
                    pipe.lrange(key, -(start + count), -(start + 1))  # oldest first: from the tail
                    wanted -= count
                start = max(0, start - size)
        else:
            pipe.zrange(keys.state_key(queue, state), offset, offset + limit - 1)
        ids: list[str] = []
        for chunk in pipe.execute():
            ids += [i.decode() for i in (reversed(chunk) if lists else chunk)]
        return total, self._tasks(queue, ids)

    @staticmethod
    def _read_tasks(pipe: redis.client.Pipeline, queue: str, ids: list[str]) -> None:
        for task_id in ids:
            pipe.hmget(keys.task(queue, task_id), _TASK_FIELDS)
            pipe.zscore(keys.retry(queue), task_id)
            pipe.zscore(keys.scheduled(queue), task_id)

    def _parse_tasks(self, queue: str, ids: list[str], replies: list) -> list[Task]:
        """The tasks whose hashes ``_read_tasks`` read, skipping those that are gone."""
        tasks = []
        for i, task_id in enumerate(ids):
            fields, retry_at, scheduled_at = replies[3 * i:3 * i + 3]
            task = self._task(task_id, queue, dict(zip(_TASK_FIELDS, fields)), retry_at or scheduled_at)
            if task is not None:
                tasks.append(task)
        return tasks

    def _tasks(self, queue: str, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        return self._parse_tasks(queue, ids, self._pipeline(lambda pipe: self._read_tasks(pipe, queue, ids)))

    def cancel_task(self, task_id: str) -> tuple[str, bool]:
        """Archive a task that has not started, as canceled: (queue, True).

        A running task cannot be stopped by runqy-worker; its id is published on
        ``asynq:cancel`` for asynq-native workers and (queue, False) returned.
        """
        queue = self.task_queue(task_id)
        if queue is None:
            raise NotFound("task not found: %s" % task_id)
        reply = self._script("cancel", [
            keys.task(queue, task_id), keys.pending(queue), keys.held(queue), keys.scheduled(queue),
            keys.retry(queue), keys.archived(queue), keys.active(queue)], [task_id, self._now()])
        code = int(reply[0])
        if code == -1:
            raise NotFound("task not found: %s" % task_id)
        if code == -2:
            raise Conflict("task %s is already %s" % (task_id, reply[1].decode()))
        if code == 2:
            self.redis.publish(keys.CANCEL_CHANNEL, task_id)
            return queue, False
        if int(reply[1]) > 0:
            self.redis.expire(keys.task_queue(task_id), int(reply[1]))
        return queue, True

    def delete_task(self, queue: str, task_id: str) -> None:
        """Remove every trace of a task that is not running, reverse key included."""
        code = self._script("delete", [
            keys.task(queue, task_id), keys.active(queue), keys.pending(queue), keys.held(queue),
            keys.scheduled(queue), keys.retry(queue), keys.archived(queue), keys.completed(queue)], [task_id])
        if code == -1:
            raise NotFound("task not found: %s in queue %s" % (task_id, queue))
        if code == -2:
            raise Conflict("task %s is running; it cannot be deleted" % task_id)
        if self.task_queue(task_id) == queue:
            self.redis.delete(keys.task_queue(task_id))

    def _script(self, name: str, keys_: Sequence[str], args: Sequence[Any]) -> Any:
        """One script call; its error reply raised."""
        (reply,) = self._run([(("EVALSHA", self.scripts[name].sha, len(keys_), *keys_, *args), {})])
        if isinstance(reply, Exception):
            raise reply
        return reply

    # --- workers -----------------------------------------------------------------------

    def _worker_ids(self) -> list[str]:
        """Workers with a heartbeat hash, and registry members that beat in the last 30 min."""
        ids = {m.decode() for m in self.redis.zrangebyscore(keys.WORKERS, self._now(), "+inf")}
        for key in self.redis.scan_iter(match=keys.worker("*"), count=5000, _type="hash"):
            key = key.decode()
            if not key.endswith(":logs"):
                ids.add(key[len(keys.worker("")):])
        return sorted(ids)

    def list_workers(self) -> list[Worker]:
        ids = self._worker_ids()
        pipe = self.redis.pipeline(transaction=False)
        for worker_id in ids:
            pipe.hgetall(keys.worker(worker_id))
        return [Worker.from_hash(worker_id, h, self._now()) for worker_id, h in zip(ids, pipe.execute())]

    def get_worker(self, worker_id: str, log_lines: int = 50) -> tuple[Worker, list[Any]]:
        """A worker with a heartbeat hash, or one that beat in the last 30 min, and its log lines."""
        if worker_id.endswith(":logs"):
            raise NotFound("worker not found: %s" % worker_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.worker(worker_id))
        pipe.lrange(keys.worker_logs(worker_id), -log_lines, -1)
        pipe.zscore(keys.WORKERS, worker_id)
        fields, logs, score = pipe.execute()
        if not fields and (score is None or score < self._now()):
            raise NotFound("worker not found: %s" % worker_id)
        return Worker.from_hash(worker_id, fields, self._now()), [_json_value(line) for line in logs]

    # --- config administration -------------------------------------------------------------

    def delete_config(self, name: str) -> None:
        """Forget a queue config; its tasks stay in Redis, enqueue to it is refused."""
        config = self.get_config(name)
        if config is None:
            raise NotFound("queue config not found: %s" % name)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hdel(keys.CONFIGS, name)
        for queue in sub_queues(config):
            pipe.delete(keys.queue_config(queue))
        pipe.execute()

    # --- vaults ---------------------------------------------------------------------------
    # A vault is one hash: ':meta' holds its description, 'e:<KEY>' one entry each,
    # with the value already encrypted by runqy.vault.

    def list_vaults(self) -> list[tuple[dict[str, Any], int]]:
        """Every vault's metadata with its number of entries."""
        names = sorted(n.decode() for n in self.redis.smembers(keys.VAULTS))
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hget(keys.vault(name), keys.VAULT_META)
            pipe.hlen(keys.vault(name))
        replies = pipe.execute()
        return [(json.loads(meta), size - 1) for meta, size in zip(replies[::2], replies[1::2]) if meta]

    def create_vault(self, name: str, description: str, check: str) -> dict[str, Any]:
        """Create an empty vault; ``check`` is a value sealed with the master key."""
        meta = {"name": name, "description": description, "created_at": rfc3339(self._now()), "check": check}
        if not self.redis.hsetnx(keys.vault(name), keys.VAULT_META, json.dumps(meta)):
            raise Conflict("vault already exists: %s" % name)
        self.redis.sadd(keys.VAULTS, name)
        return meta

    def get_vault_meta(self, name: str) -> dict[str, Any]:
        meta = self.redis.hget(keys.vault(name), keys.VAULT_META)
        if meta is None:
            raise NotFound("vault not found: %s" % name)
        return json.loads(meta)

    def get_vault(self, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """A vault's metadata and its entries by key (values still encrypted)."""
        fields = self.redis.hgetall(keys.vault(name))
        entries = _vault_entries(fields)
        if entries is None:
            raise NotFound("vault not found: %s" % name)
        return json.loads(fields[keys.VAULT_META.encode()]), dict(sorted(entries.items()))

    def get_vaults(self, names: Sequence[str]) -> list[dict[str, dict[str, Any]] | None]:
        """The entries of several vaults in one pipeline, in order; None for a missing vault."""
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(keys.vault(name))
        return [_vault_entries(fields) for fields in pipe.execute()]

    def delete_vault(self, name: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.vault(name))
        pipe.srem(keys.VAULTS, name)
        if not pipe.execute()[0]:
            raise NotFound("vault not found: %s" % name)

    def put_vault_entry(self, name: str, key: str, entry: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Create or replace an entry: (True when it is new, the entry as stored)."""
        entry = {**entry, "updated_at": rfc3339(self._now())}
        code = self._script("vault_put_entry", [keys.vault(name)], [keys.vault_entry_field(key), json.dumps(entry)])
        if code == -1:
            raise NotFound("vault not found: %s" % name)
        return bool(code), entry

    def delete_vault_entry(self, name: str, key: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.vault(name))
        pipe.hdel(keys.vault(name), keys.vault_entry_field(key))
        exists, removed = pipe.execute()
        if not exists:
            raise NotFound("vault not found: %s" % name)
        if not removed:
            raise NotFound("entry not found: %s in vault %s" % (key, name))
