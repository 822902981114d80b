"""A simulated runqy-worker that speaks the real protocol, for end-to-end and store tests.

It does what the Go ``runqy-worker`` does (docs/worker-protocol.md §1.3, §2.7-§2.11),
step by step and with the same Redis commands, so that a test can run the whole
path HTTP enqueue -> Redis -> worker -> Redis -> HTTP status without Go, or leave a
task active, completed, retrying or archived exactly as the worker would:

* registration is a real ``POST /worker/register`` (over HTTP, or through falcon's
  TestClient); the Redis address, the sub-queues and ``redis_storage`` come from its
  answer, as for the real worker;
* every state transition is one Lua script on one queue's ``{Q}`` hash slot;
* ``handler(payload)`` stands in for the Python child process: its return value
  is the child's ``result``; an exception is the child's ``error``
  (``Retryable`` = ``"retry": true``, anything else = the SDK's ``"retry": false``).

Differences from the real worker, each on purpose: one concurrency slot; no
heartbeat, lease renewal, lease recoverer or janitor; active timeouts are not
enforced; the poll order of sub-queues is by priority (the real worker's order is
random per start, §2.7); and the forwarder runs on every loop and can be handed a
"now" in the future so that a test need not wait out a retry delay.
"""

import json
import logging
import queue as queue_module
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable

import redis
import requests

from runqy import keys, protobuf

logger = logging.getLogger(__name__)

#: Lease length set at activation (the worker's default RUNQY_LEASE_DURATION, 2 min).
LEASE_SECONDS = 120
#: Fallbacks for absent lifecycle fields (the worker's ttl_completed / ttl_archived defaults).
TTL_COMPLETED, TTL_ARCHIVED = 24 * 3600, 72 * 3600
#: Score used instead of now + ttl when a ttl is 0 ("keep forever").
HUNDRED_YEARS = 100 * 365 * 24 * 3600


class Retryable(Exception):
    """Raised by a handler to answer ``{"error": E, "retry": true}``."""


def retry_delay(n: int) -> int:
    """The worker's delay before attempt ``n + 1``: n**4 x 10 s, capped at 24 h (§2.9)."""
    return min(n ** 4 * 10, 24 * 3600)


def utc_day(now: int) -> str:
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d")


# --- the worker's Lua scripts (§2.7, §2.9, §2.11); "now" always comes in as ARGV --------

# KEYS: 1 active, 2 lease, 3 task hash. ARGV: 1 id, 2 lease expiry.
ACTIVATE = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'active')
redis.call('HDEL', KEYS[3], 'pending_since')
return 1
"""

# KEYS: 1 active, 2 lease, 3 completed, 4 task hash. ARGV: 1 id, 2 now, 3 purge score, 4 ttl (0 = none).
COMPLETE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], 'state', 'completed', 'completed_at', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 1
"""

# KEYS: 1 active, 2 lease, 3 task hash. ARGV: 1 id. (redis_storage false: success and final failure)
DELETE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return 1
"""

# KEYS: 1 active, 2 lease, 3 retry, 4 task hash. ARGV: 1 id, 2 now, 3 next attempt.
RETRY = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], 'retried', 1)
redis.call('HSET', KEYS[4], 'state', 'retry', 'last_failed_at', ARGV[2])
return 1
"""

# KEYS: 1 active, 2 lease, 3 archived, 4 task hash.
# ARGV: 1 id, 2 now, 3 purge score, 4 ttl (0 = none), 5 error_msg.
ARCHIVE = """
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], 'state', 'archived', 'error_msg', ARGV[5], 'last_failed_at', ARGV[2])
if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[4], ARGV[4]) end
return 1
"""

# KEYS: 1 retry, 2 pending, 3 task hash. ARGV: 1 id, 2 now. Returns 1 when this call moved the id.
FORWARD = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'state', 'pending', 'pending_since', ARGV[2])
return 1
"""


def _int(raw: Any, fallback: int) -> int:
    """A lifecycle field: absent or not an integer -> the worker's fallback (§2.3)."""
    try:
        return int(raw)
    except (TypeError, ValueError):
        return fallback


def write_success(client: Any, scripts: dict[str, Any], queue: str, task_id: str, fields: dict, result: Any,
                  now: int) -> None:
    """The writes of a success with redis_storage on (§2.9), after activation.

    ``client`` is a connection or a pipeline (tests/bench seeds completed tasks with this);
    ``scripts`` holds the registered "complete" script; ``fields`` the task hash as read at dequeue.
    """
    task_key = keys.task(queue, task_id)
    client.hset(task_key, "result", json.dumps(result))  # the child's JSON text, even "null"
    # best effort, not atomic: append field 13; repeated fields are fine, the last one wins
    client.hset(task_key, "msg", (fields.get(b"msg") or b"") + protobuf.int_field(protobuf.COMPLETED_AT, now))
    ttl = _int(fields.get(b"ttl_completed"), TTL_COMPLETED)
    scripts["complete"](keys=[keys.active(queue), keys.lease(queue), keys.completed(queue), task_key],
                        args=[task_id, now, now + (ttl or HUNDRED_YEARS), ttl], client=client)
    if ttl > 0:
        client.expire(keys.task_queue(task_id), ttl)


def register(server_url: str, api_key: str, queue: str) -> dict[str, Any]:
    """One ``POST /worker/register`` over HTTP; anything but exactly 200 fails (§1.5)."""
    body = {"queue": queue, "hostname": socket.gethostname() or "unknown", "os": "linux", "version": "dev"}
    answer = requests.post(server_url + "/worker/register", json=body, timeout=30,
                           headers={"Authorization": "Bearer " + api_key})
    if answer.status_code != 200:
        raise RuntimeError("registration failed: HTTP %d %s" % (answer.status_code, answer.text))
    return answer.json()


def check_registration(config: dict[str, Any]) -> dict[str, Any]:
    """The register answer, when every field the worker needs is there (§1.5)."""
    for path in (("redis", "addr"), ("queue", "name"), ("deployment", "git_url"),
                 ("deployment", "branch"), ("deployment", "startup_cmd")):
        if not config.get(path[0], {}).get(path[1]):
            raise RuntimeError("invalid bootstrap response: %s.%s is empty" % path)
    return config


class StdioChild:
    """A task repository's Python process, run as runqy-worker runs it in long-running mode
    (docs/worker-protocol.md §4): started with ``command`` in ``cwd``, ready once it prints
    ``{"status": "ready"}``, then one JSON task line on stdin per task and one JSON answer
    line on stdout. Use it as a :class:`SimWorker` handler: the answer's ``result`` is
    returned, its ``error`` raised (as :class:`Retryable` when ``retry`` is true).
    """

    def __init__(self, command: list[str], cwd: str, env: dict[str, str] | None = None, timeout: float = 30):
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        self._timeout = timeout
        self._count = 0
        self._lines: queue_module.Queue[str | None] = queue_module.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        status = self._read(lambda message: "status" in message)
        if status["status"] != "ready":
            raise RuntimeError("the child did not start: %s" % status)

    def _pump(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read(self, wanted: Callable[[dict], bool]) -> dict:
        """The next stdout line that is a JSON object ``wanted`` accepts; other lines are skipped."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue_module.Empty:
                raise TimeoutError("the child did not answer in %s s" % self._timeout) from None
            if line is None:
                raise RuntimeError("the child exited (code %s)" % self.process.wait(5))
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(message, dict) and wanted(message):
                return message

    def __call__(self, payload: Any, queue: str = "", max_retry: int = 0) -> Any:
        self._count += 1
        task_id = "line-%d" % self._count  # the handler is not told the task's own id
        self.process.stdin.write(json.dumps({"task_id": task_id, "type": queue, "payload": payload,
                                             "retry_count": 0, "max_retry": max_retry, "queue": queue}) + "\n")
        self.process.stdin.flush()
        answer = self._read(lambda message: message.get("task_id") == task_id)
        if answer.get("error"):
            raise (Retryable if answer.get("retry") else RuntimeError)(answer["error"])
        return answer.get("result")

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


class SimWorker:
    """One dequeue/execute loop over the sub-queues of one registered queue.

    ``registration`` is the answer of ``POST /worker/register`` (:func:`register` makes the
    call over HTTP; a test that holds a falcon TestClient may make it itself).
    """

    def __init__(self, registration: dict[str, Any], handler: Callable[[Any], Any], *,
                 clock: Callable[[], float] = time.time, poll_timeout: float = 0.1):
        self.handler, self.clock, self.poll_timeout = handler, clock, poll_timeout
        self.errors: list[BaseException] = []  # unexpected errors of the loop, for tests to assert on
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._taken: dict[str, tuple[str, dict, protobuf.TaskMessage, int]] = {}  # see take()
        self.registration = check_registration(registration)
        self.queue = registration["queue"]["name"]
        redis_cfg = self.registration["redis"]
        host, _, port = redis_cfg["addr"].rpartition(":")
        self.redis = redis.Redis(host=host, port=int(port), password=redis_cfg.get("password") or None,
                                 db=redis_cfg.get("db") or 0, ssl=bool(redis_cfg.get("use_tls")),
                                 socket_timeout=5 + poll_timeout)
        self.redis_storage = bool(self.registration["deployment"].get("redis_storage"))
        self.poll_keys = self.poll_list(self.registration)
        self.scripts = {name: self.redis.register_script(src) for name, src in (
            ("activate", ACTIVATE), ("complete", COMPLETE), ("delete", DELETE), ("retry", RETRY),
            ("archive", ARCHIVE), ("forward", FORWARD))}

    # --- §1: the poll list -----------------------------------------------------------

    @staticmethod
    def poll_list(config: dict[str, Any]) -> list[str]:
        """The BRPOP keys: each sub-queue's pending list repeated ``priority`` times (§2.7).

        No ``sub_queues`` -> ``<parent>.default`` at ``queue.priority``; priority < 1 is
        never polled. Sorted by priority here; the real worker's order is random.
        """
        subs = config.get("sub_queues") or [
            {"name": config["queue"]["name"].partition(".")[0] + ".default",
             "priority": config["queue"].get("priority", 0)}]
        subs = sorted(subs, key=lambda s: -s["priority"])
        return [keys.pending(s["name"]) for s in subs for _ in range(max(s["priority"], 0))]

    # --- §2.7: dequeue and activation ------------------------------------------------

    def run_once(self) -> str | None:
        """Take one task and run it to its next state; the task id, or None if none came."""
        task_id = self.take()
        if task_id in self._taken:
            self.finish(task_id)
        return task_id

    def take(self) -> str | None:
        """Dequeue one task and activate it: it is then active, with a lease, until
        :meth:`finish` runs it; the task id, or None if none came. A task without a hash
        or with a malformed msg is dropped (its id is still answered)."""
        popped = self.redis.brpop(self.poll_keys, timeout=self.poll_timeout)
        if popped is None:
            return None
        key, task_id = popped[0].decode(), popped[1].decode()
        queue = key.removeprefix("asynq:").removesuffix(":pending").strip("{}")
        task_key = keys.task(queue, task_id)
        fields = self.redis.hgetall(task_key)
        if not fields:
            logger.warning("task %s has no hash: dropped", task_id)
            return task_id
        try:
            msg = protobuf.decode(fields.get(b"msg", b""))
        except protobuf.DecodeError:
            logger.warning("task %s has a malformed msg: dropped", task_id)
            return task_id
        now = int(self.clock())
        lists = [keys.active(queue), keys.lease(queue)]
        try:
            self.scripts["activate"](keys=[*lists, task_key], args=[task_id, now + LEASE_SECONDS])
        except redis.exceptions.RedisError:
            self.redis.rpush(key, task_id)  # back to the front of pending
            raise
        self._taken[task_id] = (queue, fields, msg, now)
        return task_id

    def finish(self, task_id: str) -> None:
        """Run a task :meth:`take` activated, and write how it ended (§2.9); one that waited
        longer than its ``pending_timeout`` is archived instead."""
        queue, fields, msg, now = self._taken.pop(task_id)
        retried = max(msg.retried, _int(fields.get(b"retried"), 0))
        pending_timeout = _int(fields.get(b"pending_timeout"), 0)
        pending_since = _int(fields.get(b"pending_since"), 0)
        if pending_timeout > 0 and pending_since > 0 and now - pending_since > pending_timeout:
            self._archive(queue, task_id, fields, "pending timeout: waited %ds before pickup" % (now - pending_since))
            return
        try:
            payload = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            payload = None  # §4.2: payload bytes that are not JSON reach Python as null
        try:
            result = self.handler(payload)
        except Exception as exc:  # noqa: BLE001 - the child's error answer
            self._fail(queue, task_id, fields, msg, retried, exc)
        else:
            self._succeed(queue, task_id, fields, msg, result)

    # --- §2.9: finishing --------------------------------------------------------------

    def _succeed(self, queue: str, task_id: str, fields: dict, msg: protobuf.TaskMessage, result: Any) -> None:
        now = int(self.clock())
        task_key = keys.task(queue, task_id)
        lists = [keys.active(queue), keys.lease(queue)]
        if not self.redis_storage:
            self.scripts["delete"](keys=[*lists, task_key], args=[task_id])
        else:
            write_success(self.redis, self.scripts, queue, task_id, fields, result, now)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.processed(queue)).incr(keys.processed(queue, utc_day(now))).execute()

    def _fail(self, queue: str, task_id: str, fields: dict, msg: protobuf.TaskMessage, retried: int,
              exc: Exception) -> None:
        # §2.9 as observed: retry:false is retried like retry:true until max retry is reached
        error = "%s (will retry)" % exc if isinstance(exc, Retryable) else "permanent failure: %s" % exc
        if retried >= msg.retry:
            self._archive(queue, task_id, fields, error)
            return
        now = int(self.clock())
        task_key = keys.task(queue, task_id)
        # best-effort rewrite: fields 1-6 only, in order, zero/empty left out; 7-14 are lost
        rewritten = b"".join(protobuf.length_delimited(field, value) for field, value in (
            (protobuf.TYPE, msg.type.encode()), (protobuf.PAYLOAD, msg.payload),
            (protobuf.ID, msg.id.encode()), (protobuf.QUEUE, msg.queue.encode())) if value)
        rewritten += protobuf.int_field(protobuf.RETRY, msg.retry) + protobuf.int_field(protobuf.RETRIED, retried + 1)
        self.redis.hset(task_key, "msg", rewritten)
        self.scripts["retry"](keys=[keys.active(queue), keys.lease(queue), keys.retry(queue), task_key],
                              args=[task_id, now, now + retry_delay(retried + 1)])

    def _archive(self, queue: str, task_id: str, fields: dict, error: str) -> None:
        now = int(self.clock())
        task_key = keys.task(queue, task_id)
        lists = [keys.active(queue), keys.lease(queue)]
        if not self.redis_storage:
            self.scripts["delete"](keys=[*lists, task_key], args=[task_id])
        else:
            ttl = _int(fields.get(b"ttl_archived"), TTL_ARCHIVED)
            self.scripts["archive"](keys=[*lists, keys.archived(queue), task_key],
                                    args=[task_id, now, now + (ttl or HUNDRED_YEARS), ttl, error])
            if ttl > 0:
                self.redis.expire(keys.task_queue(task_id), ttl)
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(keys.failed(queue)).incr(keys.failed(queue, utc_day(now))).execute()

    # --- §2.11: the retry forwarder ------------------------------------------------------

    def forward(self, now: float | None = None) -> int:
        """Move every retry due at ``now`` (default: the clock) to pending; how many moved.

        A ``now`` in the future fast-forwards retry delays; ``pending_since`` is still
        stamped with the clock's time, when the task really became pending again.
        """
        now = int(self.clock() if now is None else now)
        moved = 0
        for queue in dict.fromkeys(k.removeprefix("asynq:").removesuffix(":pending").strip("{}")
                                   for k in self.poll_keys):
            for task_id in self.redis.zrangebyscore(keys.retry(queue), "-inf", now):
                moved += self.scripts["forward"](
                    keys=[keys.retry(queue), keys.pending(queue), keys.task(queue, task_id.decode())],
                    args=[task_id, int(self.clock())])
        return moved

    # --- running in the background ---------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.forward()
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - kept for the test to see, the loop goes on
                logger.exception("simulated worker loop failed")
                self.errors.append(exc)
                self._stop.wait(0.1)

    def start(self) -> "SimWorker":
        self._thread = threading.Thread(target=self._loop, name="sim-worker-" + self.queue, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.redis.close()
