"""Enqueue and task status: /queue/add, /queue/add-batch, /queue/{task_id}."""

import hashlib
import json
import re
from typing import Any

import falcon

from runqy import defaults, jsontext, keys, schedule, validation
from runqy.config import whole
from runqy.errors import TaskNotFound, ValidationError
from runqy.queue_names import full_queue_name, is_sub_queue, parent_of
from runqy.resources import Resource, read_json
from runqy.resources.queues import page_params, queue_param
from runqy.states import FINAL_STATES, LISTED_STATES
from runqy.store import Enqueued, Idempotency, NewTask, Store, rfc3339
from runqy.waiting import Waiters

#: Keys of an enqueue body that are never part of a flat payload.
RESERVED = frozenset(("queue", "data", "timeout", "max_retry", "process_at", "delay", "unique_for", "task_id"))
_MAX_ID_LENGTH = 128
_IDEMPOTENCY_KEY = re.compile(r"[\x20-\x7e]{1,255}")


def dump_payload(value: Any) -> bytes:
    """The payload as the compact UTF-8 JSON bytes that msg field 2 carries."""
    return jsontext.dumps(value)


def info(task: Enqueued) -> dict[str, Any]:
    """The enqueue answer's ``info``; a scheduled task's says when it is to run."""
    answer = {"id": task.id, "queue": task.queue, "type": task.queue, "state": task.state,
              "max_retry": task.max_retry, "retried": 0, "timeout": task.timeout}
    if task.process_at:
        answer["next_process_at"] = rfc3339(task.process_at)
    return answer


def idempotency(req: falcon.Request, body: Any) -> Idempotency | None:
    """The ``Idempotency-Key`` of a request: its record (per role) and the request's fingerprint."""
    key = req.get_header("Idempotency-Key")
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise ValidationError("Idempotency-Key: must be 1 to 255 printable ASCII characters")
    fingerprint = hashlib.sha256(("%s %s " % (req.method, req.path)).encode()
                                 + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return Idempotency(keys.idempotency(req.context.role, hashlib.sha256(key.encode()).hexdigest()), fingerprint)


def _options(store: Store, req: falcon.Request, body: dict) -> dict[str, Any]:
    """The enqueue options of a request, for every task it enqueues."""
    return {"max_retry": whole(body.get("max_retry")), "process_at": schedule.process_time(body, store.db.now()),
            "unique_for": body.get("unique_for"), "idempotency": idempotency(req, body)}


def _replayed(resp: falcon.Response, enqueued: list[Enqueued]) -> None:
    if enqueued[0].replayed:
        resp.set_header("Idempotent-Replayed", "true")


class Enqueue(Resource):
    """POST /queue/add (and /api/cli/tasks): one task, nested or flat body."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, "enqueue")
        payload = body["data"] if "data" in body else {k: v for k, v in body.items() if k not in RESERVED}
        task = NewTask(dump_payload(payload), whole(body.get("timeout")), body.get("task_id"))
        (enqueued,) = self._store.tasks.enqueue(full_queue_name(body["queue"]), [task],
                                                **_options(self._store, req, body))
        _replayed(resp, [enqueued])
        resp.media = {"info": info(enqueued)}


def _batch_task(index: int, job: Any, timeout: int | None) -> NewTask:
    """A wrapper ``{data, timeout?}`` or the payload itself."""
    if isinstance(job, dict) and "data" in job and set(job) <= {"data", "timeout"}:
        if "timeout" in job:
            validation.check_param("timeout", job["timeout"], "$.jobs[%d].timeout" % index)
        return NewTask(dump_payload(job["data"]), whole(job.get("timeout", timeout)))
    return NewTask(dump_payload(job), timeout)


class EnqueueBatch(Resource):
    """POST /queue/add-batch: up to 1000 tasks onto one queue, all or nothing."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_json(req, "enqueue_batch")
        tasks = [_batch_task(i, job, whole(body.get("timeout"))) for i, job in enumerate(body["jobs"])]
        enqueued = self._store.tasks.enqueue(full_queue_name(body["queue"]), tasks, **_options(self._store, req, body))
        _replayed(resp, enqueued)
        resp.media = {"enqueued": len(enqueued), "failed": 0,
                      "task_ids": [task.id for task in enqueued], "errors": []}


def wait_param(req: falcon.Request) -> int | None:
    """``?wait=``: whole seconds from 1 to 60, or ``true`` for 30 (the Go server's spelling)."""
    raw = req.get_param("wait")
    if raw is None:
        return None
    if raw.lower() == "true":
        return defaults.WAIT_TRUE
    if not (raw.isdigit() and 1 <= int(raw) <= defaults.MAX_WAIT):
        raise ValidationError("wait: %r is not a number of seconds from 1 to %d, or true"
                              % (raw[:32], defaults.MAX_WAIT))
    return int(raw)


class TaskStatus(Resource):
    """GET /queue/{task_id} and GET /queue/{task_id}/{queue_name}; with ``?wait=`` it answers
    once the task has finished, or when the time is up with the task as it is then."""

    def __init__(self, store: Store, waiters: Waiters, roles: frozenset[str]):
        super().__init__(store, roles)
        self._waiters = waiters

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str, queue_name: str | None = None) -> None:
        queue = None
        if queue_name is not None:
            queue = full_queue_name(queue_param(queue_name))
        if len(task_id) > _MAX_ID_LENGTH:
            raise TaskNotFound(task_id[:_MAX_ID_LENGTH] + "...")
        wait = wait_param(req)
        task = self._store.tasks.get(task_id, queue)
        if wait and task.state not in FINAL_STATES:
            self._waiters.wait(task.queue, task_id, wait)
            task = self._store.tasks.get(task_id, task.queue)
        resp.media = {"info": task.to_dict()}


class QueueTasks(Resource):
    """GET /api/cli/queues/{queue}/tasks?state=&limit=&offset=: one page, oldest first;
    DELETE ...?state=: every task of a state but active (of every sub-queue of a parent)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        state = req.get_param("state") or defaults.TASK_STATE
        if state not in LISTED_STATES:
            raise ValidationError("state: %r is not one of %s" % (state, ", ".join(LISTED_STATES)))
        limit, offset = page_params(req)
        full = self._store.queues.one(queue_param(queue))
        total, tasks = self._store.tasks.page(full, state, limit, offset)
        resp.media = {"queue": full, "state": state, "total": total, "limit": limit, "offset": offset,
                      "tasks": [t.to_dict() for t in tasks]}


    def on_delete(self, req: falcon.Request, resp: falcon.Response, queue: str) -> None:
        state = req.get_param("state", required=True)
        if state not in LISTED_STATES or state == "active":
            raise ValidationError("state: %r is not one of %s (running tasks cannot be deleted)"
                                  % (state, ", ".join(s for s in LISTED_STATES if s != "active")))
        deleted = self._store.tasks.delete_all(list(self._store.queues.resolve(queue_param(queue))), state)
        resp.media = {"queue": queue, "state": state, "deleted": sum(deleted.values()),
                      "sub_queues": [{"name": q, "deleted": n} for q, n in deleted.items()]}


class _OneTask(Resource):
    def _queue(self, queue: str, task_id: str) -> str:
        """The sub-queue of the task: a parent name stands for whichever of its sub-queues holds it."""
        queue = queue_param(queue)
        if not is_sub_queue(queue):
            found = self._store.tasks.queue_of(task_id)
            if found and parent_of(found) == queue:
                return found
        return full_queue_name(queue)


class QueueTask(_OneTask):
    """GET and DELETE /api/cli/queues/{queue}/tasks/{task_id}."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, queue: str, task_id: str) -> None:
        resp.media = {"task": self._store.tasks.get(task_id, self._queue(queue, task_id)).to_dict()}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, queue: str, task_id: str) -> None:
        full = self._queue(queue, task_id)
        self._store.tasks.delete(full, task_id)
        resp.media = {"id": task_id, "queue": full, "deleted": True}


class RunTask(_OneTask):
    """POST /api/cli/queues/{queue}/tasks/{task_id}/run: a scheduled, retry or archived task, now."""

    def on_post(self, req: falcon.Request, resp: falcon.Response, queue: str, task_id: str) -> None:
        full = self._queue(queue, task_id)
        was = self._store.tasks.run(full, task_id)
        resp.media = {"id": task_id, "queue": full, "state": "pending", "was": was}


class CancelTask(Resource):
    """DELETE /api/cli/tasks/{task_id}: archive as canceled, or ask a running task to stop."""

    def on_delete(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        queue, canceled = self._store.tasks.cancel(task_id)
        if canceled:
            resp.media = {"id": task_id, "queue": queue, "state": "archived", "canceled": True}
            return
        resp.status = falcon.HTTP_202
        resp.media = {"id": task_id, "queue": queue, "state": "active", "canceled": False,
                      "message": "the task is running: its id was published on asynq:cancel, but "
                                 "runqy-worker cannot interrupt a running task"}
