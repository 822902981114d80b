"""Tasks in the store (runqy/store/tasks.py) against a real Redis: what each call leaves in Redis,
key by key, and what it reads back from the keys a worker leaves."""

import time
import uuid

import pytest

from runqy import defaults, keys, protobuf
from runqy.config import normalize_queue
from runqy.errors import QueueNotFound, TaskExists, TaskFinished, TaskIdRepeated, TaskNotFound, TaskRunning
from runqy.protobuf import TaskMessage
from runqy.store import NewTask, Store, connect
from tests.conftest import snapshot
from tests.helpers import NOW, assert_canceled, assert_queue_not_found, cancel_channel, rfc3339, seed_task, task_traces

DEPLOYMENT = {"git_url": "https://example.com/worker.git", "startup_cmd": "python main.py"}


# --- the task hash ---------------------------------------------------------------------------


def test_enqueue_writes_the_complete_task_hash_with_queue_defaults(pinned, r):
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b'{"prompt":"x"}')])
    assert task.id == "id-1"
    stored = r.hgetall(keys.task("simple.default", "id-1"))
    assert stored == {
        b"msg": protobuf.encode(TaskMessage(type="simple.default", payload=b'{"prompt":"x"}', id="id-1",
                                            queue="simple.default", retry=1, timeout=defaults.TIMEOUT,
                                            retention=defaults.RESULT_TTL)),
        b"state": b"pending",
        b"pending_since": str(NOW).encode(),
        b"enqueued_at": str(NOW).encode(),
        b"ttl_completed": str(defaults.RESULT_TTL).encode(),
        b"ttl_archived": str(defaults.FAILED_TTL).encode(),
        b"pending_timeout": str(defaults.PENDING_TIMEOUT).encode(),
        b"active_timeout": str(defaults.TIMEOUT).encode(),
    }
    assert (task.queue, task.state, task.max_retry, task.timeout, task.held) == ("simple.default", "pending", 1,
                                                                                   defaults.TIMEOUT, False)


def test_enqueue_uses_the_timeout_and_max_retry_of_the_queue_config(pinned, r):
    pinned.tasks.enqueue("inference.high", [NewTask(b"{}")])
    stored = r.hgetall(keys.task("inference.high", "id-1"))
    msg = protobuf.decode(stored[b"msg"])
    assert (msg.retry, msg.timeout, msg.retention) == (3, 300, defaults.RESULT_TTL)
    assert stored[b"active_timeout"] == b"300"


def test_per_request_timeout_and_max_retry_override_the_queue_config(pinned, r):
    (task,) = pinned.tasks.enqueue("inference.high", [NewTask(b"{}", timeout=42)], max_retry=7)
    stored = r.hgetall(keys.task("inference.high", "id-1"))
    msg = protobuf.decode(stored[b"msg"])
    assert (msg.retry, msg.timeout) == (7, 42)
    assert stored[b"active_timeout"] == b"42"
    assert (int(stored[b"ttl_completed"]), int(stored[b"ttl_archived"]), int(stored[b"pending_timeout"])) == (
        defaults.RESULT_TTL, defaults.FAILED_TTL, defaults.PENDING_TIMEOUT)
    assert (task.max_retry, task.timeout) == (7, 42)


def test_max_retry_zero_overrides_a_nonzero_queue_default(pinned, r):
    (task,) = pinned.tasks.enqueue("inference.high", [NewTask(b"{}")], max_retry=0)
    msg = protobuf.decode(r.hget(keys.task("inference.high", "id-1"), "msg"))
    assert msg.retry == 0
    assert task.max_retry == 0


def test_lifecycle_fields_follow_the_queue_config(r, settings):
    store = Store(connect(settings), clock=lambda: NOW, new_id=lambda: "t1")
    store.configs.put({"etl": normalize_queue("etl", {
        "max_retry": 5, "timeout": 90, "result_ttl": 600, "failed_ttl": 7200, "pending_timeout": 30,
        "deployment": DEPLOYMENT})})
    store.tasks.enqueue("etl.default", [NewTask(b"1")])
    stored = r.hgetall(keys.task("etl.default", "t1"))
    assert (stored[b"ttl_completed"], stored[b"ttl_archived"], stored[b"pending_timeout"],
            stored[b"active_timeout"]) == (b"600", b"7200", b"30", b"90")
    msg = protobuf.decode(stored[b"msg"])
    assert (msg.retry, msg.timeout, msg.retention) == (5, 90, 600)


def test_pending_since_and_enqueued_at_are_whole_unix_seconds(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])
    stored = r.hmget(keys.task("simple.default", "id-1"), "pending_since", "enqueued_at")
    assert stored == [str(NOW).encode()] * 2


def test_enqueue_with_the_real_clock_stamps_the_current_second(store, r):
    before = int(time.time())
    (task,) = store.tasks.enqueue("simple.default", [NewTask(b"{}")])
    after = int(time.time())
    pending_since = int(r.hget(keys.task("simple.default", task.id), "pending_since"))
    assert before <= pending_since <= after


def test_generated_ids_are_uuid4_strings(store, r):
    (task,) = store.tasks.enqueue("simple.default", [NewTask(b"{}")])
    assert uuid.UUID(task.id).version == 4
    assert r.exists(keys.task("simple.default", task.id))


# --- lists, sets and the reverse key ------------------------------------------------------------


def test_pending_list_is_fifo_for_a_worker_brpop(pinned, r):
    for n in range(3):
        pinned.tasks.enqueue("inference.low", [NewTask(b"%d" % n)])
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [b"id-3", b"id-2", b"id-1"]
    popped = [r.brpop([keys.pending("inference.low")], timeout=1)[1] for _ in range(3)]
    assert popped == [b"id-1", b"id-2", b"id-3"]


def test_enqueue_adds_the_queue_to_asynq_queues(pinned, r):
    r.srem(keys.QUEUES, "inference.low")
    pinned.tasks.enqueue("inference.low", [NewTask(b"{}")])
    assert r.sismember(keys.QUEUES, "inference.low")


def test_reverse_key_names_the_queue_and_lives_thirty_days(pinned, r):
    pinned.tasks.enqueue("inference.high", [NewTask(b"{}")])
    assert r.hgetall(keys.task_queue("id-1")) == {b"queue": b"inference.high"}
    assert defaults.TASK_QUEUE_TTL - 60 <= r.ttl(keys.task_queue("id-1")) <= defaults.TASK_QUEUE_TTL


def test_reverse_key_of_a_client_chosen_id_lives_thirty_days(pinned, r):
    pinned.tasks.enqueue("inference.high", [NewTask(b"{}", task_id="my-job")])
    assert r.hgetall(keys.task_queue("my-job")) == {b"queue": b"inference.high"}
    assert defaults.TASK_QUEUE_TTL - 60 <= r.ttl(keys.task_queue("my-job")) <= defaults.TASK_QUEUE_TTL


def test_enqueue_writes_no_other_keys(pinned, r):
    before = set(r.keys("*"))
    pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])
    assert set(r.keys("*")) - before == {keys.task("simple.default", "id-1").encode(),
                                         keys.pending("simple.default").encode(),
                                         keys.task_queue("id-1").encode()}


# --- batches ----------------------------------------------------------------------------------------


def test_batch_enqueue_writes_every_hash_and_pushes_the_ids_in_order(pinned, r):
    payloads = [b'{"n":%d}' % n for n in range(5)]
    enqueued = pinned.tasks.enqueue("inference.high", [NewTask(p) for p in payloads])
    ids = [task.id for task in enqueued]
    assert ids == ["id-1", "id-2", "id-3", "id-4", "id-5"]
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [i.encode() for i in reversed(ids)]
    for task_id, payload in zip(ids, payloads):
        stored = r.hgetall(keys.task("inference.high", task_id))
        msg = protobuf.decode(stored[b"msg"])
        assert (msg.id, msg.payload, msg.queue, stored[b"state"]) == (task_id, payload, "inference.high",
                                                                      b"pending")
        assert r.hget(keys.task_queue(task_id), "queue") == b"inference.high"
    popped = [r.rpop(keys.pending("inference.high")) for _ in ids]
    assert popped == [i.encode() for i in ids]


def test_batch_tasks_keep_their_own_timeouts(pinned, r):
    enqueued = pinned.tasks.enqueue("inference.high", [NewTask(b"1", timeout=10), NewTask(b"2"), NewTask(b"3", 20)],
                              max_retry=2)
    assert [t.timeout for t in enqueued] == [10, 300, 20]
    assert [t.max_retry for t in enqueued] == [2, 2, 2]
    assert [r.hget(keys.task("inference.high", t.id), "active_timeout") for t in enqueued] == [b"10", b"300",
                                                                                                b"20"]
    assert [protobuf.decode(r.hget(keys.task("inference.high", t.id), "msg")).retry for t in enqueued] == [2, 2, 2]


def test_batch_of_a_thousand_is_written_in_one_call(store, r):
    enqueued = store.tasks.enqueue("simple.default", [NewTask(b"%d" % n) for n in range(1000)])
    assert r.llen(keys.pending("simple.default")) == 1000
    assert r.rpop(keys.pending("simple.default")).decode() == enqueued[0].id
    assert len(r.keys(keys.task_prefix("simple.default") + "*")) == 1000


# --- refusals write nothing -----------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["nope.default", "inference.default", "simple.other"])
def test_enqueue_to_unknown_queue_raises_not_found_and_writes_nothing(pinned, r, queue):
    before = snapshot(r)
    with pytest.raises(QueueNotFound) as caught:
        pinned.tasks.enqueue(queue, [NewTask(b"{}"), NewTask(b"{}")])
    assert_queue_not_found(caught.value.messages, queue)
    assert snapshot(r) == before


def test_enqueue_to_unknown_queue_with_a_client_id_leaves_no_reverse_key(pinned, r):
    before = snapshot(r)
    with pytest.raises(QueueNotFound):
        pinned.tasks.enqueue("nope.default", [NewTask(b"{}", task_id="mine")])
    assert snapshot(r) == before
    assert not r.exists(keys.task_queue("mine"))


def test_client_id_taken_in_another_queue_is_a_conflict_and_changes_nothing(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b'{"first":1}', task_id="job-1")])
    r.expire(keys.task_queue("job-1"), 1000)
    before = snapshot(r)
    with pytest.raises(TaskExists) as caught:
        pinned.tasks.enqueue("inference.high", [NewTask(b'{"second":2}', task_id="job-1")])
    assert caught.value.messages == ["task already exists: job-1"]
    assert snapshot(r) == before
    assert r.hgetall(keys.task_queue("job-1")) == {b"queue": b"simple.default"}
    assert 990 <= r.ttl(keys.task_queue("job-1")) <= 1000
    assert protobuf.decode(r.hget(keys.task("simple.default", "job-1"), "msg")).payload == b'{"first":1}'
    assert not r.exists(keys.task("inference.high", "job-1"))


def test_client_id_taken_in_the_same_queue_is_a_conflict_and_keeps_the_hash(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b'{"first":1}', task_id="job-1")])
    r.hset(keys.task("simple.default", "job-1"), mapping={"state": "completed", "result": "42"})
    before = snapshot(r)
    with pytest.raises(TaskExists):
        pinned.tasks.enqueue("simple.default", [NewTask(b'{"second":2}', task_id="job-1")])
    assert snapshot(r) == before


def test_retry_of_an_enqueue_whose_answer_was_lost_after_the_claim_writes_the_task(pinned, r):
    r.hset(keys.task_queue("job-2"), "queue", "simple.default")  # claimed, then Redis stopped answering

    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b'{"n":2}', task_id="job-2")])

    assert task.id == "job-2"
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [b"job-2"]
    assert r.hget(keys.task("simple.default", "job-2"), "state") == b"pending"


def test_client_id_whose_reverse_key_expired_but_hash_remains_is_a_conflict(pinned, r):
    seed_task(r, "simple.default", "completed", "old")
    r.delete(keys.task_queue("old"))
    before = snapshot(r)
    with pytest.raises(TaskExists):
        pinned.tasks.enqueue("simple.default", [NewTask(b"{}", task_id="old")])
    assert snapshot(r) == before


def test_batch_with_one_taken_client_id_writes_nothing(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"{}", task_id="taken")])
    before = snapshot(r)
    with pytest.raises(TaskExists) as caught:
        pinned.tasks.enqueue("simple.default", [NewTask(b"{}", task_id="free-1"), NewTask(b"{}", task_id="taken"),
                                          NewTask(b"{}", task_id="free-2")])
    assert caught.value.messages == ["task already exists: taken"]
    assert snapshot(r) == before


def test_batch_naming_the_same_client_id_twice_is_a_conflict_and_leaves_no_reverse_key(pinned, r):
    before = snapshot(r)
    with pytest.raises(TaskIdRepeated):
        pinned.tasks.enqueue("simple.default", [NewTask(b"1", task_id="twice"), NewTask(b"2", task_id="twice")])
    assert snapshot(r) == before


def test_colliding_generated_id_is_a_conflict_and_keeps_the_first_task_findable(r, settings, store):
    same = Store(connect(settings), clock=lambda: NOW, new_id=lambda: "dup")
    same.tasks.enqueue("simple.default", [NewTask(b'{"first":1}')])
    before = snapshot(r)
    with pytest.raises(TaskExists):
        same.tasks.enqueue("simple.default", [NewTask(b'{"second":2}')])
    assert snapshot(r) == before
    assert same.tasks.get("dup").payload == {"first": 1}


# --- paused queues --------------------------------------------------------------------------------


def test_enqueue_to_a_paused_queue_goes_to_the_held_list(pinned, r):
    r.set(keys.paused("inference.high"), 1)
    enqueued = pinned.tasks.enqueue("inference.high", [NewTask(b"1"), NewTask(b"2")])
    assert [t.held for t in enqueued] == [True, True]
    assert r.lrange(keys.held("inference.high"), 0, -1) == [b"id-2", b"id-1"]
    assert not r.exists(keys.pending("inference.high"))
    assert r.hget(keys.task("inference.high", "id-1"), "state") == b"pending"
    assert r.hget(keys.task_queue("id-2"), "queue") == b"inference.high"


def test_pausing_one_sub_queue_does_not_hold_its_sibling(pinned, r):
    r.set(keys.paused("inference.high"), 1)
    (task,) = pinned.tasks.enqueue("inference.low", [NewTask(b"1")])
    assert not task.held
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [b"id-1"]
    assert not r.exists(keys.held("inference.low"))



# --- reading tasks ------------------------------------------------------------------------------------


def test_get_task_right_after_enqueue(pinned):
    (task,) = pinned.tasks.enqueue("inference.high", [NewTask(b'{"prompt":"hi"}', timeout=30)], max_retry=4)
    got = pinned.tasks.get(task.id)
    assert got.to_dict() == {
        "id": "id-1", "queue": "inference.high", "type": "inference.high", "state": "pending",
        "payload": {"prompt": "hi"}, "result": None, "last_err": None, "retried": 0, "max_retry": 4,
        "timeout": 30, "enqueued_at": rfc3339(NOW), "completed_at": None, "last_failed_at": None,
        "next_process_at": None,
    }


@pytest.mark.parametrize("stored, expected", [
    (b'"hello"', "hello"),
    (b"null", None),
    (b"1234", 1234),
    (b"MTIzNA==", "MTIzNA=="),
    (b'"MTIzNA=="', "MTIzNA=="),
    (b'{"answer":[1,2.5,"x"]}', {"answer": [1, 2.5, "x"]}),
    (b"true", True),
    (b"not json at all", "not json at all"),
])
def test_get_task_result_is_the_stored_json_value(store, r, stored, expected):
    seed_task(r, "simple.default", "completed", "done", result=stored, completed_at=NOW)
    result = store.tasks.get("done").result
    assert result == expected
    assert type(result) is type(expected)


def test_get_task_of_a_completed_task(store, r):
    msg = TaskMessage(type="simple.default", payload=b'{"n":1}', id="done", queue="simple.default", retry=1)
    seed_task(r, "simple.default", "completed", "done", msg=msg,
              result=b'"ok"', completed_at=NOW + 5, enqueued_at=NOW, active_timeout=60)
    got = store.tasks.get("done")
    assert (got.state, got.result, got.completed_at, got.enqueued_at, got.timeout) == (
        "completed", "ok", rfc3339(NOW + 5), rfc3339(NOW), 60)


def test_get_task_completed_at_from_msg_field_13_when_the_hash_lacks_it(store, r):
    seed_task(r, "simple.default", "completed", "done")
    r.hset(keys.task("simple.default", "done"), "msg",
           r.hget(keys.task("simple.default", "done"), "msg") + b"\x68" + protobuf.varint(NOW + 9))
    assert store.tasks.get("done").completed_at == rfc3339(NOW + 9)


def test_get_task_last_err_comes_from_the_hash_not_msg_field_7(store, r):
    msg = TaskMessage(type="simple.default", payload=b"{}", id="bad", queue="simple.default", error_msg="from msg")
    seed_task(r, "simple.default", "archived", "bad", msg=msg, error_msg="permanent failure: boom",
              last_failed_at=NOW + 3)
    got = store.tasks.get("bad")
    assert (got.state, got.last_err, got.last_failed_at) == ("archived", "permanent failure: boom",
                                                             rfc3339(NOW + 3))


def test_get_task_without_error_msg_has_no_last_err(store, r):
    msg = TaskMessage(type="simple.default", payload=b"{}", id="r1", queue="simple.default", error_msg="from msg")
    seed_task(r, "simple.default", "retry", "r1", msg=msg)
    assert store.tasks.get("r1").last_err is None


@pytest.mark.parametrize("in_msg, in_hash, expected", [(2, 1, 2), (0, 3, 3), (4, None, 4), (0, None, 0)])
def test_get_task_retried_is_the_larger_of_msg_and_hash(store, r, in_msg, in_hash, expected):
    msg = TaskMessage(type="simple.default", payload=b"{}", id="r", queue="simple.default", retry=5, retried=in_msg)
    seed_task(r, "simple.default", "retry", "r", msg=msg, retried=in_hash or 0)
    got = store.tasks.get("r")
    assert (got.retried, got.max_retry) == (expected, 5)


def test_get_task_next_process_at_is_the_retry_score(store, r):
    seed_task(r, "simple.default", "retry", "r", retried=1, score=NOW + 160, last_failed_at=NOW)
    assert store.tasks.get("r").next_process_at == rfc3339(NOW + 160)


def test_get_task_reads_asynq_nanosecond_pending_since(store, r):
    # asynq writes no enqueued_at, and pending_since in nanoseconds
    seed_task(r, "simple.default", "pending", "ns", pending_since=NOW * 10**9 + 123, enqueued_at=None)
    assert store.tasks.get("ns").enqueued_at == rfc3339(NOW)


def test_get_task_enqueued_at_survives_the_worker_deleting_pending_since(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])
    r.hdel(keys.task("simple.default", "id-1"), "pending_since")
    r.hset(keys.task("simple.default", "id-1"), "state", "active")
    got = pinned.tasks.get("id-1")
    assert (got.state, got.enqueued_at) == ("active", rfc3339(NOW))


def test_get_task_whose_hash_is_gone_is_not_found(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"{}")])
    r.delete(keys.task("simple.default", "id-1"))
    assert r.exists(keys.task_queue("id-1"))
    with pytest.raises(TaskNotFound) as caught:
        pinned.tasks.get("id-1")
    assert caught.value.messages == ["task not found: id-1 in queue simple.default"]


def test_get_task_of_an_unknown_id_is_not_found(store):
    with pytest.raises(TaskNotFound):
        store.tasks.get("never-enqueued")


def test_get_task_in_the_wrong_queue_is_not_found(pinned):
    pinned.tasks.enqueue("inference.high", [NewTask(b"{}")])
    assert pinned.tasks.get("id-1", "inference.high").queue == "inference.high"
    with pytest.raises(TaskNotFound):
        pinned.tasks.get("id-1", "inference.low")


def test_get_task_with_an_unparsable_msg_still_reports_state(store, r):
    r.hset(keys.task("simple.default", "broken"), mapping={"msg": b"\x0b\x00", "state": "archived",
                                                            "error_msg": "x"})
    r.hset(keys.task_queue("broken"), "queue", "simple.default")
    got = store.tasks.get("broken")
    assert (got.state, got.type, got.payload, got.last_err) == ("archived", "simple.default", None, "x")


# --- the reverse key ----------------------------------------------------------------------------------


def test_queue_of_reads_the_queue_the_reverse_key_names(pinned, r):
    pinned.tasks.enqueue("inference.low", [NewTask(b"{}")])
    assert r.hgetall(keys.task_queue("id-1")) == {b"queue": b"inference.low"}

    assert pinned.tasks.queue_of("id-1") == "inference.low"


def test_queue_of_an_id_without_a_reverse_key_is_none(pinned, r):
    seed_task(r, "simple.default", "pending", "orphan")
    r.delete(keys.task_queue("orphan"))

    assert (pinned.tasks.queue_of("orphan"), pinned.tasks.queue_of("never-enqueued")) == (None, None)


# --- listing ------------------------------------------------------------------------------------------


def test_page_of_pending_tasks_is_oldest_first_with_the_total(pinned, r):
    ids = [t.id for t in pinned.tasks.enqueue("inference.high", [NewTask(b'{"n":%d}' % n) for n in range(5)])]
    before = snapshot(r)

    pages = [pinned.tasks.page("inference.high", "pending", 2, offset) for offset in (0, 2, 4, 6)]

    assert [total for total, _ in pages] == [5, 5, 5, 5]
    assert [[t.id for t in tasks] for _, tasks in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert pages[0][1][0].to_dict() == pinned.tasks.get(ids[0]).to_dict()
    assert snapshot(r) == before


def test_page_of_a_paused_queue_reads_the_held_ids_before_those_pushed_onto_pending_since(pinned, r):
    held = [t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2"), NewTask(b"3")])]
    pinned.queues.pause("simple", True)
    forwarded = [seed_task(r, "simple.default", "pending") for _ in range(2)]  # a worker's forwarder, meanwhile
    assert r.llen(keys.held("simple.default")) == 3 and r.llen(keys.pending("simple.default")) == 2

    pages = [pinned.tasks.page("simple.default", "pending", 2, offset) for offset in (0, 2, 4)]

    assert [[t.id for t in tasks] for _, tasks in pages] == [held[:2], [held[2], forwarded[0]], [forwarded[1]]]
    assert {total for total, _ in pages} == {5}
    assert {t.state for _, tasks in pages for t in tasks} == {"pending"}


@pytest.mark.parametrize("state", ["scheduled", "retry", "archived", "completed"])
def test_page_of_a_sorted_set_state_is_by_score(pinned, r, state):
    scores = [NOW + 300, NOW + 100, NOW + 200]
    ids = [seed_task(r, "inference.low", state, score=score) for score in scores]
    seed_task(r, "inference.low", "pending")

    total, tasks = pinned.tasks.page("inference.low", state, 10, 0)

    assert (total, [t.id for t in tasks]) == (3, [ids[1], ids[2], ids[0]])
    assert {t.state for t in tasks} == {state}
    if state in ("scheduled", "retry"):
        assert [t.next_process_at for t in tasks] == [rfc3339(NOW + 100), rfc3339(NOW + 200), rfc3339(NOW + 300)]


def test_page_of_active_tasks_lists_what_a_worker_has_taken(task_in, pinned):
    task_id = task_in("active")

    total, tasks = pinned.tasks.page("simple.default", "active", 10, 0)

    assert (total, [(t.id, t.state) for t in tasks]) == (1, [(task_id, "active")])


def test_page_counts_ids_whose_hash_is_gone_but_answers_only_the_tasks_that_remain(pinned, r):
    kept = seed_task(r, "inference.low", "completed", score=NOW + 1)
    gone = seed_task(r, "inference.low", "completed", score=NOW + 2)
    r.delete(keys.task("inference.low", gone))  # expired before the worker's janitor purged its id

    total, tasks = pinned.tasks.page("inference.low", "completed", 10, 0)

    assert (total, [t.id for t in tasks]) == (2, [kept])


# --- cancel -------------------------------------------------------------------------------------------


def test_cancel_of_a_pending_task_archives_it_as_canceled(pinned, r):
    task_id, other = (t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2")]))
    before = task_traces(r, "simple.default", task_id)

    assert pinned.tasks.cancel(task_id) == ("simple.default", True)

    assert_canceled(r, "simple.default", task_id, before)
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [other.encode()]


def test_cancel_of_a_held_task_takes_it_out_of_the_held_list(pinned, r):
    task_id, other = (t.id for t in pinned.tasks.enqueue("simple.default", [NewTask(b"1"), NewTask(b"2")]))
    pinned.queues.pause("simple", True)
    before = task_traces(r, "simple.default", task_id)

    assert pinned.tasks.cancel(task_id) == ("simple.default", True)

    assert_canceled(r, "simple.default", task_id, before)
    assert r.lrange(keys.held("simple.default"), 0, -1) == [other.encode()]


@pytest.mark.parametrize("state", ["retry", "scheduled"])
def test_cancel_of_a_task_waiting_for_its_next_attempt_or_its_time_archives_it(task_in, pinned, r, state):
    task_id = task_in(state)
    before = task_traces(r, "simple.default", task_id)
    assert before[state] is not None

    assert pinned.tasks.cancel(task_id) == ("simple.default", True)

    assert_canceled(r, "simple.default", task_id, before)
    assert r.exists(keys.state_key("simple.default", state)) == 0


def test_cancel_of_a_running_task_only_publishes_its_id(task_in, pinned, r, redis_server):
    task_id = task_in("active")
    before = snapshot(r)

    with cancel_channel(redis_server) as published:
        assert pinned.tasks.cancel(task_id) == ("simple.default", False)
        assert published() == task_id

    assert snapshot(r) == before


def test_cancel_of_a_task_a_worker_has_just_popped_leaves_it_to_the_worker(pinned, r, redis_server):
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b"1")])
    assert r.rpop(keys.pending("simple.default")) == task.id.encode()  # BRPOP done, activation not yet
    before = snapshot(r)

    with cancel_channel(redis_server) as published:
        assert pinned.tasks.cancel(task.id) == ("simple.default", False)
        assert published() == task.id

    assert snapshot(r) == before


def test_cancel_of_an_orphan_whose_lease_was_recovered_archives_it(task_in, pinned, r):
    task_id = task_in("active")
    r.lrem(keys.active("simple.default"), 0, task_id)  # the hash says active; no list holds the id
    r.zrem(keys.lease("simple.default"), task_id)
    before = task_traces(r, "simple.default", task_id)

    assert pinned.tasks.cancel(task_id) == ("simple.default", True)

    assert_canceled(r, "simple.default", task_id, before)


@pytest.mark.parametrize("state", ["completed", "archived"])
def test_cancel_of_a_finished_task_raises_task_finished_and_changes_nothing(task_in, pinned, r, state):
    task_id = task_in(state)
    before = snapshot(r)

    with pytest.raises(TaskFinished) as caught:
        pinned.tasks.cancel(task_id)

    assert (caught.value.task_id, caught.value.state) == (task_id, state)
    assert snapshot(r) == before


def test_cancel_of_an_unknown_task_or_one_whose_hash_expired_raises_task_not_found(pinned, r):
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b"1")])
    r.delete(keys.task("simple.default", task.id))
    before = snapshot(r)

    for task_id in ("never-enqueued", task.id):
        with pytest.raises(TaskNotFound) as caught:
            pinned.tasks.cancel(task_id)
        assert caught.value.task_id == task_id
    assert snapshot(r) == before


def test_cancel_with_no_failed_ttl_keeps_the_task_for_a_hundred_years_and_its_reverse_key_as_it_was(pinned, r):
    task_id = seed_task(r, "simple.default", "pending", ttl_archived=0)

    assert pinned.tasks.cancel(task_id) == ("simple.default", True)

    assert r.zscore(keys.archived("simple.default"), task_id) == NOW + 3153600000
    assert r.hget(keys.task("simple.default", task_id), "state") == b"archived"
    assert r.ttl(keys.task("simple.default", task_id)) == -1
    assert defaults.TASK_QUEUE_TTL - 60 <= r.ttl(keys.task_queue(task_id)) <= defaults.TASK_QUEUE_TTL


# --- delete -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "held", "scheduled", "retry", "archived", "completed"])
def test_delete_removes_every_trace_of_the_task_and_nothing_else(task_in, pinned, r, state):
    task_id = task_in(state)
    keep = task_in(state)
    kept = task_traces(r, "simple.default", keep)
    listed_as = "held" if state == "held" else state
    assert task_traces(r, "simple.default", task_id)[listed_as]

    pinned.tasks.delete("simple.default", task_id)

    assert r.exists(keys.task("simple.default", task_id), keys.task_queue(task_id)) == 0
    traces = task_traces(r, "simple.default", task_id)
    assert not any(traces[k] for k in ("pending", "held", "active", "scheduled", "retry", "archived", "completed"))
    assert task_traces(r, "simple.default", keep) == kept


def test_delete_of_a_task_in_two_lists_removes_it_from_both(task_in, pinned, r):
    task_id = task_in("retry")
    r.lpush(keys.pending("simple.default"), task_id)  # forwarded while its id was still in :retry

    pinned.tasks.delete("simple.default", task_id)

    assert r.exists(keys.pending("simple.default"), keys.retry("simple.default"),
                    keys.task("simple.default", task_id), keys.task_queue(task_id)) == 0


@pytest.mark.parametrize("marker", ["state", "list"])
def test_delete_of_a_running_task_raises_task_running_and_changes_nothing(task_in, pinned, r, marker):
    task_id = task_in("active")
    if marker == "list":  # activated in the list, the state not yet written
        r.hset(keys.task("simple.default", task_id), "state", "pending")
    before = snapshot(r)

    with pytest.raises(TaskRunning) as caught:
        pinned.tasks.delete("simple.default", task_id)

    assert caught.value.task_id == task_id
    assert snapshot(r) == before


def test_delete_of_an_orphan_whose_lease_was_recovered_removes_it(task_in, pinned, r):
    task_id = task_in("active")
    r.lrem(keys.active("simple.default"), 0, task_id)
    r.zrem(keys.lease("simple.default"), task_id)

    pinned.tasks.delete("simple.default", task_id)

    assert r.exists(keys.task("simple.default", task_id), keys.task_queue(task_id)) == 0


@pytest.mark.parametrize("queue", ["inference.high", "legacy.jobs"])
def test_delete_of_a_task_another_queue_holds_raises_task_not_found_and_leaves_it_alone(pinned, r, queue):
    (task,) = pinned.tasks.enqueue("simple.default", [NewTask(b"1")])
    before = snapshot(r)

    with pytest.raises(TaskNotFound) as caught:
        pinned.tasks.delete(queue, task.id)

    assert (caught.value.task_id, caught.value.queue) == (task.id, queue)
    assert snapshot(r) == before


def test_delete_keeps_a_reverse_key_that_names_another_queue(pinned, r):
    pinned.tasks.enqueue("simple.default", [NewTask(b"1", task_id="shared")])
    # an asynq client of another language left a task of the same id in another queue
    r.hset(keys.task("legacy.jobs", "shared"), mapping={"state": "archived", "error_msg": "boom"})
    r.zadd(keys.archived("legacy.jobs"), {"shared": NOW})

    pinned.tasks.delete("legacy.jobs", "shared")

    assert r.exists(keys.task("legacy.jobs", "shared")) == 0
    assert r.hgetall(keys.task_queue("shared")) == {b"queue": b"simple.default"}
    assert r.hget(keys.task("simple.default", "shared"), "state") == b"pending"


# --- deleting a whole state ----------------------------------------------------------------------


@pytest.mark.parametrize("state", ["scheduled", "retry", "archived", "completed"])
def test_delete_all_of_a_sorted_set_state_takes_every_task_in_chunks_and_nothing_else(store, r, state):
    doomed = [seed_task(r, "simple.default", state, score=NOW + i) for i in range(7)]
    kept = [seed_task(r, "simple.default", other) for other in ("pending", "active", "scheduled", "archived")
            if other != state]
    sibling = seed_task(r, "inference.high", state)

    assert store.tasks.delete_all(["simple.default"], state, chunk=3) == {"simple.default": 7}

    assert r.zcard(keys.state_key("simple.default", state)) == 0
    for task_id in doomed:
        assert not r.exists(keys.task("simple.default", task_id), keys.task_queue(task_id))
    for task_id in kept:
        assert r.exists(keys.task("simple.default", task_id)) and r.exists(keys.task_queue(task_id))
    assert r.exists(keys.task("inference.high", sibling))


def test_delete_all_pending_takes_the_held_tasks_too_and_leaves_the_queue_paused(store, r):
    held = [store.tasks.enqueue("simple.default", [NewTask(b'{"n":%d}' % i)])[0].id for i in range(2)]
    store.queues.pause("simple.default", True)
    held.append(store.tasks.enqueue("simple.default", [NewTask(b'{"n":9}')])[0].id)  # held too: paused
    pending = [seed_task(r, "simple.default", "pending") for _ in range(4)]  # pushed since, as a worker might
    assert (r.llen(keys.held("simple.default")), r.llen(keys.pending("simple.default"))) == (3, 4)

    assert store.tasks.delete_all(["simple.default"], "pending", chunk=2) == {"simple.default": 7}

    assert r.llen(keys.held("simple.default")) == 0 and r.llen(keys.pending("simple.default")) == 0
    assert not any(r.exists(keys.task("simple.default", t), keys.task_queue(t)) for t in held + pending)
    assert r.exists(keys.paused("simple.default"))


def test_delete_all_releases_the_unique_locks_the_tasks_still_hold(store, r):
    (task,) = store.tasks.enqueue("simple.default", [NewTask(b'{"u":1}')], unique_for=600)
    lock = r.hget(keys.task("simple.default", task.id), "unique_key").decode()
    r.set(keys.unique("simple.default", "other"), "another-task")
    other = seed_task(r, "simple.default", "pending", unique_key=keys.unique("simple.default", "other"))

    assert store.tasks.delete_all(["simple.default"], "pending") == {"simple.default": 2}

    assert not r.exists(lock)
    assert r.get(keys.unique("simple.default", "other")) == b"another-task"  # held by a task not deleted
    assert not r.exists(keys.task("simple.default", other))
