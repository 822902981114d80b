"""Queues: which exist, their statistics, pausing (docs/product.md §5)."""

import time

import redis

from runqy import keys
from runqy.errors import ValidationError
from runqy.queue_names import is_sub_queue, parent_of
from runqy.store.configs import Configs
from runqy.store.plumbing import Plumbing
from runqy.store.records import QueueStats, to_int


class Queues:
    def __init__(self, db: Plumbing, configs: Configs):
        self._db = db
        self._configs = configs

    def resolve(self, name: str) -> dict[str, int | None]:
        """The sub-queues ``name`` stands for, with their priorities: itself when a full
        sub-queue name, else all of its parent's."""
        known = self._configs.known_queues()
        if is_sub_queue(name):
            found = {name: known[name]} if name in known else {}
        else:
            found = {q: p for q, p in known.items() if parent_of(q) == name}
        if not found:
            raise self._configs.unknown_queue(name)
        return dict(sorted(found.items()))

    def one(self, name: str) -> str:
        """The one sub-queue ``name`` stands for; a parent with several sub-queues is ambiguous."""
        queues = list(self.resolve(name))
        if len(queues) > 1:
            raise ValidationError("queue: %s has sub-queues %s; name one of them" % (name, ", ".join(queues)))
        return queues[0]

    def stats(self, queues: dict[str, int | None]) -> list[QueueStats]:
        """Statistics of ``queues`` (name -> priority), read in one pipeline."""
        now = self._db.now()
        today = time.strftime("%Y-%m-%d", time.gmtime(now))

        def fill(pipe: redis.client.Pipeline) -> None:
            for q in queues:
                self._db.queue_script(pipe, "queue_stats", [
                    keys.pending(q), keys.held(q), keys.active(q), keys.scheduled(q), keys.retry(q),
                    keys.archived(q), keys.completed(q), keys.paused(q), keys.processed(q), keys.failed(q),
                    keys.processed(q, today), keys.failed(q, today)], [keys.task_prefix(q)])

        stats = []
        for (q, priority), reply in zip(queues.items(), self._db.replies(fill)):
            counts = [int(v) for v in reply[:12]]
            since = to_int(reply[12])
            if since > 1e12:
                since //= 10**9
            # a config gives each of its sub-queues a priority; a queue only asynq:queues names has none
            stats.append(QueueStats(q, priority, *counts[:7], bool(counts[7]), *counts[8:],
                                    latency_seconds=max(0, now - since) if since else 0,
                                    configured=priority is not None))
        return stats

    def page(self, limit: int, offset: int = 0) -> tuple[int, list[QueueStats]]:
        """One page of every known queue, by name, with its statistics; and how many there are."""
        known = sorted(self._configs.known_queues().items())
        return len(known), self.stats(dict(known[offset:offset + limit]))

    def history(self, days: int) -> list[dict[str, int | str]]:
        """Tasks processed and failed per UTC day over every known queue, the last ``days`` days
        (today included), oldest first: the daily counters the workers keep."""
        now = self._db.now()
        dates = [time.strftime("%Y-%m-%d", time.gmtime(now - 86400 * back)) for back in range(days - 1, -1, -1)]
        queues = list(self._configs.known_queues())
        counters = [key(q, day) for day in dates for key in (keys.processed, keys.failed) for q in queues]
        values = iter(self._db.client.mget(counters) if counters else [])
        history = []
        for day in dates:
            processed = sum(to_int(next(values)) for _ in queues)
            history.append({"date": day, "processed": processed, "failed": sum(to_int(next(values)) for _ in queues)})
        return history

    def pause(self, name: str, paused: bool) -> dict[str, int]:
        """Pause or unpause ``name`` (every sub-queue of a parent); ids moved per sub-queue."""
        queues = list(self.resolve(name))
        flag = self._db.now() if paused else ""

        def fill(pipe: redis.client.Pipeline) -> None:
            for q in queues:
                lists = [keys.pending(q), keys.held(q)]
                self._db.queue_script(pipe, "move_pending", (lists if paused else lists[::-1]) + [keys.paused(q)],
                                      [flag])

        return dict(zip(queues, map(int, self._db.replies(fill))))
