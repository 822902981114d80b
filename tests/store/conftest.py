"""The store tests' own fixtures: a store whose clock and ids are pinned, and tasks brought into
each state the way it happens: enqueued and paused by the store, taken and ended by a simulated
runqy-worker (tests/worker_sim.py)."""

import itertools
from typing import Any, Callable, Iterator

import pytest

from runqy import keys
from runqy.store import NewTask, Store, connect
from tests.helpers import NOW, json_of, register, seed_task
from tests.worker_sim import Retryable, SimWorker

#: The queue the ``task_in`` tasks live in (a parent with one sub-queue: a worker of it polls only it).
QUEUE = "simple.default"


@pytest.fixture
def pinned(store, settings) -> Store:
    """A store (example configs loaded) whose clock reads NOW, mid-second, and whose ids are id-1, id-2, ..."""
    counter = itertools.count(1)
    return Store(connect(settings), clock=lambda: NOW + 0.75, new_id=lambda: "id-%d" % next(counter))


@pytest.fixture
def sim_worker(client) -> Iterator[Callable[..., SimWorker]]:
    """Makes simulated runqy-workers of a queue, registered through the app, whose clock reads NOW."""
    made: list[SimWorker] = []

    def make(queue: str, handler: Callable[[Any], Any] = lambda payload: payload) -> SimWorker:
        registered = register(client, {"queue": queue})
        assert registered.status_code == 200, registered.text
        worker = SimWorker(json_of(registered), handler, clock=lambda: NOW)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()
    assert [e for w in made for e in w.errors] == []


def _fail_retryably(payload: Any) -> Any:
    raise Retryable("try again")


def _fail(payload: Any) -> Any:
    raise ValueError("bad input")


@pytest.fixture
def task_in(pinned, sim_worker, r) -> Callable[[str], str]:
    """Makes a task of QUEUE in a state and answers its id: pending (enqueued), held (then its queue
    paused), active (taken by a worker), completed, retry or archived (run by a worker whose
    handler answers, fails with retries left, or fails with none). Scheduled tasks are seeded:
    runqy never schedules one. Call it when QUEUE holds no other pending task."""

    def make(state: str) -> str:
        if state == "scheduled":
            return seed_task(r, QUEUE, "scheduled")
        (task,) = pinned.tasks.enqueue(QUEUE, [NewTask(b'{"n":1}')], max_retry=0 if state == "archived" else 1)
        if state == "held":
            pinned.queues.pause(QUEUE, True)
        elif state == "active":
            assert sim_worker("simple").take() == task.id
        elif state != "pending":
            handler = {"completed": lambda payload: {"ok": True}, "retry": _fail_retryably, "archived": _fail}[state]
            assert sim_worker("simple", handler).run_once() == task.id
        assert r.hget(keys.task(QUEUE, task.id), "state") == (
            b"pending" if state == "held" else state.encode())
        return task.id

    return make
