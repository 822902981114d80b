"""The task lifecycle in the store, read back key by key: scheduled tasks, unique tasks and
running tasks again (runqy/store/tasks.py, runqy/lua/enqueue.lua, run_task.lua, run_state.lua)."""

import hashlib
import itertools

import falcon.testing
import pytest

from runqy import defaults, keys
from runqy.app import create_app
from runqy.errors import TaskDuplicate, TaskExists, TaskNotFound, TaskNotRunnable
from runqy.store import NewTask, Store, connect
from tests.conftest import ADMIN

NOW = 1_700_000_000
Q = "simple.default"


@pytest.fixture
def pinned(store, settings) -> Store:
    """A store (example configs loaded) whose clock reads NOW and whose ids are id-1, id-2, ..."""
    counter = itertools.count(1)
    return Store(connect(settings), clock=lambda: NOW, new_id=lambda: "id-%d" % next(counter))


def lock_of(payload: bytes, queue: str = Q) -> str:
    return keys.unique(queue, hashlib.md5(payload).hexdigest())


def keyspace(r) -> dict:
    """Every key with its type and contents, to compare Redis before and after a call."""
    dump = {}
    for key in r.keys("*"):
        kind = r.type(key)
        read = {b"hash": r.hgetall, b"list": lambda k: r.lrange(k, 0, -1), b"set": r.smembers,
                b"zset": lambda k: r.zrange(k, 0, -1, withscores=True)}.get(kind, r.get)
        dump[key] = (kind, read(key), r.ttl(key))
    return dump


# --- scheduled tasks -------------------------------------------------------------------------


def test_a_scheduled_task_is_written_as_asynq_writes_one(pinned, r):
    (task,) = pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], process_at=NOW + 60)

    assert (task.state, task.process_at, task.held) == ("scheduled", NOW + 60, False)
    stored = r.hgetall(keys.task(Q, "id-1"))
    assert stored[b"state"] == b"scheduled" and b"pending_since" not in stored
    assert stored[b"enqueued_at"] == str(NOW).encode() and b"msg" in stored
    assert r.zrange(keys.scheduled(Q), 0, -1, withscores=True) == [(b"id-1", NOW + 60)]
    assert r.llen(keys.pending(Q)) == 0
    assert r.hget(keys.task_queue("id-1"), "queue") == Q.encode()
    assert r.ttl(keys.task_queue("id-1")) > defaults.TASK_QUEUE_TTL - 10
    assert Q.encode() in r.smembers(keys.QUEUES)


def test_a_scheduled_task_reads_back_with_its_time_and_is_counted(pinned):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}'), NewTask(b'{"n":2}')], process_at=NOW + 60)

    task = pinned.tasks.get("id-2")
    assert (task.state, task.payload, task.next_process_at) == ("scheduled", {"n": 2}, "2023-11-14T22:14:20Z")
    total, listed = pinned.tasks.page(Q, "scheduled", 10, 0)
    assert (total, [t.id for t in listed]) == (2, ["id-1", "id-2"])
    (stats,) = pinned.queues.stats({Q: 1})
    assert (stats.scheduled, stats.pending) == (2, 0)


def test_a_task_scheduled_on_a_paused_queue_waits_in_the_scheduled_set(pinned, r):
    pinned.queues.pause(Q, True)
    (task,) = pinned.tasks.enqueue(Q, [NewTask(b"1")], process_at=NOW + 5)
    assert (task.state, task.held) == ("scheduled", False)
    assert r.zscore(keys.scheduled(Q), "id-1") == NOW + 5
    assert r.llen(keys.held(Q)) == 0


# --- unique tasks ----------------------------------------------------------------------------


def test_a_unique_task_takes_asynqs_lock_for_unique_for(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)

    lock = lock_of(b'{"n":1}')
    assert lock == "asynq:{simple.default}:unique:simple.default:" + hashlib.md5(b'{"n":1}').hexdigest()
    assert r.get(lock) == b"id-1"
    assert 590 <= r.ttl(lock) <= 600
    assert r.hget(keys.task(Q, "id-1"), "unique_key") == lock.encode()


def test_a_duplicate_unique_task_is_refused_naming_the_holder_and_writes_nothing(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)
    before = keyspace(r)

    with pytest.raises(TaskDuplicate) as caught:
        pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)

    assert (caught.value.holder, caught.value.index, caught.value.status) == ("id-1", None, 409)
    assert caught.value.messages == ["duplicate task: task id-1 with the same payload holds the unique lock "
                                     "of queue simple.default"]
    assert keyspace(r) == before


def test_the_same_payload_is_not_a_duplicate_without_unique_for_or_on_another_queue(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')])
    pinned.tasks.enqueue("inference.high", [NewTask(b'{"n":1}')], unique_for=600)
    assert r.llen(keys.pending(Q)) == 2
    assert r.get(lock_of(b'{"n":1}', "inference.high")) == b"id-3"


@pytest.mark.parametrize("jobs, index", [
    ([b'{"n":1}', b'{"n":2}', b'{"n":1}'], 2),  # a duplicate within the batch
    ([b'{"n":3}', b'{"n":0}'], 1),  # a duplicate of a task outside it
])
def test_a_batch_with_a_duplicate_fails_whole_naming_the_job(pinned, r, jobs, index):
    (holder,) = pinned.tasks.enqueue(Q, [NewTask(b'{"n":0}', task_id="holder")], unique_for=600)
    before = keyspace(r)

    with pytest.raises(TaskDuplicate) as caught:
        pinned.tasks.enqueue(Q, [NewTask(payload) for payload in jobs], unique_for=600)

    assert caught.value.index == index
    assert caught.value.messages[0].startswith("job %d: duplicate task: task " % index)
    assert keyspace(r) == before


def test_a_taken_id_after_a_lock_takes_the_lock_back(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b"{}", task_id="taken")])
    before = keyspace(r)
    with pytest.raises(TaskExists):
        pinned.tasks.enqueue(Q, [NewTask(b'{"n":9}', task_id="free"), NewTask(b"{}", task_id="taken")],
                             unique_for=600)
    assert keyspace(r) == before
    assert not r.exists(lock_of(b'{"n":9}'))


@pytest.mark.parametrize("remove", ["delete", "cancel"])
def test_deleting_or_canceling_a_unique_task_releases_its_lock(pinned, r, remove):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)
    if remove == "delete":
        pinned.tasks.delete(Q, "id-1")
    else:
        pinned.tasks.cancel("id-1")
    assert not r.exists(lock_of(b'{"n":1}'))
    (again,) = pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)
    assert r.get(lock_of(b'{"n":1}')) == again.id.encode()


def test_deleting_a_task_whose_lock_another_task_took_leaves_that_lock(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)
    r.delete(lock_of(b'{"n":1}'))  # the lock expired ...
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')], unique_for=600)  # ... and id-2 took it
    pinned.tasks.delete(Q, "id-1")
    assert r.get(lock_of(b'{"n":1}')) == b"id-2"


# --- running tasks again -----------------------------------------------------------------------


def archived(r, task_id: str, error: str = "boom") -> None:
    """A task as the worker archives it: out of every list, in the archived set, its hash expiring."""
    r.lrem(keys.pending(Q), 0, task_id)
    r.zadd(keys.archived(Q), {task_id: NOW + 3600})
    r.hset(keys.task(Q, task_id), mapping={"state": "archived", "error_msg": error, "last_failed_at": NOW})
    r.hdel(keys.task(Q, task_id), "pending_since")
    r.expire(keys.task(Q, task_id), 3600)
    r.expire(keys.task_queue(task_id), 3600)


def test_running_an_archived_task_again_makes_it_pending_and_keeps_what_it_had(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b'{"n":1}')])
    archived(r, "id-1")
    msg = r.hget(keys.task(Q, "id-1"), "msg")

    assert pinned.tasks.run(Q, "id-1") == "archived"

    stored = r.hgetall(keys.task(Q, "id-1"))
    assert (stored[b"state"], stored[b"pending_since"], stored[b"msg"]) == (b"pending", str(NOW).encode(), msg)
    assert stored[b"error_msg"] == b"boom"  # visible until it runs
    assert r.ttl(keys.task(Q, "id-1")) == -1
    assert r.ttl(keys.task_queue("id-1")) > defaults.TASK_QUEUE_TTL - 10
    assert r.lrange(keys.pending(Q), 0, -1) == [b"id-1"]
    assert r.zcard(keys.archived(Q)) == 0
    assert pinned.tasks.get("id-1").last_err == "boom"


@pytest.mark.parametrize("state", ["scheduled", "retry"])
def test_running_a_scheduled_or_retry_task_again_moves_it_now(pinned, r, state):
    pinned.tasks.enqueue(Q, [NewTask(b"1")], process_at=NOW + 600)
    if state == "retry":
        r.zrem(keys.scheduled(Q), "id-1")
        r.zadd(keys.retry(Q), {"id-1": NOW + 600})
        r.hset(keys.task(Q, "id-1"), "state", "retry")
    assert pinned.tasks.run(Q, "id-1") == state
    assert r.lrange(keys.pending(Q), 0, -1) == [b"id-1"]
    assert r.zcard(keys.state_key(Q, state)) == 0


def test_a_task_run_again_on_a_paused_queue_is_held(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b"1")], process_at=NOW + 600)
    pinned.queues.pause(Q, True)
    pinned.tasks.run(Q, "id-1")
    assert (r.llen(keys.pending(Q)), r.lrange(keys.held(Q), 0, -1)) == (0, [b"id-1"])


def test_running_a_pending_task_again_is_refused(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b"1")])
    before = keyspace(r)
    with pytest.raises(TaskNotRunnable) as caught:
        pinned.tasks.run(Q, "id-1")
    assert (caught.value.state, caught.value.status) == ("pending", 409)
    assert keyspace(r) == before
    with pytest.raises(TaskNotFound):
        pinned.tasks.run(Q, "nope")


def test_running_a_whole_state_again_moves_every_task_in_chunks_oldest_first(pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b"%d" % i) for i in range(7)])
    for i in range(1, 8):
        archived(r, "id-%d" % i)
        r.zadd(keys.archived(Q), {"id-%d" % i: NOW + i})
    r.delete(keys.task(Q, "id-7"))  # expired meanwhile: dropped, not handed to a worker

    assert pinned.tasks.run_all([Q], "archived", chunk=3) == {Q: 7}

    assert r.zcard(keys.archived(Q)) == 0
    assert r.lrange(keys.pending(Q), 0, -1)[::-1] == [b"id-%d" % i for i in range(1, 7)]
    assert all(r.ttl(keys.task(Q, "id-%d" % i)) == -1 for i in range(1, 7))


def test_running_ten_thousand_archived_tasks_again(pinned, r):
    total = 10_000
    for start in range(0, total, defaults.MAX_BATCH_JOBS):
        pinned.tasks.enqueue(Q, [NewTask(b"{}") for _ in range(defaults.MAX_BATCH_JOBS)])
    ids = [b"id-%d" % i for i in range(1, total + 1)]
    pipe = r.pipeline()
    pipe.delete(keys.pending(Q))
    pipe.zadd(keys.archived(Q), {task_id: NOW for task_id in ids})
    for task_id in ids:
        pipe.hset(keys.task(Q, task_id.decode()), "state", "archived")
    pipe.execute()

    assert pinned.tasks.run_all([Q], "archived") == {Q: total}
    assert (r.zcard(keys.archived(Q)), r.llen(keys.pending(Q))) == (0, total)


# --- over HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def api(settings, pinned):
    return falcon.testing.TestClient(create_app(settings, store=pinned))


def post(api, path: str, body: dict | None = None, **params):
    return api.simulate_post(path, json=body, params=params or None, headers=ADMIN)


def test_enqueue_with_a_delay_answers_scheduled_with_its_time(api, r):
    res = post(api, "/queue/add", {"queue": "simple", "data": {"n": 1}, "delay": 30})
    assert res.status_code == 200, res.text
    assert res.json["info"] == {"id": "id-1", "queue": Q, "type": Q, "state": "scheduled", "max_retry": 1,
                                "retried": 0, "timeout": 1800, "next_process_at": "2023-11-14T22:13:50Z"}
    assert r.zscore(keys.scheduled(Q), "id-1") == NOW + 30
    status = api.simulate_get("/queue/id-1", headers=ADMIN)
    assert (status.json["info"]["state"], status.json["info"]["next_process_at"]) == ("scheduled",
                                                                                     "2023-11-14T22:13:50Z")


def test_a_batch_with_process_at_schedules_every_job(api, r):
    res = post(api, "/queue/add-batch", {"queue": "simple", "process_at": "2023-11-14T22:23:20Z",
                                         "jobs": [{"n": 1}, {"n": 2}]})
    assert res.status_code == 200, res.text
    assert r.zrange(keys.scheduled(Q), 0, -1, withscores=True) == [(b"id-1", NOW + 600), (b"id-2", NOW + 600)]


def test_enqueue_with_a_time_in_the_past_or_delay_0_is_pending_at_once(api, r):
    for extra in ({"delay": 0}, {"process_at": NOW - 60}):
        res = post(api, "/queue/add", {"queue": "simple", "data": 1, **extra})
        assert (res.status_code, res.json["info"]["state"]) == (200, "pending")
        assert "next_process_at" not in res.json["info"]
    assert r.llen(keys.pending(Q)) == 2 and r.zcard(keys.scheduled(Q)) == 0


def test_a_unique_duplicate_over_http_is_409_with_the_holder(api):
    assert post(api, "/queue/add", {"queue": "simple", "data": 1, "unique_for": 60}).status_code == 200
    res = post(api, "/queue/add", {"queue": "simple", "data": 1, "unique_for": 60})
    assert res.status_code == 409
    assert res.json == {"errors": ["duplicate task: task id-1 with the same payload holds the unique lock of "
                                   "queue simple.default"]}
    res = post(api, "/queue/add-batch", {"queue": "simple", "unique_for": 60, "jobs": [2, 1]})
    assert (res.status_code, res.json["errors"][0][:30]) == (409, "job 1: duplicate task: task id")


def test_the_run_routes_move_tasks_and_refuse_other_states(api, pinned, r):
    pinned.tasks.enqueue(Q, [NewTask(b"1"), NewTask(b"2"), NewTask(b"3")], process_at=NOW + 600)

    res = post(api, "/api/cli/queues/simple/tasks/id-1/run")
    assert (res.status_code, res.json) == (200, {"id": "id-1", "queue": Q, "state": "pending", "was": "scheduled"})
    res = post(api, "/api/cli/queues/simple/tasks/id-1/run")
    assert res.status_code == 409
    assert res.json == {"errors": ["task id-1 is pending; only scheduled, retry and archived tasks can be run again"]}
    assert post(api, "/api/cli/queues/simple/tasks/nope/run").status_code == 404

    res = post(api, "/api/cli/queues/simple/run", state="scheduled")
    assert (res.status_code, res.json) == (200, {"queue": "simple", "state": "scheduled", "moved": 2,
                                                 "sub_queues": [{"name": Q, "moved": 2}]})
    assert r.llen(keys.pending(Q)) == 3
    for params in ({}, {"state": "pending"}):
        res = post(api, "/api/cli/queues/simple/run", **params)
        assert res.status_code == 400, res.text
    assert post(api, "/api/cli/queues/nope/run", state="archived").status_code == 404
