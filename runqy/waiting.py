"""Waiting for a task to finish: ``GET /queue/{task_id}?wait=<seconds>``.

A waiting request parks (a greenlet under runqy's gevent worker) on an event of its own;
one background loop per process asks Redis every ``defaults.WAIT_POLL_EVERY`` seconds, in
one script call for all the tasks waited for, which of them have finished, and wakes
their requests. So Redis sees one command per process per tick, however many requests
wait, and a request wakes within a tick of the worker's write.
"""

import threading

from runqy import background, defaults, keys
from runqy.store import Store


class Waiters:
    """The requests of this process that wait for tasks to finish."""

    def __init__(self, store: Store, every: float = defaults.WAIT_POLL_EVERY):
        self._store = store
        self._lock = threading.Lock()
        self._waiting: dict[str, set[threading.Event]] = {}  # task hash key -> its waiters
        self.loop = background.Loop("waiters", every, self.poll)

    def wait(self, queue: str, task_id: str, seconds: float) -> None:
        """Return when the task has finished (or is gone), or after ``seconds``."""
        key = keys.task(queue, task_id)
        event = threading.Event()
        with self._lock:
            self._waiting.setdefault(key, set()).add(event)
        self.loop.start()
        try:
            event.wait(seconds)
        finally:
            with self._lock:
                events = self._waiting.get(key)
                events.discard(event)
                if not events:
                    del self._waiting[key]

    def poll(self) -> None:
        """One look at every task waited for; wakes the waiters of those that have finished."""
        with self._lock:
            waited = list(self._waiting)
        if not waited:
            return
        for key in self._store.tasks.finished(waited):
            with self._lock:
                events = list(self._waiting.get(key, ()))
            for event in events:
                event.set()
