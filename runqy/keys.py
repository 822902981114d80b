"""Every Redis key runqy reads or writes, built in one place.

``Q`` is always a full sub-queue name (``inference.default``); the braces are
literal asynq hash tags, so all keys of one queue live in one cluster slot.

=====================================  ======  ==========================================
key                                    type    contents
=====================================  ======  ==========================================
asynq:queues                           SET     every sub-queue name that holds tasks
asynq:{Q}:pending                      LIST    task ids; LPUSH here, workers BRPOP the tail
asynq:{Q}:active                       LIST    task ids being run (worker)
asynq:{Q}:lease                        ZSET    id -> lease expiry, Unix s (worker)
asynq:{Q}:scheduled                    ZSET    id -> process time, Unix s
asynq:{Q}:retry                        ZSET    id -> next attempt, Unix s (worker)
asynq:{Q}:completed                    ZSET    id -> purge time, Unix s (worker)
asynq:{Q}:archived                     ZSET    id -> purge time, Unix s (worker, cancel)
asynq:{Q}:paused                       STRING  present while the queue is paused
asynq:{Q}:unique:<Q>:<md5>             STRING  unique lock: the id of the task holding it, with
                                               the task's unique_for as TTL (md5 of its payload)
asynq:{Q}:processed[:YYYY-MM-DD]       STRING  successful tasks (worker)
asynq:{Q}:failed[:YYYY-MM-DD]          STRING  final failures (worker)
asynq:{Q}:t:<id>                       HASH    the task: msg, state, pending_since, ...
asynq:t:<id>                           HASH    reverse lookup {queue: Q}, 30-day TTL
asynq:workers                          ZSET    worker id -> last beat + 30 min (worker)
asynq:workers:<host>:<pid>             HASH    worker heartbeat (worker)
asynq:workers:<host>:<pid>:logs        LIST    recent worker log lines, JSON (worker)
asynq:cancel                           PUBSUB  ids of active tasks to cancel
runqy:configs                          HASH    parent queue name -> queue config JSON
runqy:configs:yaml                     STRING  digest of the YAML configs last written; its
                                               absence means Redis lost them (see runqy.server)
runqy:{Q}:config                       HASH    enqueue defaults of one sub-queue
runqy:{Q}:held                         LIST    pending task ids held back while paused
runqy:housekeeper                      STRING  the lease of the one housekeeper of a deployment:
                                               its holder's id, with a TTL (runqy.housekeeper)
runqy:housekeeping                     HASH    tasks the housekeeper moved: scheduled, retry, swept
runqy:session:<sha256>                 STRING  a dashboard session, JSON, by the digest of its cookie;
                                               TTL SESSION_TTL, renewed by every use
runqy:idempotency:<role>:<sha256>      HASH    an idempotent request's fingerprint and first answer (24 h)
runqy:replicated                       STRING  written after every change when RUNQY_REDIS_WAIT_REPLICAS is
                                               set, so that WAIT covers that change (runqy.app)
runqy:vaults                           SET     vault names
runqy:vault:<name>                     HASH    ':meta' -> vault JSON, 'e:<KEY>' -> entry JSON
                                               (value AES-256-GCM encrypted)
=====================================  ======  ==========================================
"""

QUEUES = "asynq:queues"
WORKERS = "asynq:workers"
CANCEL_CHANNEL = "asynq:cancel"
CONFIGS = "runqy:configs"
CONFIGS_YAML = "runqy:configs:yaml"
HOUSEKEEPER = "runqy:housekeeper"
HOUSEKEEPING = "runqy:housekeeping"
REPLICATED = "runqy:replicated"
VAULTS = "runqy:vaults"
#: The field of a vault hash that holds the vault's metadata JSON (entries are 'e:<KEY>').
VAULT_META = ":meta"
#: The field of a reverse-lookup hash ``asynq:t:<id>`` that names the task's queue.
TASK_QUEUE_FIELD = "queue"
_WORKER_PREFIX = "asynq:workers:"
_WORKER_LOGS = ":logs"


def _q(queue: str) -> str:
    return "asynq:{%s}:" % queue


def pending(queue: str) -> str:
    return _q(queue) + "pending"


def active(queue: str) -> str:
    return _q(queue) + "active"


def lease(queue: str) -> str:
    return _q(queue) + "lease"


def scheduled(queue: str) -> str:
    return _q(queue) + "scheduled"


def retry(queue: str) -> str:
    return _q(queue) + "retry"


def completed(queue: str) -> str:
    return _q(queue) + "completed"


def archived(queue: str) -> str:
    return _q(queue) + "archived"


def paused(queue: str) -> str:
    return _q(queue) + "paused"


def processed(queue: str, day: str | None = None) -> str:
    return _q(queue) + ("processed:" + day if day else "processed")


def failed(queue: str, day: str | None = None) -> str:
    return _q(queue) + ("failed:" + day if day else "failed")


def unique(queue: str, payload_md5: str) -> str:
    """asynq's unique lock of a task of type ``queue`` (runqy's task type) with that payload."""
    return _q(queue) + "unique:" + queue + ":" + payload_md5


def task(queue: str, task_id: str) -> str:
    return _q(queue) + "t:" + task_id


def task_prefix(queue: str) -> str:
    """The prefix of every task hash key of ``queue`` (scripts append the id)."""
    return _q(queue) + "t:"


def task_queue(task_id: str) -> str:
    """The reverse-lookup hash that names the queue of ``task_id``."""
    return "asynq:t:" + task_id


def state_key(queue: str, state: str) -> str:
    """The list or sorted set that holds the tasks of ``queue`` in ``state``."""
    return _q(queue) + state


def worker(worker_id: str) -> str:
    return _WORKER_PREFIX + worker_id


def worker_logs(worker_id: str) -> str:
    return _WORKER_PREFIX + worker_id + _WORKER_LOGS


def is_worker_id(text: str) -> bool:
    """False for text that would name a worker's log list rather than a worker."""
    return not text.endswith(_WORKER_LOGS)


def worker_id_of(key: str) -> str | None:
    """The worker id of a key under ``asynq:workers:``; None for a log list."""
    worker_id = key[len(_WORKER_PREFIX):]
    return worker_id if is_worker_id(worker_id) else None


def queue_config(queue: str) -> str:
    return "runqy:{%s}:config" % queue


def held(queue: str) -> str:
    return "runqy:{%s}:held" % queue


def idempotency(role: str, key_digest: str) -> str:
    """The record of a request with an Idempotency-Key: per role, by the key's SHA-256."""
    return "runqy:idempotency:%s:%s" % (role, key_digest)


def session(id_digest: str) -> str:
    """A dashboard session, by the SHA-256 of its id: a copy of Redis holds no usable cookie."""
    return "runqy:session:" + id_digest


def vault(name: str) -> str:
    return "runqy:vault:" + name


def vault_entry_field(key: str) -> str:
    return "e:" + key
