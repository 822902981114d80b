"""End to end: HTTP enqueue -> a simulated runqy-worker on Redis -> HTTP status.

The worker (tests/worker_sim.py) registers over HTTP like runqy-worker and then
only talks to Redis with the worker's own commands, so these tests check that
what the server writes is what a worker can run, and that what a worker writes
is what the server reports.
"""

import json
import time

import pytest
import requests

from runqy import defaults, keys, protobuf
from runqy.config import normalize_queue
from runqy.queue_names import full_queue_name
from tests.conftest import CLIENT, WORKER_KEY, wait_for
from tests.helpers import enqueue, rfc3339
from tests.worker_sim import Retryable, SimWorker, register, retry_delay, utc_day

pytestmark = pytest.mark.e2e


@pytest.fixture
def start_worker(served):
    """Start simulated workers on ``served``; each is stopped, and must have had no loop error."""
    started = []

    def start(queue, handler, run=True):
        worker = SimWorker(register(served.url, WORKER_KEY, queue), handler)
        started.append(worker)
        return worker.start() if run else worker

    yield start
    for worker in started:
        worker.stop()
    assert [e for w in started for e in w.errors] == []


def status(served, task_id) -> dict:
    answer = requests.get(served.url + "/queue/" + task_id, headers=CLIENT, timeout=5)
    assert answer.status_code == 200, answer.text
    return answer.json()["info"]


def wait_state(served, task_id, state, timeout=10.0) -> dict:
    return wait_for(lambda: (info := status(served, task_id))["state"] == state and info,
                    timeout=timeout, what="task %s to be %s" % (task_id, state))


def counter(r, key) -> int:
    return int(r.get(key) or 0)


def counts(r, key, expected: int) -> bool:
    """The worker counts a task after it changes its state: wait for the count to settle."""
    return wait_for(lambda: counter(r, key) == expected, timeout=5, what="%s to be %d" % (key, expected))


def test_registration_gives_the_worker_our_redis_and_a_poll_list_weighted_by_priority(start_worker, redis_server):
    inference = start_worker("inference", lambda payload: None, run=False)
    simple = start_worker("simple", lambda payload: None, run=False)

    assert inference.registration["redis"] == {"addr": "127.0.0.1:%d" % redis_server.port, "password": "",
                                               "db": 0, "use_tls": False}
    assert inference.registration["sub_queues"] == [{"name": "inference.high", "priority": 10},
                                                    {"name": "inference.low", "priority": 2}]
    assert inference.poll_keys == ["asynq:{inference.high}:pending"] * 10 + ["asynq:{inference.low}:pending"] * 2
    assert simple.poll_keys == ["asynq:{simple.default}:pending"]
    assert inference.redis_storage and simple.redis_storage
    # runqy-worker always registers a parent; a dotted name still gets just that sub-queue
    low = start_worker("inference.low", lambda payload: None, run=False)
    assert low.poll_keys == ["asynq:{inference.low}:pending"] * 2


def test_without_redis_storage_the_worker_deletes_the_hash_and_status_is_404(start_worker, served, store, r):
    store.configs.put({"nostore": normalize_queue("nostore", {
        "deployment": {"git_url": "https://example.com/w.git", "startup_cmd": "python w.py",
                       "redis_storage": False}})})
    worker = start_worker("nostore", lambda payload: "lost")
    assert worker.redis_storage is False
    (task_id,) = enqueue(served.url, "nostore", data={"n": 1})

    # the worker deletes the hash, then counts the task: wait for both
    wait_for(lambda: r.exists(keys.task("nostore.default", task_id)) == 0
             and counter(r, keys.processed("nostore.default")) == 1, what="the task hash to be deleted and counted")
    assert r.zcard(keys.completed("nostore.default")) == 0 and r.llen(keys.active("nostore.default")) == 0
    # the reverse key keeps its enqueue TTL (30 days), so status finds the queue but no task
    assert r.ttl(keys.task_queue(task_id)) > defaults.RESULT_TTL
    answer = requests.get(served.url + "/queue/" + task_id, headers=CLIENT, timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"errors": ["task not found: %s in queue nostore.default" % task_id]}


def test_completed_tasks_report_the_handler_result_with_its_json_type(start_worker, served, r):
    seen = []

    def handler(payload):
        seen.append(payload)
        return payload["result"]

    start_worker("inference", handler)
    start_worker("simple", handler)
    before = int(time.time())
    answer = {"answer": {"labels": ["cat"], "score": 0.5}}
    cases = [("inference.high", answer, json.dumps(answer).encode()),
             ("inference.low", "hello", b'"hello"'),
             ("simple", 1234, b"1234"),
             ("inference.high", None, b"null")]
    ids = [enqueue(served.url, queue, data={"result": result})[0] for queue, result, _ in cases]

    infos = [wait_state(served, task_id, "completed") for task_id in ids]
    after = int(time.time())
    assert [info["result"] for info in infos] == [result for _, result, _ in cases]
    assert sorted(map(json.dumps, seen)) == sorted(json.dumps({"result": result}) for _, result, _ in cases)
    for (queue, result, raw), info, task_id in zip(cases, infos, ids):
        full = full_queue_name(queue)
        assert (info["queue"], info["payload"], info["last_err"]) == (full, {"result": result}, None)
        assert info["retried"] == 0
        h = r.hgetall(keys.task(full, task_id))
        assert (h[b"state"], h[b"result"]) == (b"completed", raw)
        assert info["completed_at"] == rfc3339(int(h[b"completed_at"]))
        assert info["enqueued_at"] is not None  # the worker deleted pending_since at activation
        assert b"pending_since" not in h
        assert before <= int(h[b"completed_at"]) <= after
        assert before <= protobuf.decode(h[b"msg"]).completed_at <= after  # field 13 appended
        # completed: out of active and lease, into :completed with score now + ttl_completed
        assert r.lrange(keys.active(full), 0, -1) == [] and r.zcard(keys.lease(full)) == 0
        ttl = defaults.RESULT_TTL
        assert before + ttl <= r.zscore(keys.completed(full), task_id) <= after + ttl
        assert 0 < r.ttl(keys.task(full, task_id)) <= ttl
        assert 0 < r.ttl(keys.task_queue(task_id)) <= ttl
    day = utc_day(after)
    assert counts(r, keys.processed("inference.high"), 2)
    assert counts(r, keys.processed("inference.low"), 1) and counts(r, keys.processed("simple.default"), 1)
    assert counts(r, keys.processed("inference.high", day), 2)
    assert counts(r, keys.failed("inference.high"), 0)


def test_failing_task_with_max_retry_1_goes_to_retry_and_is_archived_after_its_second_attempt(
        start_worker, served, r):
    attempts = []

    def handler(payload):
        attempts.append(payload)
        raise ValueError("boom")

    worker = start_worker("inference", handler)
    before = int(time.time())
    (task_id,) = enqueue(served.url, "inference.high", data={"n": 1}, max_retry=1)

    info = wait_state(served, task_id, "retry")
    # in retry: error_msg is not written yet, retried is 1 in the hash and in the rewritten msg
    assert (info["retried"], info["max_retry"], info["last_err"]) == (1, 1, None)
    h = r.hgetall(keys.task("inference.high", task_id))
    msg = protobuf.decode(h[b"msg"])
    # the rewrite keeps fields 1-6 only: timeout (8) and retention (12) are gone
    assert (msg.retry, msg.retried, msg.timeout, msg.retention) == (1, 1, 0, 0)
    assert (msg.id, msg.queue, json.loads(msg.payload)) == (task_id, "inference.high", {"n": 1})
    assert (h[b"retried"], b"error_msg" in h) == (b"1", False)
    next_at = r.zscore(keys.retry("inference.high"), task_id)
    assert info["next_process_at"] == rfc3339(int(next_at))
    assert info["last_failed_at"] == rfc3339(int(h[b"last_failed_at"]))
    assert before + retry_delay(1) <= next_at <= int(time.time()) + retry_delay(1)
    assert counts(r, keys.failed("inference.high"), 0)

    assert worker.forward(now=next_at) == 1  # the delay has "passed"
    info = wait_state(served, task_id, "archived")
    assert attempts == [{"n": 1}, {"n": 1}]
    assert (info["last_err"], info["retried"], info["result"]) == ("permanent failure: boom", 1, None)
    assert info["last_failed_at"] is not None
    assert r.zcard(keys.retry("inference.high")) == 0
    assert r.zscore(keys.archived("inference.high"), task_id) >= before + defaults.FAILED_TTL  # now + ttl_archived
    assert r.hget(keys.task("inference.high", task_id), "error_msg") == b"permanent failure: boom"
    assert counts(r, keys.failed("inference.high"), 1)
    assert counts(r, keys.failed("inference.high", utc_day(int(time.time()))), 1)
    assert counts(r, keys.processed("inference.high"), 0)


def test_failure_with_max_retry_0_is_archived_at_once_as_a_permanent_failure(start_worker, served, r):
    def handler(payload):
        if payload["retry"]:
            raise Retryable("try later")
        raise RuntimeError("bad input")

    start_worker("simple", handler)
    (permanent,) = enqueue(served.url, "simple", data={"retry": False}, max_retry=0)
    (retryable,) = enqueue(served.url, "simple", data={"retry": True}, max_retry=0)

    assert wait_state(served, permanent, "archived")["last_err"] == "permanent failure: bad input"
    info = wait_state(served, retryable, "archived")
    assert (info["last_err"], info["retried"], info["max_retry"]) == ("try later (will retry)", 0, 0)
    assert r.zcard(keys.retry("simple.default")) == 0
    assert r.zcard(keys.archived("simple.default")) == 2
    assert counts(r, keys.failed("simple.default"), 2)


def test_every_task_of_a_batch_is_run_and_completes(start_worker, served, r):
    start_worker("inference", lambda payload: {"doubled": payload["n"] * 2})
    answer = requests.post(served.url + "/queue/add-batch", headers=CLIENT, timeout=5, json={
        "queue": "inference.low", "jobs": [{"n": 1}, {"data": {"n": 2}}, {"data": {"n": 3}, "timeout": 60}]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["enqueued"], body["failed"], len(body["task_ids"])) == (3, 0, 3)

    infos = [wait_state(served, task_id, "completed") for task_id in body["task_ids"]]
    assert [info["result"] for info in infos] == [{"doubled": 2}, {"doubled": 4}, {"doubled": 6}]
    assert r.zcard(keys.completed("inference.low")) == 3
    assert counts(r, keys.processed("inference.low"), 3)


def test_high_sub_queue_is_drained_before_low_when_both_are_full(start_worker, served, r):
    order = []
    worker = start_worker("inference", lambda payload: order.append(payload) or "ok", run=False)
    low = [enqueue(served.url, "inference.low", data={"q": "low", "n": n})[0] for n in range(3)]
    high = [enqueue(served.url, "inference.high", data={"q": "high", "n": n})[0] for n in range(3)]
    assert r.llen(keys.pending("inference.low")) == r.llen(keys.pending("inference.high")) == 3

    worker.start()
    for task_id in low + high:
        wait_state(served, task_id, "completed")
    # Safe for the real worker too: BRPOP takes the first non-empty key, so one sub-queue is
    # drained (FIFO) before the other is touched. Which one goes first is random per start of
    # runqy-worker; the simulated worker polls by priority, so here it is high.
    assert [(p["q"], p["n"]) for p in order] == [("high", 0), ("high", 1), ("high", 2),
                                                 ("low", 0), ("low", 1), ("low", 2)]
