"""One error hierarchy. ``runqy.app`` maps each class to its HTTP status once.

The bases name the HTTP status; the leaves below them name what went wrong, carry
the ids involved and write their message once, so that code raises
``TaskNotFound(task_id)`` and tests may assert the type.

Which 400: a request (its body, path or query parameters) that is invalid raises
:class:`ValidationError`; the code that checks queue configs and settings raises
:class:`ConfigError`, a :class:`ValidationError` too, whether the config came from
a file, the environment or an HTTP body.
"""

import difflib
from typing import Iterable


class RunqyError(Exception):
    """Base of every error runqy raises on purpose; carries one or more messages."""

    status = 500

    def __init__(self, *messages: str):
        super().__init__(*messages)
        self.messages = list(messages) or [self.__class__.__doc__ or "error"]


class ValidationError(RunqyError):
    """Raised when a request body, parameter or config file is invalid."""

    status = 400


class Unauthorized(RunqyError):
    """Raised when a request carries no API key, or an unknown one."""

    status = 401


class Forbidden(RunqyError):
    """Raised when a known API key is not allowed to call a route."""

    status = 403


class NotFound(RunqyError):
    """Raised when a queue, task, worker, config or vault does not exist."""

    status = 404


class Conflict(RunqyError):
    """Raised when the change clashes with what is stored (exists, wrong state)."""

    status = 409


class Unprocessable(RunqyError):
    """Raised when a well-formed request cannot be carried out as it stands."""

    status = 422


class PayloadTooLarge(RunqyError):
    """Raised when a request body is over the configured size limit."""

    status = 413


class Unavailable(RunqyError):
    """Raised when a backing service (Redis, the vault key) cannot be used."""

    status = 503


class ConfigError(ValidationError):
    """Raised when a queue config (from a file or a request) or the server's settings are invalid."""


# --- not found -------------------------------------------------------------------------------


class QueueNotFound(NotFound):
    """Raised when a queue has no config and holds no tasks; the message names the known
    queues (parents and sub-queues) closest to the name first, at most ten."""

    def __init__(self, queue: str, known: Iterable[str] = ()):
        names = set(known)
        names |= {name.partition(".")[0] for name in names}
        names -= {queue, queue.partition(".")[0]}  # known without a config: no help
        if names:
            closest = difflib.get_close_matches(queue, names, n=10, cutoff=0.0)
            more = " and %d more" % (len(names) - len(closest)) if len(names) > len(closest) else ""
            hint = "; known queues, closest first: %s%s" % (", ".join(closest), more)
        else:
            hint = "; no queue is configured yet (add one with POST /api/cli/configs or a YAML file)"
        super().__init__("queue not found: %s%s" % (queue, hint))
        self.queue = queue


class TaskNotFound(NotFound):
    """Raised when a task does not exist (in ``queue``, when one was named)."""

    def __init__(self, task_id: str, queue: str | None = None):
        if queue is None:
            super().__init__("task not found: %s" % task_id)
        else:
            super().__init__("task not found: %s in queue %s" % (task_id, queue))
        self.task_id = task_id
        self.queue = queue


class ConfigNotFound(NotFound):
    """Raised when no queue config has the name."""

    def __init__(self, name: str):
        super().__init__("queue config not found: %s" % name)
        self.name = name


class WorkerNotFound(NotFound):
    """Raised when a worker has no heartbeat hash and has not beaten lately."""

    def __init__(self, worker_id: str):
        super().__init__("worker not found: %s" % worker_id)
        self.worker_id = worker_id


class VaultNotFound(NotFound):
    """Raised when a vault does not exist."""

    def __init__(self, name: str):
        super().__init__("vault not found: %s" % name)
        self.name = name


class EntryNotFound(NotFound):
    """Raised when a vault has no entry under the key."""

    def __init__(self, vault: str, key: str):
        super().__init__("entry not found: %s in vault %s" % (key, vault))
        self.vault = vault
        self.key = key


# --- conflicts -------------------------------------------------------------------------------


class TaskExists(Conflict):
    """Raised when an enqueue names a task id that another task has."""

    def __init__(self, task_id: str):
        super().__init__("task already exists: %s" % task_id)
        self.task_id = task_id


class TaskDuplicate(Conflict):
    """Raised when a unique task's payload is locked by another task of its queue (``index``: the
    job of a batch)."""

    def __init__(self, holder: str, queue: str, index: int | None = None):
        message = "duplicate task: task %s with the same payload holds the unique lock of queue %s" % (holder, queue)
        super().__init__(message if index is None else "job %d: %s" % (index, message))
        self.holder = holder
        self.queue = queue
        self.index = index


class TaskIdRepeated(Conflict):
    """Raised when one request names the same task id twice."""

    def __init__(self) -> None:
        super().__init__("a task id repeats within one request")


class TaskRunning(Conflict):
    """Raised when a task that a worker is running would be deleted."""

    def __init__(self, task_id: str):
        super().__init__("task %s is running; it cannot be deleted" % task_id)
        self.task_id = task_id


class TaskFinished(Conflict):
    """Raised when a task that has already completed or been archived would be canceled."""

    def __init__(self, task_id: str, state: str):
        super().__init__("task %s is already %s" % (task_id, state))
        self.task_id = task_id
        self.state = state


class TaskNotRunnable(Conflict):
    """Raised when a task that is not scheduled, retry or archived would be run again."""

    def __init__(self, task_id: str, state: str):
        super().__init__("task %s is %s; only scheduled, retry and archived tasks can be run again" % (task_id, state))
        self.task_id = task_id
        self.state = state


class ConfigExists(Conflict):
    """Raised when queue configs would be created under names that exist (one message each)."""

    def __init__(self, *names: str):
        super().__init__(*("queue config already exists: %s (use ?force=true to replace it)" % name
                           for name in names))
        self.names = names


class VaultExists(Conflict):
    """Raised when a vault would be created under a name that exists."""

    def __init__(self, name: str):
        super().__init__("vault already exists: %s" % name)
        self.name = name


class IdempotencyKeyReused(Unprocessable):
    """Raised when an Idempotency-Key comes again with another request (route or body)."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key was already used with a different request; use a new key for a new "
                         "request")


# --- unavailable -----------------------------------------------------------------------------


class ConfigsLost(Unavailable):
    """Raised for a queue Redis does not know while it has lost its data (see runqy.server)."""

    def __init__(self) -> None:
        super().__init__("redis has lost its data: the queue configs are being restored; retry in a second")


class NotReplicated(Unavailable):
    """Raised when a change was made on the Redis primary but fewer replicas than asked for
    confirmed it in time (RUNQY_REDIS_WAIT_REPLICAS)."""

    def __init__(self, confirmed: int, wanted: int, timeout: float):
        super().__init__("redis replicas: %d of %d confirmed the change within %g s, so a failover now could lose it; "
                         "it was made: a retry with the same task_id or Idempotency-Key will not duplicate it"
                         % (confirmed, wanted, timeout))


class MaybeWritten(Unavailable):
    """Raised when Redis did not answer a write that it may have made."""

    def __init__(self, cause: BaseException):
        super().__init__("redis unavailable: %s; the task may have been written: retry with the same task_id "
                         "to avoid a duplicate" % cause)
