"""The only code that talks to Redis: one object per noun, no HTTP here.

``Store`` gathers them: ``store.tasks``, ``store.queues``, ``store.configs``,
``store.workers``, ``store.vaults``, ``store.housekeeping``, ``store.sessions``, each
in the module of its name. Keys come from :mod:`runqy.keys`; multi-key writes are the
Lua scripts of ``runqy/lua``, loaded once and called by SHA (see
:mod:`runqy.store.plumbing`), so that every hot path is one round trip.
"""

import time
from typing import Any, Callable

import redis

from runqy import keys
from runqy.store.configs import Configs
from runqy.store.connection import connect, primary_address
from runqy.store.housekeeping import Housekeeping
from runqy.store.plumbing import Plumbing
from runqy.store.queues import Queues
from runqy.store.records import Enqueued, Idempotency, NewTask, QueueStats, Task, Worker, rfc3339, uuid4
from runqy.store.sessions import Sessions
from runqy.store.tasks import Tasks
from runqy.store.vaults import Vaults
from runqy.store.workers import Workers

__all__ = ["Store", "connect", "Enqueued", "Idempotency", "NewTask", "QueueStats", "Task", "Worker", "rfc3339", "uuid4"]


class Store:
    """Redis, by noun. ``clock`` and ``new_id`` are injected so tests can pin time and ids."""

    def __init__(self, client: redis.Redis, *, clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = uuid4):
        self.db = Plumbing(client, clock=clock, new_id=new_id)
        self.configs = Configs(self.db)
        self.tasks = Tasks(self.db, self.configs)
        self.queues = Queues(self.db, self.configs)
        self.workers = Workers(self.db)
        self.vaults = Vaults(self.db)
        self.housekeeping = Housekeeping(self.db)
        self.sessions = Sessions(self.db)

    def ping(self) -> bool:
        return bool(self.db.client.ping())

    def replicas_confirming(self, replicas: int, timeout: float) -> int:
        """How many replicas have every write made so far, waiting up to ``timeout`` seconds for
        ``replicas`` of them. WAIT counts the writes of the connection it is sent on, which may
        not be the one that made them: a write sent just before it on that connection comes later
        in the replication stream than all of them, so a replica that has it has them all."""
        def fill(pipe: redis.client.Pipeline) -> None:
            pipe.set(keys.REPLICATED, self.db.now())
            pipe.wait(replicas, int(timeout * 1000))

        return int(self.db.replies(fill)[1])

    def primary_address(self) -> str:
        return primary_address(self.db.client)

    def redis_info(self) -> dict[str, Any]:
        """What the dashboard shows of Redis: version, mode, memory, clients, uptime."""
        info = self.db.client.info()
        return {"version": info.get("redis_version"), "mode": info.get("redis_mode"),
                "used_memory": info.get("used_memory"), "used_memory_human": info.get("used_memory_human"),
                "maxmemory": info.get("maxmemory", 0), "connected_clients": info.get("connected_clients"),
                "uptime_seconds": info.get("uptime_in_seconds")}
