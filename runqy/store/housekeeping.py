"""Housekeeping: the lease that makes one server process the housekeeper, and moving due
scheduled and retry tasks to pending (docs/product.md §5; runqy.housekeeper runs it)."""

import redis

from runqy import defaults, keys
from runqy.store.plumbing import Plumbing

_MOVES = ("scheduled", "retry", "swept")
#: Calls per queue in one round at the most; a backlog beyond PASSES * chunk waits a round.
_PASSES = 20


class Housekeeping:
    def __init__(self, db: Plumbing):
        self._db = db

    def hold(self, holder: str, seconds: float) -> bool:
        """Take or renew the housekeeper's lease for ``seconds``; True while ``holder`` has it."""
        return self._db.script("lease", [keys.HOUSEKEEPER], [holder, int(seconds * 1000)]) == 1

    def release(self, holder: str) -> bool:
        """Give the lease up if ``holder`` has it, so that another process takes it at once."""
        return self._db.script("lease_release", [keys.HOUSEKEEPER], [holder]) == 1

    def holder(self) -> str | None:
        raw = self._db.client.get(keys.HOUSEKEEPER)
        return raw.decode() if raw is not None else None

    def forward(self, chunk: int = defaults.FORWARD_CHUNK) -> dict[str, int]:
        """Move the due tasks of every queue, ``chunk`` ids per queue and set at a time, so that
        Redis is never blocked for long; how many moved, by where from (``swept``: from a
        paused queue's pending list to its held list)."""
        now = self._db.now()
        queues = sorted(q.decode() for q in self._db.client.smembers(keys.QUEUES))
        moved = dict.fromkeys(_MOVES, 0)
        for _ in range(_PASSES):
            if not queues:
                break
            def fill(pipe: redis.client.Pipeline) -> None:
                for q in queues:
                    self._db.queue_script(pipe, "forward", [
                        keys.scheduled(q), keys.retry(q), keys.pending(q), keys.held(q), keys.paused(q),
                        keys.HOUSEKEEPING], [now, keys.task_prefix(q), chunk])

            more = []
            for q, counts in zip(queues, self._db.replies(fill)):
                for source, count in zip(_MOVES, counts):
                    moved[source] += count
                if max(counts) >= chunk:
                    more.append(q)
            queues = more
        return moved

    def moved(self) -> dict[str, int]:
        """The tasks the housekeepers of this deployment have moved, by where from."""
        counts = self._db.client.hgetall(keys.HOUSEKEEPING)
        return {source: int(counts.get(source.encode(), 0)) for source in _MOVES}
