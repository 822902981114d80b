"""The housekeeper: its lease, and moving due tasks (runqy/store/housekeeping.py,
runqy/lua/forward.lua, lease.lua, runqy/housekeeper.py), against the private Redis; then
over real gunicorn processes, with the lease's holder killed."""

import os
import re
import signal
import time

import pytest
import requests

from runqy import defaults, keys
from runqy.housekeeper import Housekeeper
from runqy.store import NewTask, Store, connect
from tests.conftest import ADMIN, WORKER_KEY, Gunicorn, wait_for
from tests.worker_sim import SimWorker, register

NOW = 1_700_000_000
Q = "simple.default"


@pytest.fixture
def clock():
    return [NOW]


@pytest.fixture
def pinned(store, settings, clock) -> Store:
    return Store(connect(settings), clock=lambda: clock[0])


def test_the_lease_is_held_by_one_holder_renewed_and_given_up(pinned, r):
    housekeeping = pinned.housekeeping
    assert housekeeping.hold("a", 3.0)
    assert not housekeeping.hold("b", 3.0)
    assert 2900 <= r.pttl(keys.HOUSEKEEPER) <= 3000
    r.pexpire(keys.HOUSEKEEPER, 500)
    assert housekeeping.hold("a", 3.0)  # renewed
    assert r.pttl(keys.HOUSEKEEPER) > 2900
    assert not housekeeping.release("b")
    assert housekeeping.holder() == "a"
    assert housekeeping.release("a")
    assert housekeeping.hold("b", 3.0)


def test_an_expired_lease_goes_to_the_next_holder(pinned, r):
    assert pinned.housekeeping.hold("a", 0.2)
    time.sleep(0.3)
    assert pinned.housekeeping.hold("b", 3.0)
    assert not pinned.housekeeping.hold("a", 3.0)


def test_due_scheduled_and_retry_tasks_become_pending_and_others_wait(pinned, r, clock):
    pinned.tasks.enqueue(Q, [NewTask(b"1", task_id="soon")], process_at=NOW + 10)
    pinned.tasks.enqueue(Q, [NewTask(b"2", task_id="later")], process_at=NOW + 100)
    pinned.tasks.enqueue(Q, [NewTask(b"3", task_id="failed")], process_at=NOW + 100)
    r.zrem(keys.scheduled(Q), "failed")
    r.zadd(keys.retry(Q), {"failed": NOW + 5})
    r.hset(keys.task(Q, "failed"), "state", "retry")

    assert pinned.housekeeping.forward() == {"scheduled": 0, "retry": 0, "swept": 0}
    clock[0] = NOW + 10
    assert pinned.housekeeping.forward() == {"scheduled": 1, "retry": 1, "swept": 0}

    assert sorted(r.lrange(keys.pending(Q), 0, -1)) == [b"failed", b"soon"]
    for task_id in ("soon", "failed"):
        stored = r.hgetall(keys.task(Q, task_id))
        assert (stored[b"state"], stored[b"pending_since"]) == (b"pending", str(NOW + 10).encode())
    assert r.zrange(keys.scheduled(Q), 0, -1) == [b"later"]
    assert r.zcard(keys.retry(Q)) == 0
    assert pinned.housekeeping.moved() == {"scheduled": 1, "retry": 1, "swept": 0}


def test_due_tasks_move_oldest_first_in_chunks(pinned, r, clock):
    for i in range(7):
        pinned.tasks.enqueue(Q, [NewTask(b"%d" % i, task_id="t%d" % i)], process_at=NOW + 10 + i)
    clock[0] = NOW + 100
    assert pinned.housekeeping.forward(chunk=3)["scheduled"] == 7
    assert r.lrange(keys.pending(Q), 0, -1)[::-1] == [b"t%d" % i for i in range(7)]


def test_a_due_id_whose_hash_is_gone_is_dropped(pinned, r, clock):
    r.zadd(keys.scheduled(Q), {"ghost": NOW})
    r.sadd(keys.QUEUES, Q)
    assert pinned.housekeeping.forward()["scheduled"] == 1
    assert (r.zcard(keys.scheduled(Q)), r.llen(keys.pending(Q))) == (0, 0)


def test_on_a_paused_queue_due_tasks_go_to_held_and_pending_ids_are_swept_there(pinned, r, clock):
    pinned.tasks.enqueue(Q, [NewTask(b"1", task_id="old")])
    pinned.queues.pause(Q, True)
    pinned.tasks.enqueue(Q, [NewTask(b"2", task_id="due")], process_at=NOW + 5)
    r.lpush(keys.pending(Q), "requeued-1", "requeued-2")  # as the worker's shutdown re-queue does
    clock[0] = NOW + 5

    assert pinned.housekeeping.forward() == {"scheduled": 1, "retry": 0, "swept": 2}

    assert r.llen(keys.pending(Q)) == 0
    # oldest at the tail, where the worker takes from after unpause
    assert r.lrange(keys.held(Q), 0, -1) == [b"requeued-2", b"requeued-1", b"due", b"old"]


def test_a_housekeeper_moves_only_while_it_holds_the_lease_and_gives_it_up(pinned, r, clock):
    first = Housekeeper(pinned, 0.05, 3.0)
    second = Housekeeper(pinned, 0.05, 3.0)
    pinned.tasks.enqueue(Q, [NewTask(b"1", task_id="due")], process_at=NOW + 1)
    clock[0] = NOW + 1

    second.step()  # second takes the lease first ...
    assert r.lrange(keys.pending(Q), 0, -1) == [b"due"]
    r.delete(keys.pending(Q))
    r.zadd(keys.scheduled(Q), {"due": NOW})
    first.step()  # ... so first moves nothing
    assert (first.holds, second.holds, r.llen(keys.pending(Q))) == (False, True, 0)

    second.resign()
    assert not r.exists(keys.HOUSEKEEPER)
    first.step()
    assert first.holds and r.lrange(keys.pending(Q), 0, -1) == [b"due"]


# --- over real server processes ---------------------------------------------------------------


def lease_holder_pid(r) -> int:
    holder = r.get(keys.HOUSEKEEPER)
    return int(holder.decode().split(":")[1]) if holder else 0


@pytest.mark.e2e
def test_a_delayed_task_becomes_pending_within_a_second_of_its_time_and_a_worker_runs_it(server, r):
    answer = requests.post(server.url + "/queue/add", json={"queue": "simple", "data": {"n": 1}, "delay": 1},
                           headers=ADMIN, timeout=5)
    assert answer.status_code == 200, answer.text
    info = answer.json()["info"]
    assert info["state"] == "scheduled"
    due = r.zscore(keys.scheduled(Q), info["id"])
    wait_for(lambda: r.lrange(keys.pending(Q), 0, -1) == [info["id"].encode()], timeout=5,
             what="the task to become pending")
    assert time.time() - due < 1 + defaults.HOUSEKEEPING_EVERY + 0.5

    worker = SimWorker(register(server.url, WORKER_KEY, "simple"), lambda payload: {"doubled": payload["n"] * 2})
    worker.start()
    try:
        def state() -> str:
            return requests.get(server.url + "/queue/" + info["id"], headers=ADMIN, timeout=5).json()["info"]["state"]

        wait_for(lambda: state() == "completed", timeout=10, what="the worker to complete the task")
        final = requests.get(server.url + "/queue/" + info["id"], headers=ADMIN, timeout=5).json()["info"]
        assert final["result"] == {"doubled": 2}
    finally:
        worker.stop()


@pytest.mark.e2e
def test_two_servers_run_one_housekeeper_and_the_lease_moves_when_its_holder_is_killed(r, gunicorn_env):
    servers = [Gunicorn(gunicorn_env, workers=2), Gunicorn(gunicorn_env, workers=2)]
    try:
        worker_pids = {int(p) for s in servers for p in os.popen("pgrep -P %d" % s.process.pid).read().split()}
        assert len(worker_pids) == 4
        holder = wait_for(lambda: lease_holder_pid(r), timeout=5, what="a housekeeper")
        assert holder in worker_pids

        killed_at = time.monotonic()
        os.kill(holder, signal.SIGKILL)
        new = wait_for(lambda: (lease_holder_pid(r) not in (0, holder)) and lease_holder_pid(r), timeout=10,
                       what="another housekeeper")
        took = time.monotonic() - killed_at
        assert took < defaults.HOUSEKEEPER_LEASE + 2
        assert new != holder

        # and it works: a delayed task is moved by the new holder
        answer = requests.post(servers[0].url + "/queue/add", json={"queue": "simple", "data": 1, "delay": 1},
                               headers=ADMIN, timeout=5)
        task_id = answer.json()["info"]["id"].encode()
        wait_for(lambda: task_id in r.lrange(keys.pending(Q), 0, -1), timeout=5, what="the move")
        # either server reports the deployment's moves, read from Redis
        line = 'runqy_housekeeper_moved_tasks_total{source="scheduled"} 1.0'
        scraped = [requests.get(s.url + "/metrics", timeout=5).text for s in servers]
        assert all(line in text for text in scraped)
        # and whether the process that answered holds the lease
        assert all(re.search(r"^runqy_housekeeper_lease_held [01]\.0$", text, re.M) for text in scraped)
    finally:
        for s in servers:
            s.stop()
