"""Work that runs beside the requests in every server process: :class:`Loop`.

A loop calls its step, then waits, until it is stopped. Under runqy's gevent worker a
loop is a greenlet (gevent patches ``threading``); elsewhere a daemon thread. Its step
must therefore never hold the process: Redis calls are the only waits it makes, and they
yield to the requests. A step that raises is logged and the loop goes on.

Loops belong to a process. Threads do not survive ``fork``, so a loop started before
a fork (an app preloaded in gunicorn's master) is stopped there and started again in
each worker: :func:`stop_all` before the fork (gunicorn's ``pre_fork`` hook),
:func:`start_all` after it (``post_worker_init``, or the first request of a process
whose loops are not running, for servers without hooks). Starting a loop that runs in
this process does nothing: one of each at a time.
"""

import logging
import os
import threading
from typing import Callable

import redis

logger = logging.getLogger(__name__)

_LOOPS: dict[str, "Loop"] = {}
_lock = threading.Lock()
#: The process whose loops run; another value means :func:`start_all` has work to do.
_running_in: int | None = None
#: This process, kept up to date across forks (cheaper than asking on every request).
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_forked)


class Loop:
    """``step`` every ``every`` seconds in the background of this process, as ``name``; then,
    once stopped, ``on_stop``."""

    def __init__(self, name: str, every: float, step: Callable[[], None],
                 on_stop: Callable[[], None] | None = None):
        self.name = name
        self.every = every
        self._step = step
        self._on_stop = on_stop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @property
    def running(self) -> bool:
        """Started in this process and not stopped since."""
        return self._pid == _pid and self._thread is not None and not self._stop.is_set()

    def start(self) -> None:
        """Run in this process from now on, instead of any other loop of the same name (registered
        so that :func:`stop_all` stops it).

        The lock is held only for bookkeeping that never waits: under gevent it may be a real
        lock (made before the worker patched ``threading``), and a greenlet that waited while
        holding it would stop every other greenlet that asks for it.
        """
        with _lock:
            previous = _LOOPS.get(self.name)
            _LOOPS[self.name] = self
            if self.running:
                return
            self._stop = threading.Event()
            self._pid = _pid
            thread = self._thread = threading.Thread(target=self._run, name="runqy-" + self.name, daemon=True)
        if previous is not None and previous is not self:
            previous.stop()
        thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop after the step in progress, waiting for it at most ``timeout`` seconds."""
        self._stop.set()
        thread = self._thread
        if (self._pid == _pid and thread is not None and thread.is_alive()
                and thread is not threading.current_thread()):
            thread.join(timeout)

    def _run(self) -> None:
        stop = self._stop
        while not stop.is_set():
            try:
                self._step()
            except redis.exceptions.RedisError as exc:
                logger.debug("%s: redis unavailable: %s", self.name, exc)
            except Exception:  # noqa: BLE001 - a loop must outlive any one failure
                logger.exception("%s failed; trying again in %.1f s", self.name, self.every)
            stop.wait(self.every)
        if self._on_stop is not None:
            self._on_stop()


def start_all() -> None:
    """Start every registered loop that is not running in this process."""
    global _running_in
    for loop in list(_LOOPS.values()):
        loop.start()
    _running_in = _pid


def ensure_running() -> None:
    """:func:`start_all` once in a process that was forked after its loops were started."""
    if _running_in != _pid and _LOOPS:
        start_all()


def stop_all(timeout: float = 2.0) -> None:
    """Stop every loop of this process (before a fork, at shutdown)."""
    global _running_in
    for loop in list(_LOOPS.values()):
        loop.stop(timeout)
    _running_in = None
