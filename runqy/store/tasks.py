"""Tasks: enqueue (the hot path), read, list, cancel and delete, on the asynq layout
(docs/worker-protocol.md §3)."""

import hashlib
import json
from collections import OrderedDict
from typing import Any, Callable, Sequence

import redis

from runqy import defaults, errors, keys, protobuf
from runqy.store.configs import Configs
from runqy.store.plumbing import Plumbing
from runqy.store.records import TASK_FIELDS, Enqueued, Idempotency, NewTask, Task


class Tasks:
    def __init__(self, db: Plumbing, configs: Configs):
        self._db = db
        self._configs = configs
        self._queue_of: OrderedDict[str, str] = OrderedDict()  # task id -> queue, see get

    def enqueue(self, queue: str, tasks: Sequence[NewTask], max_retry: int | None = None, *,
                process_at: int | None = None, unique_for: int | None = None,
                idempotency: Idempotency | None = None) -> list[Enqueued]:
        """Write ``tasks`` onto ``queue`` (a full sub-queue name) with one call of the enqueue script.

        The script writes every reverse key and task hash and pushes the ids (or, with
        ``process_at``, a Unix time later than now, puts them in the scheduled set), or
        nothing. With ``unique_for`` each task takes asynq's unique lock of its payload for
        that many seconds, and a task whose lock is held makes the whole call fail. With
        ``idempotency`` the same call records what it wrote; a repeat writes nothing and
        answers the tasks of the first (``replayed``), and the same key with another request
        is refused. When
        Redis does not answer, the tasks may have been written: the error says to retry
        with the same ``task_id``, which then finds the task (409) or writes it.
        """
        ids = [t.task_id or self._db.new_id() for t in tasks]
        if len(set(ids)) != len(ids):
            raise errors.TaskIdRepeated()
        script_keys = [keys.queue_config(queue), keys.pending(queue), keys.held(queue), keys.paused(queue),
                       keys.QUEUES, keys.scheduled(queue)]
        script_keys += [keys.task(queue, task_id) for task_id in ids]
        script_keys += [keys.task_queue(task_id) for task_id in ids]
        if unique_for:
            script_keys += [keys.unique(queue, hashlib.md5(t.payload).hexdigest()) for t in tasks]
        if idempotency:
            script_keys.append(idempotency.key)
        args: list[Any] = [self._db.now(), "" if max_retry is None else max_retry, queue, defaults.TASK_QUEUE_TTL,
                           keys.TASK_QUEUE_FIELD, process_at or "", unique_for or "",
                           idempotency.fingerprint if idempotency else "", defaults.IDEMPOTENCY_TTL]
        head = protobuf.head_encoder(queue, queue)
        for task_id, task in zip(ids, tasks):
            args += [task_id, head(task.payload, task_id),
                     "" if task.timeout is None else task.timeout]
        def job(reply: list) -> int | None:
            """The index of the job a refusal names, in a batch."""
            return int(reply[1]) - 1 if len(ids) > 1 else None

        try:
            reply = self._db.script("enqueue", script_keys, args, {
                -1: lambda _: self._configs.unknown_queue(queue),
                -2: lambda reply: errors.TaskExists(ids[int(reply[1]) - 1]),
                -3: lambda reply: errors.TaskDuplicate(reply[2].decode(), queue, job(reply)),
                -4: lambda _: errors.IdempotencyKeyReused()})
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise errors.MaybeWritten(exc) from None
        replayed = reply[0] == 2
        if replayed:  # the first call's answer: its ids, and what the queue's config said then
            held, resolved_retry, default_timeout, ids, process_at = json.loads(reply[1])
            process_at = process_at or None  # a delay counts from the first call, not from now
        else:
            held, resolved_retry, default_timeout = reply[1:4]
        self._remember(dict.fromkeys(ids, queue))
        state = "scheduled" if process_at else "pending"
        return [Enqueued(task_id, queue, state, int(resolved_retry),
                         int(default_timeout) if task.timeout is None else task.timeout,
                         held == 1 and not process_at, process_at, replayed)
                for task_id, task in zip(ids, tasks)]

    def queue_of(self, task_id: str) -> str | None:
        """The queue the reverse key of ``task_id`` names."""
        (raw,) = self._db.replies(lambda pipe: pipe.hget(keys.task_queue(task_id), keys.TASK_QUEUE_FIELD))
        return raw.decode() if raw else None

    def get(self, task_id: str, queue: str | None = None) -> Task:
        """The task ``task_id``; its queue comes from the reverse key unless given.

        A task's queue never changes, so this process remembers it: the reverse key
        and the task in the remembered queue are then read in one round trip, and
        the task is used only when the reverse key still names that queue.
        """
        if queue is None:
            remembered = self._queue_of.get(task_id)
            if remembered:
                def fill(pipe: redis.client.Pipeline) -> None:
                    pipe.hget(keys.task_queue(task_id), keys.TASK_QUEUE_FIELD)
                    _queue_reads(pipe, remembered, [task_id])

                replies = self._db.pipeline(fill)
                queue = replies[0].decode() if replies[0] else None
                found = _tasks_from(remembered, [task_id], replies[1:]) if queue == remembered else []
                if found:
                    return found[0]
            else:
                queue = self.queue_of(task_id)
            if queue is None:
                raise errors.TaskNotFound(task_id)
            self._remember({task_id: queue})
        found = self._fetch(queue, [task_id])
        if not found:
            raise errors.TaskNotFound(task_id, queue)
        return found[0]

    def _remember(self, queues_of: dict[str, str]) -> None:
        """Remember the newest tasks' queues, forgetting the oldest."""
        remembered = self._queue_of
        remembered.update(queues_of)
        for _ in range(len(remembered) - defaults.REMEMBERED_TASKS):
            remembered.popitem(last=False)

    def page(self, queue: str, state: str, limit: int, offset: int) -> tuple[int, list[Task]]:
        """One page of the tasks of ``queue`` in ``state``, oldest first, and their total.

        Pending includes the ids held back while the queue is paused (held first:
        they are older and run first after unpause); ``held`` is those alone.
        """
        if state == "pending":
            lists = [keys.held(queue), keys.pending(queue)]
        elif state == "held":
            lists = [keys.held(queue)]
        elif state == "active":
            lists = [keys.active(queue)]
        else:
            lists = []
        client = self._db.client
        pipe = client.pipeline(transaction=False)
        for key in lists:
            pipe.llen(key)
        if not lists:
            pipe.zcard(keys.state_key(queue, state))
        sizes = pipe.execute()
        total = sum(sizes)

        pipe = client.pipeline(transaction=False)
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
        return total, self._fetch(queue, ids)

    def _fetch(self, queue: str, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        return _tasks_from(queue, ids, self._db.pipeline(lambda pipe: _queue_reads(pipe, queue, ids)))

    def cancel(self, task_id: str) -> tuple[str, bool]:
        """Archive a task that has not started, as canceled: (queue, True).

        A running task cannot be stopped by runqy-worker; its id is published on
        ``asynq:cancel`` for asynq-native workers and (queue, False) returned.
        """
        queue = self.queue_of(task_id)
        if queue is None:
            raise errors.TaskNotFound(task_id)
        reply = self._db.script("cancel", [
            keys.task(queue, task_id), keys.pending(queue), keys.held(queue), keys.scheduled(queue),
            keys.retry(queue), keys.archived(queue), keys.active(queue)], [task_id, self._db.now()], {
            -1: lambda _: errors.TaskNotFound(task_id),
            -2: lambda reply: errors.TaskFinished(task_id, reply[1].decode())})
        if reply[0] == 2:
            self._db.client.publish(keys.CANCEL_CHANNEL, task_id)
            return queue, False
        if int(reply[1]) > 0:
            self._db.client.expire(keys.task_queue(task_id), int(reply[1]))
        return queue, True

    def delete(self, queue: str, task_id: str) -> None:
        """Remove every trace of a task that is not running, reverse key included."""
        self._db.script("delete", [
            keys.task(queue, task_id), keys.active(queue), keys.pending(queue), keys.held(queue),
            keys.scheduled(queue), keys.retry(queue), keys.archived(queue), keys.completed(queue)], [task_id], {
            -1: lambda _: errors.TaskNotFound(task_id, queue),
            -2: lambda _: errors.TaskRunning(task_id)})
        if self.queue_of(task_id) == queue:
            self._db.client.delete(keys.task_queue(task_id))

    def run(self, queue: str, task_id: str) -> str:
        """Run a scheduled, retry or archived task again now (held while the queue is paused);
        the state it was in."""
        reply = self._db.script("run_task", [
            keys.task(queue, task_id), keys.scheduled(queue), keys.retry(queue), keys.archived(queue),
            keys.pending(queue), keys.held(queue), keys.paused(queue)], [task_id, self._db.now()], {
            -1: lambda _: errors.TaskNotFound(task_id, queue),
            -2: lambda reply: errors.TaskNotRunnable(task_id, reply[1].decode())})
        self._db.client.expire(keys.task_queue(task_id), defaults.TASK_QUEUE_TTL)
        return reply[1].decode()

    def run_all(self, queues: Sequence[str], state: str, chunk: int = defaults.RUN_AGAIN_CHUNK) -> dict[str, int]:
        """Run every task of ``state`` (scheduled, retry or archived) of ``queues`` again now, in
        chunks; how many moved per queue."""
        def run(queue: str) -> int:
            ids = self._db.script("run_state", [
                keys.state_key(queue, state), keys.pending(queue), keys.held(queue), keys.paused(queue)],
                [self._db.now(), keys.task_prefix(queue), chunk])
            self._reverse_keys(ids, lambda pipe, key: pipe.expire(key, defaults.TASK_QUEUE_TTL))
            return len(ids)

        return {queue: _repeat(lambda: run(queue), chunk) for queue in queues}

    def delete_all(self, queues: Sequence[str], state: str, chunk: int = defaults.RUN_AGAIN_CHUNK) -> dict[str, int]:
        """Delete every task of ``state`` (any but active; pending includes held, held is those alone)
        of ``queues``, in chunks; how many went per queue."""
        def delete(queue: str, key: str) -> int:
            ids = self._db.script("delete_state", [key], [keys.task_prefix(queue), chunk])
            self._reverse_keys(ids, lambda pipe, key: pipe.delete(key))
            return len(ids)

        def lists(queue: str) -> list[str]:
            if state == "pending":
                return [keys.held(queue), keys.pending(queue)]
            return [keys.held(queue)] if state == "held" else [keys.state_key(queue, state)]

        return {queue: sum(_repeat(lambda: delete(queue, key), chunk) for key in lists(queue)) for queue in queues}

    def _reverse_keys(self, ids: list[bytes], command: Callable[[redis.client.Pipeline, str], Any]) -> None:
        """``command`` on the reverse key of each of ``ids``, in one pipeline."""
        if ids:
            pipe = self._db.client.pipeline(transaction=False)
            for task_id in ids:
                command(pipe, keys.task_queue(task_id.decode()))
            pipe.execute()

    def finished(self, task_keys: Sequence[str]) -> list[str]:
        """Those of the task hash keys whose task has completed, been archived or gone."""
        done = self._db.script("finished", task_keys, [])
        return [task_keys[i - 1] for i in done]


def _repeat(call: Callable[[], int], chunk: int) -> int:
    """``call()`` until it handles fewer than ``chunk`` tasks; how many in all."""
    total = 0
    while True:
        handled = call()
        total += handled
        if handled < chunk:
            return total


def _queue_reads(pipe: redis.client.Pipeline, queue: str, ids: list[str]) -> None:
    """Queue the reads of tasks ``ids``: hash fields, and the retry or process time."""
    for task_id in ids:
        pipe.hmget(keys.task(queue, task_id), TASK_FIELDS)
        pipe.zscore(keys.retry(queue), task_id)
        pipe.zscore(keys.scheduled(queue), task_id)


def _tasks_from(queue: str, ids: list[str], replies: list) -> list[Task]:
    """The tasks whose hashes :func:`_queue_reads` read, skipping those that are gone."""
    tasks = []
    for i, task_id in enumerate(ids):
        fields, retry_at, scheduled_at = replies[3 * i:3 * i + 3]
        task = Task.from_hash(task_id, queue, dict(zip(TASK_FIELDS, fields)), retry_at or scheduled_at)
        if task is not None:
            tasks.append(task)
    return tasks
