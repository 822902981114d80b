"""Tasks over HTTP (runqy/resources/tasks.py): enqueue (POST /queue/add, /queue/add-batch,
/api/cli/tasks), status (GET /queue/{id}) and the admin views under /api/cli: listing, details,
cancel and delete (docs/product.md §5, docs/worker-protocol.md §3.1-§3.2).

Every mutating call is followed by a look at the raw Redis keys, every refused call by a check
that Redis holds exactly what it held before. Tasks in states only a worker produces are seeded
by hand as runqy-worker writes them.
"""

import json
import time
import uuid

import falcon.testing
import pytest

from runqy import defaults, keys, protobuf
from runqy.app import create_app
from runqy.queue_names import full_queue_name
from runqy.store import Store, connect
from tests.conftest import ADMIN, CLIENT, WORKER, snapshot
from tests.helpers import (
    NOW,
    add,
    assert_canceled,
    assert_json_405,
    assert_queue_not_found,
    batch,
    cancel_channel,
    enqueue,
    errors_of,
    rfc3339,
    seed_task,
    stored,
    task_traces,
)

STATES = ("pending", "active", "scheduled", "retry", "archived", "completed")
TASK_HASH_FIELDS = {b"msg", b"state", b"pending_since", b"enqueued_at", b"ttl_completed", b"ttl_archived",
                    b"pending_timeout", b"active_timeout"}


def listed(client, queue: str, **params) -> falcon.testing.Result:
    query = "&".join("%s=%s" % item for item in params.items())
    return client.simulate_get("/api/cli/queues/%s/tasks" % queue, query_string=query, headers=ADMIN)


def assert_enqueued(r, queue: str, task_id: str, payload: bytes, timeout: int, max_retry: int) -> dict:
    """The task hash, msg, pending list and reverse key of one freshly enqueued task."""
    fields, msg = stored(r, queue, task_id)
    assert TASK_HASH_FIELDS <= set(fields)
    assert fields[b"state"] == b"pending"
    assert fields[b"active_timeout"] == str(timeout).encode()
    assert fields[b"pending_since"] == fields[b"enqueued_at"]
    assert abs(int(fields[b"enqueued_at"]) - time.time()) < 60
    assert (msg.type, msg.queue, msg.id, msg.payload) == (queue, queue, task_id, payload)
    assert (msg.timeout, msg.retry, msg.retention) == (timeout, max_retry, int(fields[b"ttl_completed"]))
    assert task_id.encode() in r.lrange(keys.pending(queue), 0, -1)
    assert r.hget(keys.task_queue(task_id), "queue") == queue.encode()
    assert 0 < r.ttl(keys.task_queue(task_id)) <= defaults.TASK_QUEUE_TTL
    assert r.sismember(keys.QUEUES, queue)
    return fields


# --- POST /queue/add -------------------------------------------------------------------------


def test_enqueue_nested_body_writes_the_full_task_and_answers_its_info(client, r):
    res = add(client, {"queue": "inference.high", "timeout": 120, "data": {"prompt": "Hello", "width": 1024}})
    assert res.status_code == 200, res.text
    info = res.json["info"]
    assert set(res.json) == {"info"}
    assert set(info) == {"id", "queue", "type", "state", "max_retry", "retried", "timeout"}
    assert uuid.UUID(info["id"]).version == 4 and str(uuid.UUID(info["id"])) == info["id"]
    assert info == {"id": info["id"], "queue": "inference.high", "type": "inference.high", "state": "pending",
                    "max_retry": 3, "retried": 0, "timeout": 120}
    fields = assert_enqueued(r, "inference.high", info["id"], b'{"prompt":"Hello","width":1024}', 120, 3)
    assert (int(fields[b"ttl_completed"]), int(fields[b"ttl_archived"]), int(fields[b"pending_timeout"])) == (
        defaults.RESULT_TTL, defaults.FAILED_TTL, defaults.PENDING_TIMEOUT)
    assert r.llen(keys.pending("inference.low")) == 0


def test_enqueue_adds_the_queue_to_the_asynq_queue_set_even_when_it_was_removed(client, r):
    """Enqueue itself does SADD asynq:queues (docs/product.md §3), not only the config load."""
    for n in range(2):  # the second time, after this process has already enqueued to the queue once
        r.srem(keys.QUEUES, "simple.default")
        res = add(client, {"queue": "simple", "data": n})
        assert res.status_code == 200, res.text
        assert r.sismember(keys.QUEUES, "simple.default"), "enqueue %d left the queue out of asynq:queues" % n


def test_enqueue_flat_body_stores_every_non_reserved_key_as_the_payload(client, r):
    res = add(client, {"queue": "simple", "prompt": "x"})
    assert res.status_code == 200, res.text
    info = res.json["info"]
    assert (info["queue"], info["timeout"], info["max_retry"]) == ("simple.default", defaults.TIMEOUT, 1)
    assert_enqueued(r, "simple.default", info["id"], b'{"prompt":"x"}', defaults.TIMEOUT, 1)


def test_enqueue_flat_body_keeps_reserved_keys_out_of_the_payload(client, r):
    res = add(client, {"queue": "simple", "timeout": 60, "max_retry": 5, "prompt": "x", "n": [1, 2]})
    assert res.status_code == 200, res.text
    info = res.json["info"]
    assert (info["timeout"], info["max_retry"]) == (60, 5)
    assert_enqueued(r, "simple.default", info["id"], b'{"prompt":"x","n":[1,2]}', 60, 5)


def test_enqueue_benchmark_style_payload_key_is_kept_as_a_payload_field(client, r):
    res = add(client, {"queue": "simple", "payload": {"iterations": 3, "sleep": 0.1}})
    assert res.status_code == 200, res.text
    assert_enqueued(r, "simple.default", res.json["info"]["id"],
                    b'{"payload":{"iterations":3,"sleep":0.1}}', defaults.TIMEOUT, 1)


@pytest.mark.parametrize("data, raw", [
    ("just text", b'"just text"'),
    (42, b"42"),
    (2.5, b"2.5"),
    ([1, "two", None], b'[1,"two",null]'),
    (None, b"null"),
    ({}, b"{}"),
    ("h\u00e9llo \u2603", '"h\u00e9llo \u2603"'.encode()),
])
def test_enqueue_data_may_be_any_json_value(client, r, data, raw):
    res = add(client, {"queue": "simple", "data": data})
    assert res.status_code == 200, res.text
    assert_enqueued(r, "simple.default", res.json["info"]["id"], raw, defaults.TIMEOUT, 1)


def test_enqueue_timeout_and_max_retry_overrides_reach_answer_hash_and_msg(client, r):
    res = add(client, {"queue": "inference.low", "data": {}, "timeout": 7, "max_retry": 0})
    assert res.status_code == 200, res.text
    info = res.json["info"]
    assert (info["timeout"], info["max_retry"]) == (7, 0)
    assert_enqueued(r, "inference.low", info["id"], b"{}", 7, 0)


def test_enqueue_without_overrides_takes_the_queue_defaults(client, r):
    res = add(client, {"queue": "inference.low", "data": {}})
    info = res.json["info"]
    assert (info["timeout"], info["max_retry"]) == (300, 3)
    assert_enqueued(r, "inference.low", info["id"], b"{}", 300, 3)


def test_enqueue_with_a_bare_parent_name_goes_to_its_default_sub_queue(client, r):
    res = add(client, {"queue": "simple", "data": 1})
    assert res.json["info"]["queue"] == "simple.default"
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [res.json["info"]["id"].encode()]
    assert not r.exists(keys.pending("simple"))


def test_enqueue_ids_are_fresh_uuid4s(client, r):
    ids = {add(client, {"queue": "simple", "data": i}).json["info"]["id"] for i in range(5)}
    assert len(ids) == 5
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert set(r.lrange(keys.pending("simple.default"), 0, -1)) == {i.encode() for i in ids}


def test_enqueue_with_client_chosen_task_id_uses_it(client, r):
    res = add(client, {"queue": "inference.high", "task_id": "order-42_a", "data": {"a": 1}})
    assert res.status_code == 200, res.text
    assert res.json["info"]["id"] == "order-42_a"
    assert_enqueued(r, "inference.high", "order-42_a", b'{"a":1}', 300, 3)


@pytest.mark.parametrize("second_queue", ["inference.high", "inference.low", "simple"])
def test_enqueue_with_a_taken_task_id_is_409_and_leaves_the_original_untouched(client, r, second_queue):
    first = add(client, {"queue": "inference.high", "task_id": "dup-1", "data": {"v": 1}})
    assert first.status_code == 200, first.text
    before = snapshot(r)
    res = add(client, {"queue": second_queue, "task_id": "dup-1", "data": {"v": 2}})
    assert res.status_code == 409
    assert any("dup-1" in m for m in errors_of(res))
    assert snapshot(r) == before
    assert r.hget(keys.task_queue("dup-1"), "queue") == b"inference.high"
    assert stored(r, "inference.high", "dup-1")[1].payload == b'{"v":1}'


def test_enqueue_with_a_task_id_whose_hash_exists_without_reverse_key_is_409(client, r):
    """A task hash left behind after its reverse key expired still blocks the id."""
    first = add(client, {"queue": "simple", "task_id": "orphan", "data": 1})
    assert first.status_code == 200
    r.delete(keys.task_queue("orphan"))
    before = snapshot(r)
    res = add(client, {"queue": "simple", "task_id": "orphan", "data": 2})
    assert res.status_code == 409
    errors_of(res)
    assert snapshot(r) == before


def test_enqueue_with_an_unknown_queue_is_404_and_writes_nothing(client, r):
    before = snapshot(r)
    res = add(client, {"queue": "nope", "data": {}})
    assert res.status_code == 404
    assert_queue_not_found(errors_of(res), "nope.default")
    res = add(client, {"queue": "inference.medium", "data": {}})
    assert res.status_code == 404
    assert_queue_not_found(errors_of(res), "inference.medium")
    res = add(client, {"queue": "nope.x", "task_id": "mine", "data": {}})
    assert res.status_code == 404
    assert_queue_not_found(errors_of(res), "nope.x")
    assert snapshot(r) == before


@pytest.mark.parametrize("extra, expected", [
    ({"process_at": "2026-12-01T10:00:00Z", "delay": 60}, "$: give process_at or delay, not both"),
    ({"delay": defaults.MAX_SCHEDULE_AHEAD + 1}, "$.delay: "),
    ({"process_at": time.time() + defaults.MAX_SCHEDULE_AHEAD + 86400}, "is more than a year ahead"),
    ({"process_at": "2026-12-01T10:00:00"}, '"2026-12-01T10:00:00" is not a valid time (RFC 3339 with a UTC offset'),
    ({"process_at": "tomorrow"}, '$.process_at: "tomorrow" is not a valid time (RFC 3339'),
    ({"delay": -1}, "$.delay: "),
    ({"unique_for": 0}, "$.unique_for: "),
    ({"unique_for": 30 * 24 * 3600 + 1}, "$.unique_for: "),
])
def test_enqueue_with_a_bad_time_or_uniqueness_is_400_and_writes_nothing(client, r, extra, expected):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": {}, **extra})
    assert res.status_code == 400
    (message,) = errors_of(res)
    assert expected in message
    assert snapshot(r) == before


def test_admin_cli_tasks_enqueues_like_queue_add(client, r):
    res = client.simulate_post("/api/cli/tasks", json={"queue": "simple", "data": [1]}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json["info"]["queue"] == "simple.default"
    assert_enqueued(r, "simple.default", res.json["info"]["id"], b"[1]", defaults.TIMEOUT, 1)


# --- POST /queue/add-batch ----------------------------------------------------------------------


def test_batch_wrapper_and_raw_jobs_are_stored_in_job_order(client, r):
    jobs = [
        {"data": {"p": 1}},                       # wrapper
        {"data": "s", "timeout": 9},              # wrapper with its own timeout
        {"data": 1, "other": True},               # not a wrapper: an object with another key
        {"prompt": "x"},                          # raw object
        [1, 2],                                   # raw array
        "text",                                   # raw string
        3.5,                                      # raw number
        {"timeout": 4},                           # no data: raw payload
    ]
    res = batch(client, {"queue": "inference.high", "timeout": 50, "max_retry": 2, "jobs": jobs})
    assert res.status_code == 200, res.text
    body = res.json
    assert (body["enqueued"], body["failed"], body["errors"]) == (len(jobs), 0, [])
    ids = body["task_ids"]
    assert len(set(ids)) == len(jobs) and all(uuid.UUID(i).version == 4 for i in ids)
    expected = [(b'{"p":1}', 50), (b'"s"', 9), (b'{"data":1,"other":true}', 50), (b'{"prompt":"x"}', 50),
                (b"[1,2]", 50), (b'"text"', 50), (b"3.5", 50), (b'{"timeout":4}', 50)]
    for task_id, (payload, timeout) in zip(ids, expected):
        assert_enqueued(r, "inference.high", task_id, payload, timeout, 2)
    # LPUSH in job order: workers pop from the tail, so the first job is taken first
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [i.encode() for i in reversed(ids)]


def test_batch_with_a_bare_parent_name_uses_the_queue_defaults(client, r):
    res = batch(client, {"queue": "simple", "jobs": [{"data": 1}, 2]})
    assert res.status_code == 200, res.text
    for task_id, payload in zip(res.json["task_ids"], (b"1", b"2")):
        assert_enqueued(r, "simple.default", task_id, payload, defaults.TIMEOUT, 1)


def test_batch_of_1000_jobs_is_accepted_and_all_are_written(client, r):
    most = defaults.MAX_BATCH_JOBS
    res = batch(client, {"queue": "simple", "jobs": [{"n": i} for i in range(most)]})
    assert res.status_code == 200, res.text
    ids = res.json["task_ids"]
    assert res.json["enqueued"] == most and len(set(ids)) == most
    assert r.llen(keys.pending("simple.default")) == most
    assert len(list(r.scan_iter(keys.task_prefix("simple.default") + "*", count=1000))) == most
    assert stored(r, "simple.default", ids[-1])[1].payload == b'{"n":%d}' % (most - 1)


def test_batch_of_1001_jobs_is_400_naming_the_limit_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "jobs": list(range(defaults.MAX_BATCH_JOBS + 1))})
    assert res.status_code == 400
    (message,) = errors_of(res)
    assert "$.jobs" in message and str(defaults.MAX_BATCH_JOBS) in message
    assert snapshot(r) == before


def test_batch_without_jobs_is_400_and_writes_nothing(client, r):
    before = snapshot(r)
    for body in ({"queue": "simple", "jobs": []}, {"queue": "simple"}):
        res = batch(client, body)
        assert res.status_code == 400
        assert any("jobs" in m for m in errors_of(res))
    assert snapshot(r) == before


@pytest.mark.parametrize("bad", ["5", 0, 1.5, -1, None])
def test_batch_bad_wrapper_timeout_is_400_naming_its_path_and_writes_nothing(client, r, bad):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "jobs": [{"data": 1}, 2, {"data": 3, "timeout": bad}]})
    assert res.status_code == 400
    assert any(m.startswith("$.jobs[2].timeout") for m in errors_of(res)), res.text
    assert snapshot(r) == before


def test_batch_unknown_top_level_field_is_400_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "jobs": [1], "priority": 3})
    assert res.status_code == 400
    assert any("priority" in m for m in errors_of(res))
    assert snapshot(r) == before


def test_batch_to_an_unknown_queue_is_404_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "ghost", "jobs": [1, 2]})
    assert res.status_code == 404
    assert_queue_not_found(errors_of(res), "ghost.default")
    assert snapshot(r) == before


def test_batch_bad_request_timeout_is_400_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "timeout": "300", "jobs": [1]})
    assert res.status_code == 400
    assert any(m.startswith("$.timeout") for m in errors_of(res))
    assert snapshot(r) == before


# --- GET /queue/{id} ----------------------------------------------------------------------------


def test_status_of_a_pending_task_reads_every_field(client, r):
    (task_id,) = enqueue(client, "inference.high", data={"q": [1, "a"]})
    res = client.simulate_get("/queue/" + task_id, headers=ADMIN)
    assert res.status_code == 200, res.text
    info = res.json["info"]
    assert set(info) == {"id", "queue", "type", "state", "payload", "result", "last_err", "retried", "max_retry",
                         "timeout", "enqueued_at", "completed_at", "last_failed_at", "next_process_at"}
    enqueued_at = int(r.hget(keys.task("inference.high", task_id), "enqueued_at"))
    assert info == {"id": task_id, "queue": "inference.high", "type": "inference.high", "state": "pending",
                    "payload": {"q": [1, "a"]}, "result": None, "last_err": None, "retried": 0, "max_retry": 3,
                    "timeout": 300, "enqueued_at": rfc3339(enqueued_at), "completed_at": None,
                    "last_failed_at": None, "next_process_at": None}


def test_status_of_a_completed_task_shows_its_result(client, r):
    (task_id,) = enqueue(client, "inference.high")
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    # what the worker does on success (docs/worker-protocol.md §2.9)
    r.lrem(keys.pending("inference.high"), 0, task_id)
    r.hdel(key, "pending_since")
    r.hset(key, mapping={"state": "completed", "completed_at": now, "result": '{"answer": 42, "ok": true}'})
    r.zadd(keys.completed("inference.high"), {task_id: now + defaults.RESULT_TTL})
    info = client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]
    assert (info["state"], info["result"], info["completed_at"]) == ("completed", {"answer": 42, "ok": True},
                                                                      rfc3339(now))
    assert info["payload"] == {"i": 0}


def test_status_of_a_completed_task_with_a_null_or_text_result(client, r):
    (task_id,) = enqueue(client, "inference.high")
    key = keys.task("inference.high", task_id)
    r.hset(key, mapping={"state": "completed", "result": "null"})
    assert client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]["result"] is None
    r.hset(key, "result", "not json")
    assert client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]["result"] == "not json"


def test_status_of_an_archived_task_shows_error_msg_as_last_err(client, r):
    (task_id,) = enqueue(client, "inference.high")
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    r.hset(key, mapping={"state": "archived", "error_msg": "permanent failure: boom", "last_failed_at": now})
    r.zadd(keys.archived("inference.high"), {task_id: now + defaults.FAILED_TTL})
    info = client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]
    assert (info["state"], info["last_err"], info["last_failed_at"]) == (
        "archived", "permanent failure: boom", rfc3339(now))


def test_status_of_a_retry_task_shows_the_next_attempt_from_the_retry_zset(client, r):
    (task_id,) = enqueue(client, "inference.high")
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    r.hincrby(key, "retried", 1)
    r.hset(key, mapping={"state": "retry", "last_failed_at": now})
    r.zadd(keys.retry("inference.high"), {task_id: now + 10})
    info = client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]
    assert (info["state"], info["retried"], info["next_process_at"], info["last_failed_at"]) == (
        "retry", 1, rfc3339(now + 10), rfc3339(now))
    assert info["last_err"] is None


def test_status_retried_is_the_larger_of_hash_field_and_msg_field(client, r):
    (task_id,) = enqueue(client, "inference.high")
    key = keys.task("inference.high", task_id)
    msg = protobuf.decode(r.hget(key, "msg"))
    msg.retried = 2
    r.hset(key, mapping={"msg": protobuf.encode(msg), "retried": 1, "state": "retry"})
    assert client.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]["retried"] == 2


def test_status_in_seed_form_normalises_a_bare_parent_name(client, r):
    (task_id,) = enqueue(client, "simple")
    for name in ("simple", "simple.default"):
        res = client.simulate_get("/queue/%s/%s" % (task_id, name), headers=ADMIN)
        assert res.status_code == 200, res.text
        assert (res.json["info"]["id"], res.json["info"]["queue"]) == (task_id, "simple.default")


def test_status_in_seed_form_finds_a_task_whose_reverse_key_is_gone(client, r):
    (task_id,) = enqueue(client, "inference.high")
    r.delete(keys.task_queue(task_id))
    assert client.simulate_get("/queue/" + task_id, headers=ADMIN).status_code == 404
    res = client.simulate_get("/queue/%s/inference.high" % task_id, headers=ADMIN)
    assert res.status_code == 200 and res.json["info"]["state"] == "pending"


def test_status_in_seed_form_with_the_wrong_queue_is_404(client, r):
    (task_id,) = enqueue(client, "inference.high")
    for name in ("inference.low", "inference", "simple"):
        res = client.simulate_get("/queue/%s/%s" % (task_id, name), headers=ADMIN)
        assert res.status_code == 404, name
        assert errors_of(res) == ["task not found: %s in queue %s" % (task_id, full_queue_name(name))]


@pytest.mark.parametrize("name", ["-bad", "a.b.c", "has space", "x" * 65, "a..b", "_x", "q.%C3%BC"])
def test_status_in_seed_form_with_a_malformed_queue_name_is_400(client, r, name):
    (task_id,) = enqueue(client, "inference.high")
    res = client.simulate_get("/queue/%s/%s" % (task_id, name), headers=ADMIN)
    assert res.status_code == 400, res.text
    assert any("queue" in m and "not a valid queue name" in m for m in errors_of(res)), res.text


@pytest.mark.parametrize("task_id", ["no-such-task", str(uuid.uuid4()), "x" * 300])
def test_status_of_an_unknown_task_is_404(client, r, task_id):
    res = client.simulate_get("/queue/" + task_id, headers=ADMIN)
    assert res.status_code == 404
    assert errors_of(res)[0].startswith("task not found: ")


def test_status_of_a_task_whose_hash_expired_is_404(client, r):
    (task_id,) = enqueue(client, "inference.high")
    r.delete(keys.task("inference.high", task_id))
    assert r.exists(keys.task_queue(task_id))
    res = client.simulate_get("/queue/" + task_id, headers=ADMIN)
    assert res.status_code == 404
    assert errors_of(res) == ["task not found: %s in queue inference.high" % task_id]


def test_status_of_a_deeply_nested_payload_reads_it_back(roomy_client, r):
    """A payload the server accepted must be readable again, not a 500."""
    deep: list = []
    for _ in range(600):
        deep = [deep]
    (task_id,) = enqueue(roomy_client, "simple", data=deep)
    res = roomy_client.simulate_get("/queue/" + task_id, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json["info"]["payload"] == deep


@pytest.mark.parametrize("depth", [600, 900, 990, 5000])
def test_status_of_a_deeply_nested_worker_result_is_200_not_500(client, r, depth):
    """The worker stores whatever JSON text the task returned; reading it back must not fail."""
    (task_id,) = enqueue(client, "inference.high")
    r.hset(keys.task("inference.high", task_id),
           mapping={"state": "completed", "result": "[" * depth + "]" * depth})
    res = client.simulate_get("/queue/" + task_id, headers=ADMIN)
    assert res.status_code == 200, res.text
    result = res.json["info"]["result"]
    assert result == "[" * depth + "]" * depth or json.dumps(result).replace(" ", "") == "[" * depth + "]" * depth


# --- POST /api/cli/tasks -------------------------------------------------------------------------


def test_admin_enqueue_writes_exactly_what_queue_add_writes(settings, store, r):
    ids = iter(["task-via-queue-add", "task-via-admin"])
    app = create_app(settings, store=Store(connect(settings), clock=lambda: NOW, new_id=lambda: next(ids)))
    client = falcon.testing.TestClient(app)
    body = {"queue": "inference.high", "timeout": 60, "max_retry": 5, "data": {"prompt": "x", "n": [1, 2]}}

    plain = client.simulate_post("/queue/add", json=body, headers=ADMIN)
    admin = client.simulate_post("/api/cli/tasks", json=body, headers=ADMIN)

    assert (plain.status_code, admin.status_code) == (200, 200)
    assert {**plain.json["info"], "id": None} == {**admin.json["info"], "id": None}
    assert admin.json["info"] == {"id": "task-via-admin", "queue": "inference.high", "type": "inference.high",
                                  "state": "pending", "max_retry": 5, "retried": 0, "timeout": 60}
    one = r.hgetall(keys.task("inference.high", "task-via-queue-add"))
    two = r.hgetall(keys.task("inference.high", "task-via-admin"))
    msg_one, msg_two = protobuf.decode(one.pop(b"msg")), protobuf.decode(two.pop(b"msg"))
    assert one == two
    assert (msg_one.id, msg_two.id) == ("task-via-queue-add", "task-via-admin")
    msg_two.id = msg_one.id
    assert msg_one == msg_two
    assert json.loads(msg_two.payload) == {"prompt": "x", "n": [1, 2]}
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [b"task-via-admin", b"task-via-queue-add"]
    assert r.hgetall(keys.task_queue("task-via-admin")) == {b"queue": b"inference.high"}
    assert 0 < r.ttl(keys.task_queue("task-via-admin")) <= defaults.TASK_QUEUE_TTL


def test_admin_enqueue_accepts_the_flat_body_and_a_plain_queue_name(admin, r):
    result = admin.simulate_post("/api/cli/tasks", json={"queue": "simple", "prompt": "hi"}, headers=ADMIN)

    assert result.status_code == 200, result.text
    task_id = result.json["info"]["id"]
    assert result.json["info"]["queue"] == "simple.default"
    msg = protobuf.decode(r.hget(keys.task("simple.default", task_id), "msg"))
    assert (json.loads(msg.payload), msg.retry) == ({"prompt": "hi"}, 1)


@pytest.mark.parametrize("headers, status", [(CLIENT, 403), (WORKER, 403), ({}, 401)])
def test_admin_enqueue_refuses_other_keys_and_writes_nothing(admin, r, headers, status):
    before = sorted(r.keys("*"))

    result = admin.simulate_post("/api/cli/tasks", json={"queue": "simple", "data": 1}, headers=headers)

    assert result.status_code == status
    errors_of(result)
    assert sorted(r.keys("*")) == before


def test_admin_enqueue_to_an_unknown_queue_is_404_and_writes_nothing(admin, r):
    before = sorted(r.keys("*"))

    result = admin.simulate_post("/api/cli/tasks", json={"queue": "nosuch.high", "data": 1}, headers=ADMIN)

    assert result.status_code == 404
    assert_queue_not_found(errors_of(result), "nosuch.high")
    assert sorted(r.keys("*")) == before


@pytest.mark.parametrize("body, field", [
    ({"data": 1}, "queue"), ({"queue": "a..b", "data": 1}, "$.queue"),
    ({"queue": "simple", "timeout": "x"}, "$.timeout"),
    ({"queue": "simple", "max_retry": -1}, "$.max_retry"), ({"queue": "simple", "task_id": "bad id"}, "$.task_id")])
def test_admin_enqueue_with_a_bad_body_is_400_naming_the_field(admin, r, body, field):
    result = admin.simulate_post("/api/cli/tasks", json=body, headers=ADMIN)

    assert result.status_code == 400
    assert any(field in message for message in errors_of(result)), result.json
    assert r.llen(keys.pending("simple.default")) == 0


# --- listing ----------------------------------------------------------------------------------


def test_task_list_defaults_to_pending_oldest_first_with_total(admin, r):
    ids = enqueue(admin, "inference.high", 3)

    result = listed(admin, "inference.high")

    assert result.status_code == 200, result.text
    body = result.json
    assert {k: body[k] for k in ("queue", "state", "total", "limit", "offset")} == {
        "queue": "inference.high", "state": "pending", "total": 3, "limit": defaults.PAGE, "offset": 0}
    assert [t["id"] for t in body["tasks"]] == ids
    first = body["tasks"][0]
    assert first == {"id": ids[0], "queue": "inference.high", "type": "inference.high", "state": "pending",
                     "payload": {"i": 0}, "result": None, "last_err": None, "retried": 0, "max_retry": 3,
                     "timeout": 300, "enqueued_at": rfc3339(NOW), "completed_at": None,
                     "last_failed_at": None, "next_process_at": None}


def test_task_list_pages_with_limit_and_offset(admin, r):
    ids = enqueue(admin, "simple", 7)

    pages = [listed(admin, "simple", limit=3, offset=offset).json for offset in (0, 3, 6, 9)]

    assert [[t["id"] for t in page["tasks"]] for page in pages] == [ids[0:3], ids[3:6], ids[6:], []]
    assert {page["total"] for page in pages} == {7}


def test_task_list_default_page_is_20_and_limit_1000_is_allowed(admin, r):
    ids = enqueue(admin, "simple", defaults.PAGE + 5)

    default = listed(admin, "simple").json
    most = listed(admin, "simple", limit=defaults.MAX_PAGE).json

    assert ([t["id"] for t in default["tasks"]], default["total"]) == (ids[:defaults.PAGE], len(ids))
    assert ([t["id"] for t in most["tasks"]], most["limit"]) == (ids, defaults.MAX_PAGE)


def test_task_list_with_a_bad_parameter_is_400(admin, r):
    enqueue(admin, "simple", 1)

    for query in ("limit=0", "limit=%d" % (defaults.MAX_PAGE + 1), "limit=abc", "limit=-1", "limit=1.5",
                  "offset=-1", "offset=abc", "state=paused", "state=PENDING", "state=%00", "state=%C3%A9",
                  "limit=99999999999999999999999"):
        result = admin.simulate_get("/api/cli/queues/simple/tasks", query_string=query, headers=ADMIN)

        assert result.status_code == 400, (query, result.text)
        assert query.split("=")[0] in errors_of(result)[0].lower(), query


def test_task_list_with_an_offset_beyond_any_redis_index_is_an_empty_page_or_400_never_503(admin, r):
    for state in STATES:
        seed_task(r, "inference.high", state)

        result = listed(admin, "inference.high", state=state, offset=2**63)

        assert result.status_code in (200, 400), (state, result.text)
        if result.status_code == 200:
            assert (result.json["total"], result.json["tasks"]) == (1, []), state
        else:
            assert "offset" in errors_of(result)[0], state


def test_task_list_of_a_paused_queue_shows_held_tasks_as_pending_in_enqueue_order(admin, r):
    before = enqueue(admin, "inference.low", 2)
    admin.simulate_post("/api/cli/queues/inference.low/pause", headers=ADMIN)
    during = enqueue(admin, "inference.low", 2)
    assert r.llen(keys.held("inference.low")) == 4

    every = listed(admin, "inference.low").json
    pages = [listed(admin, "inference.low", limit=3, offset=offset).json for offset in (0, 3)]

    assert ([t["id"] for t in every["tasks"]], every["total"]) == (before + during, 4)
    assert [t["id"] for page in pages for t in page["tasks"]] == before + during
    assert {t["state"] for t in every["tasks"]} == {"pending"}


def test_task_list_of_a_paused_queue_pages_across_held_and_pending(admin, r):
    held = enqueue(admin, "inference.low", 3)
    admin.simulate_post("/api/cli/queues/inference.low/pause", headers=ADMIN)
    forwarded = [seed_task(r, "inference.low", "pending") for _ in range(2)]  # a worker's forwarder, meanwhile

    pages = [[t["id"] for t in listed(admin, "inference.low", limit=2, offset=o).json["tasks"]] for o in (0, 2, 4)]

    assert pages == [held[:2], [held[2], forwarded[0]], [forwarded[1]]]


@pytest.mark.parametrize("state", STATES)
def test_task_list_shows_each_state_from_its_own_list(admin, r, state):
    ids = [seed_task(r, "inference.high", state, score=NOW + 10 * n + 10) for n in range(3)]
    for other in STATES:
        if other != state:
            seed_task(r, "inference.high", other)

    body = listed(admin, "inference.high", state=state).json

    assert (body["state"], body["total"]) == (state, 3)
    assert [t["id"] for t in body["tasks"]] == ids
    assert {t["state"] for t in body["tasks"]} == {state}


def test_task_list_of_scheduled_and_retry_tasks_tells_when_they_run_next(admin, r):
    retry = seed_task(r, "inference.high", "retry", score=NOW + 160, retried=2)
    scheduled = seed_task(r, "inference.high", "scheduled", score=NOW + 3600)

    in_retry = listed(admin, "inference.high", state="retry").json["tasks"]
    in_scheduled = listed(admin, "inference.high", state="scheduled").json["tasks"]

    assert [(t["id"], t["retried"], t["next_process_at"]) for t in in_retry] == [(retry, 2, rfc3339(NOW + 160))]
    assert [(t["id"], t["next_process_at"]) for t in in_scheduled] == [(scheduled, rfc3339(NOW + 3600))]


@pytest.mark.parametrize("queue", ["nosuch", "inference.nosuch", "simple.high"])
def test_task_list_of_an_unknown_queue_is_404(admin, queue):
    result = listed(admin, queue)

    assert result.status_code == 404
    assert errors_of(result)[0].startswith("queue not found: ")


def test_task_list_of_a_parent_with_several_sub_queues_is_400_naming_them(admin, r):
    enqueue(admin, "inference.high")

    result = listed(admin, "inference")

    assert result.status_code == 400
    assert errors_of(result) == ["queue: inference has sub-queues inference.high, inference.low; name one of them"]


def test_task_list_of_a_malformed_queue_is_400(admin):
    for queue in ("a..b", "x" * 70, "%00", "%E2%9C%93", "a.b.c"):
        result = listed(admin, queue)

        assert result.status_code == 400, queue
        assert errors_of(result)[0].startswith("queue: "), queue


def test_task_list_of_an_unconfigured_queue_known_to_asynq_works(admin, r):
    task_id = seed_task(r, "legacy.jobs", "completed", result=b'"done"')

    body = listed(admin, "legacy.jobs", state="completed").json

    assert [(t["id"], t["result"]) for t in body["tasks"]] == [(task_id, "done")]


# --- details ----------------------------------------------------------------------------------


def test_task_details_decode_payload_result_error_and_times(admin, r):
    done = seed_task(r, "inference.high", "completed", payload={"prompt": "p"}, result=b'{"text": "out", "n": 3}',
                     completed_at=NOW - 5)
    failed = seed_task(r, "inference.low", "archived", retried=3, error_msg="boom (will retry)",
                       last_failed_at=NOW - 9)
    waiting = seed_task(r, "inference.low", "retry", retried=1, score=NOW + 10, last_failed_at=NOW - 1)

    done_task = admin.simulate_get("/api/cli/queues/inference.high/tasks/" + done, headers=ADMIN).json["task"]
    failed_task = admin.simulate_get("/api/cli/queues/inference.low/tasks/" + failed, headers=ADMIN).json["task"]
    retry_task = admin.simulate_get("/api/cli/queues/inference.low/tasks/" + waiting, headers=ADMIN).json["task"]

    assert done_task == {"id": done, "queue": "inference.high", "type": "inference.high", "state": "completed",
                         "payload": {"prompt": "p"}, "result": {"text": "out", "n": 3}, "last_err": None,
                         "retried": 0, "max_retry": 3, "timeout": 300, "enqueued_at": rfc3339(NOW - 100),
                         "completed_at": rfc3339(NOW - 5), "last_failed_at": None, "next_process_at": None}
    assert (failed_task["state"], failed_task["last_err"], failed_task["retried"], failed_task["last_failed_at"]) == (
        "archived", "boom (will retry)", 3, rfc3339(NOW - 9))
    assert (retry_task["state"], retry_task["retried"], retry_task["next_process_at"]) == (
        "retry", 1, rfc3339(NOW + 10))


def test_task_details_of_a_plain_queue_name_look_in_its_default_sub_queue(admin, r):
    (task_id,) = enqueue(admin, "simple")

    result = admin.simulate_get("/api/cli/queues/simple/tasks/" + task_id, headers=ADMIN)

    assert (result.status_code, result.json["task"]["queue"]) == (200, "simple.default")


def test_task_details_and_delete_by_parent_name_find_the_sub_queue_that_holds_the_task(admin, r):
    (task_id,) = enqueue(admin, "inference.low")

    found = admin.simulate_get("/api/cli/queues/inference/tasks/" + task_id, headers=ADMIN)
    deleted = admin.simulate_delete("/api/cli/queues/inference/tasks/" + task_id, headers=ADMIN)

    assert (found.status_code, found.json["task"]["queue"]) == (200, "inference.low")
    assert (deleted.status_code, deleted.json["queue"]) == (200, "inference.low")
    assert r.exists(keys.task("inference.low", task_id), keys.task_queue(task_id),
                    keys.pending("inference.low")) == 0


@pytest.mark.parametrize("queue", ["inference.low", "simple", "nosuch.q", "nosuch"])
def test_task_details_in_the_wrong_queue_are_404(admin, r, queue):
    (task_id,) = enqueue(admin, "inference.high")

    result = admin.simulate_get("/api/cli/queues/%s/tasks/%s" % (queue, task_id), headers=ADMIN)

    assert result.status_code == 404
    assert errors_of(result) == ["task not found: %s in queue %s" % (task_id, full_queue_name(queue))]


def test_task_details_of_an_unknown_or_odd_id_are_404(admin, r):
    enqueue(admin, "inference.high")

    for task_id in ("nosuch", "%00", "x" * 5000, "%E2%9C%93", "a.b", "*", "..", "%FF"):
        result = admin.simulate_get("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

        assert result.status_code == 404, task_id
        errors_of(result)


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_of_a_pending_task_archives_it_as_canceled(admin, r):
    task_id, other = enqueue(admin, "inference.high", 2)
    before = task_traces(r, "inference.high", task_id)

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json == {"id": task_id, "queue": "inference.high", "state": "archived", "canceled": True}
    assert_canceled(r, "inference.high", task_id, before)
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [other.encode()]
    task = admin.simulate_get("/queue/" + task_id, headers=ADMIN).json["info"]
    assert (task["state"], task["last_err"]) == ("archived", "canceled")


def test_cancel_of_a_held_task_of_a_paused_queue_archives_it(admin, r):
    task_id, other = enqueue(admin, "simple", 2)
    admin.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN)
    before = task_traces(r, "simple.default", task_id)
    assert before["held"]

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert_canceled(r, "simple.default", task_id, before)
    assert r.lrange(keys.held("simple.default"), 0, -1) == [other.encode()]


@pytest.mark.parametrize("state", ["retry", "scheduled"])
def test_cancel_of_a_retry_or_scheduled_task_archives_it(admin, r, state):
    task_id = seed_task(r, "inference.low", state, retried=1)
    before = task_traces(r, "inference.low", task_id)

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert_canceled(r, "inference.low", task_id, before)
    assert r.exists(keys.state_key("inference.low", state)) == 0


def test_cancel_of_an_active_task_publishes_its_id_and_is_202(admin, r, redis_server):
    task_id = seed_task(r, "inference.high", "active")
    before = task_traces(r, "inference.high", task_id)
    with cancel_channel(redis_server) as published:
        result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

        assert result.status_code == 202, result.text
        assert (result.json["state"], result.json["canceled"]) == ("active", False)
        assert "runqy-worker cannot interrupt" in result.json["message"]
        assert published() == task_id
    assert task_traces(r, "inference.high", task_id) == before


def test_cancel_of_an_orphan_that_says_active_but_is_in_no_list_archives_it(admin, r):
    task_id = seed_task(r, "inference.high", "active")
    r.lrem(keys.active("inference.high"), 0, task_id)
    r.zrem(keys.lease("inference.high"), task_id)
    before = task_traces(r, "inference.high", task_id)

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert_canceled(r, "inference.high", task_id, before)


def test_cancel_of_a_task_a_worker_has_just_popped_is_202_and_leaves_it_alone(admin, r):
    # between the worker's BRPOP and its activation script the id is in no list, the hash says pending
    (task_id,) = enqueue(admin, "simple")
    assert r.rpop(keys.pending("simple.default")) == task_id.encode()
    before = task_traces(r, "simple.default", task_id)

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 202
    assert task_traces(r, "simple.default", task_id) == before


@pytest.mark.parametrize("state", ["completed", "archived"])
def test_cancel_of_a_finished_task_is_409_and_changes_nothing(admin, r, state):
    task_id = seed_task(r, "inference.high", state, error_msg="earlier failure")
    before = task_traces(r, "inference.high", task_id)

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 409
    assert errors_of(result) == ["task %s is already %s" % (task_id, state)]
    assert task_traces(r, "inference.high", task_id) == before


def test_cancel_of_an_unknown_task_is_404(admin, r):
    enqueue(admin, "simple")
    before = sorted(r.keys("*"))

    for task_id in ("nosuch", "%00", "y" * 5000, "%E2%9C%93", "..", "a.b"):
        result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

        assert result.status_code == 404, task_id
        errors_of(result)
    assert sorted(r.keys("*")) == before


def test_cancel_of_a_task_whose_hash_has_expired_is_404(admin, r):
    (task_id,) = enqueue(admin, "simple")
    r.delete(keys.task("simple.default", task_id))

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 404
    assert r.zcard(keys.archived("simple.default")) == 0


def test_cancel_twice_is_200_then_409(admin, r):
    (task_id,) = enqueue(admin, "simple")

    first = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)
    second = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert (first.status_code, second.status_code) == (200, 409)
    assert r.zcard(keys.archived("simple.default")) == 1


# --- delete -----------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "held", "scheduled", "retry", "archived", "completed"])
def test_delete_removes_the_task_from_every_list_with_its_hash_and_reverse_key(admin, r, state):
    task_id = seed_task(r, "inference.high", "pending" if state == "held" else state)
    if state == "held":
        admin.simulate_post("/api/cli/queues/inference.high/pause", headers=ADMIN)
    keep = seed_task(r, "inference.high", "pending" if state == "held" else state)
    assert task_traces(r, "inference.high", task_id)[state]

    result = admin.simulate_delete("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert result.json == {"id": task_id, "queue": "inference.high", "deleted": True}
    assert r.exists(keys.task("inference.high", task_id), keys.task_queue(task_id)) == 0
    traces = task_traces(r, "inference.high", task_id)
    assert not any(traces[k] for k in ("pending", "held", "active", "scheduled", "retry", "archived", "completed"))
    assert task_traces(r, "inference.high", keep)["hash"]
    assert admin.simulate_get("/queue/" + task_id, headers=ADMIN).status_code == 404


def test_delete_of_a_task_in_two_lists_removes_it_from_both(admin, r):
    # a retry forwarded while its id was still in :retry (crash between the two writes)
    task_id = seed_task(r, "inference.low", "retry")
    r.lpush(keys.pending("inference.low"), task_id)

    result = admin.simulate_delete("/api/cli/queues/inference.low/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200
    assert r.exists(keys.pending("inference.low"), keys.retry("inference.low"),
                    keys.task("inference.low", task_id), keys.task_queue(task_id)) == 0


def test_delete_of_a_plain_queue_name_deletes_from_its_default_sub_queue(admin, r):
    (task_id,) = enqueue(admin, "simple")

    result = admin.simulate_delete("/api/cli/queues/simple/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200
    assert r.exists(keys.pending("simple.default"), keys.task("simple.default", task_id),
                    keys.task_queue(task_id)) == 0


def test_delete_of_an_orphaned_task_that_says_active_but_is_in_no_list_removes_it(admin, r):
    # docs/worker-protocol.md §2.8 / §5.8: a lease-recovered orphan, or a crash mid-activation, leaves a hash
    # that still says "active" in no list at all; nothing runs it, and only delete can clean it up
    task_id = seed_task(r, "inference.high", "active")
    r.lrem(keys.active("inference.high"), 0, task_id)
    r.zrem(keys.lease("inference.high"), task_id)

    result = admin.simulate_delete("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 200, result.text
    assert r.exists(keys.task("inference.high", task_id), keys.task_queue(task_id)) == 0


@pytest.mark.parametrize("marker", ["state", "list"])
def test_delete_of_an_active_task_is_409_and_changes_nothing(admin, r, marker):
    task_id = seed_task(r, "inference.high", "active")
    if marker == "list":  # activated in the list, the state not yet written
        r.hset(keys.task("inference.high", task_id), "state", "pending")
    before = task_traces(r, "inference.high", task_id)

    result = admin.simulate_delete("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 409
    assert errors_of(result) == ["task %s is running; it cannot be deleted" % task_id]
    assert task_traces(r, "inference.high", task_id) == before
    assert r.zscore(keys.lease("inference.high"), task_id) is not None


def test_delete_of_an_unknown_task_is_404(admin, r):
    enqueue(admin, "inference.high")
    before = sorted(r.keys("*"))

    for task_id in ("nosuch", "%00", "z" * 5000, "%E2%9C%93"):
        result = admin.simulate_delete("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

        assert result.status_code == 404, task_id
        errors_of(result)
    assert sorted(r.keys("*")) == before


@pytest.mark.parametrize("queue", ["inference.low", "simple", "legacy.jobs"])
def test_delete_of_a_task_from_another_queue_is_404_and_leaves_it_alone(admin, r, queue):
    (task_id,) = enqueue(admin, "inference.high")
    before = task_traces(r, "inference.high", task_id)

    result = admin.simulate_delete("/api/cli/queues/%s/tasks/%s" % (queue, task_id), headers=ADMIN)

    assert result.status_code == 404
    assert errors_of(result)[0].startswith("task not found: " + task_id)
    assert task_traces(r, "inference.high", task_id) == before


def test_delete_of_a_malformed_queue_name_is_400(admin, r):
    (task_id,) = enqueue(admin, "inference.high")

    result = admin.simulate_delete("/api/cli/queues/inference..high/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 400
    assert r.exists(keys.task("inference.high", task_id)) == 1


def test_deleted_task_no_longer_counts_in_the_queue_statistics(admin, r):
    task_id, _ = enqueue(admin, "simple", 2)
    admin.simulate_delete("/api/cli/queues/simple/tasks/" + task_id, headers=ADMIN)

    stats = admin.simulate_get("/api/cli/queues/simple", headers=ADMIN).json

    assert stats["pending"] == 1
    assert listed(admin, "simple").json["total"] == 1


def test_delete_of_a_whole_state_of_a_parent_deletes_it_in_every_sub_queue_and_answers_the_counts(admin, r):
    doomed = [seed_task(r, "inference.high", "archived"), seed_task(r, "inference.high", "archived"),
              seed_task(r, "inference.low", "archived")]
    kept = [seed_task(r, "inference.high", "retry"), seed_task(r, "simple.default", "archived")]

    answer = admin.simulate_delete("/api/cli/queues/inference/tasks", params={"state": "archived"}, headers=ADMIN)

    assert answer.status_code == 200, answer.text
    assert answer.json == {"queue": "inference", "state": "archived", "deleted": 3,
                           "sub_queues": [{"name": "inference.high", "deleted": 2},
                                          {"name": "inference.low", "deleted": 1}]}
    assert not any(r.exists(keys.task_queue(t)) for t in doomed)
    assert all(r.exists(keys.task_queue(t)) for t in kept)
    assert admin.simulate_get("/api/cli/queues/inference", headers=ADMIN).json["archived"] == 0


def test_held_tasks_are_listed_and_deleted_alone_and_pending_lists_them_first(admin, r):
    held = enqueue(admin, "simple", 2)
    admin.simulate_post("/api/cli/queues/simple/pause", headers=ADMIN)
    pending = seed_task(r, "simple.default", "pending")  # pushed since, as a worker might see it

    def listed_ids(state: str) -> list[str]:
        answer = admin.simulate_get("/api/cli/queues/simple/tasks", params={"state": state}, headers=ADMIN)
        assert answer.json["total"] == len(answer.json["tasks"])
        return [t["id"] for t in answer.json["tasks"]]

    assert listed_ids("held") == held
    assert listed_ids("pending") == held + [pending]
    deleted = admin.simulate_delete("/api/cli/queues/simple/tasks", params={"state": "held"}, headers=ADMIN)
    assert deleted.json["deleted"] == 2
    assert listed_ids("pending") == [pending]


@pytest.mark.parametrize("params", [{"state": "active"}, {"state": "paused"}, {"state": "nope"}, {}])
def test_delete_of_a_whole_state_needs_a_state_that_is_not_active_and_changes_nothing_otherwise(admin, r, params):
    seed_task(r, "simple.default", "active")
    seed_task(r, "simple.default", "pending")
    before = snapshot(r)

    answer = admin.simulate_delete("/api/cli/queues/simple/tasks", params=params, headers=ADMIN)

    assert answer.status_code == 400
    assert "state" in errors_of(answer)[0]
    assert snapshot(r) == before


def test_delete_of_a_whole_state_of_an_unknown_queue_is_404(admin):
    answer = admin.simulate_delete("/api/cli/queues/nope/tasks", params={"state": "pending"}, headers=ADMIN)
    assert answer.status_code == 404


# --- auth --------------------------------------------------------------------------------------

ROUTES = [("POST", "/api/cli/tasks"), ("GET", "/api/cli/queues/simple/tasks"),
          ("GET", "/api/cli/queues/simple/tasks/{id}"), ("DELETE", "/api/cli/tasks/{id}"),
          ("DELETE", "/api/cli/queues/simple/tasks/{id}"), ("DELETE", "/api/cli/queues/simple/tasks?state=pending")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_task_routes_are_admin_only_and_a_refused_call_changes_nothing(admin, r, method, path):
    (task_id,) = enqueue(admin, "simple")
    before = task_traces(r, "simple.default", task_id)
    keys_before = sorted(r.keys("*"))

    for headers, status in ((WORKER, 403), (CLIENT, 403), ({}, 401), ({"Authorization": "Bearer nope"}, 401)):
        result = admin.simulate_request(method, path.format(id=task_id), headers=headers,
                                        json={"queue": "simple", "data": 1} if method == "POST" else None)

        assert result.status_code == status, headers
        errors_of(result)
    assert task_traces(r, "simple.default", task_id) == before
    assert sorted(r.keys("*")) == keys_before


def test_client_key_can_still_read_task_status_but_not_the_admin_view(admin, r):
    (task_id,) = enqueue(admin, "simple")

    assert admin.simulate_get("/queue/" + task_id, headers=CLIENT).status_code == 200
    assert admin.simulate_get("/api/cli/queues/simple/tasks/" + task_id, headers=CLIENT).status_code == 403


def test_wrong_methods_on_task_routes_are_json_405(admin):
    for method, path in (("GET", "/api/cli/tasks"), ("GET", "/api/cli/tasks/x"),
                         ("POST", "/api/cli/queues/simple/tasks")):
        assert_json_405(admin, method, path)


def test_canceled_task_reads_as_archived_with_last_err_canceled_through_the_seed_route(admin, r):
    (task_id,) = enqueue(admin, "simple")
    admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    info = admin.simulate_get("/queue/%s/simple" % task_id, headers=ADMIN).json["info"]

    assert (info["state"], info["last_err"], info["last_failed_at"]) == ("archived", "canceled", rfc3339(NOW))
