"""The core routes over the falcon TestClient: health, enqueue, batch enqueue,
task status, worker registration, auth and bad input.

Every mutating call is followed by a look at what Redis holds; every refused
call by a check that Redis holds exactly what it held before.
"""

import base64
import dataclasses
import json
import time
import uuid

import falcon.testing
import pytest

from runqy import keys, protobuf
from runqy.app import create_app
from runqy.store import rfc3339
from tests.conftest import ADMIN, ADMIN_KEY, CLIENT, CLIENT_KEY, WORKER, WORKER_KEY, snapshot, strict_json

TASK_HASH_FIELDS = {b"msg", b"state", b"pending_since", b"enqueued_at", b"ttl_completed", b"ttl_archived",
                    b"pending_timeout", b"active_timeout"}


def errors_of(res) -> list[str]:
    """The messages of an error answer, after checking its shape."""
    assert res.headers["content-type"].startswith("application/json"), res.headers
    body = res.json
    assert set(body) == {"errors"}, body
    assert body["errors"] and all(isinstance(m, str) and m for m in body["errors"]), body
    return body["errors"]


def add(client, body, headers=ADMIN):
    return client.simulate_post("/queue/add", json=body, headers=headers)


def stored(r, queue: str, task_id: str) -> tuple[dict, protobuf.TaskMessage]:
    fields = r.hgetall(keys.task(queue, task_id))
    assert fields, "no task hash for %s in %s" % (task_id, queue)
    return fields, protobuf.decode(fields[b"msg"])


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
    assert 0 < r.ttl(keys.task_queue(task_id)) <= 30 * 24 * 3600
    assert r.sismember(keys.QUEUES, queue)
    return fields


@pytest.fixture
def roomy_client(settings, store) -> falcon.testing.TestClient:
    """A client whose body limit (1 MiB) lets very large or deep bodies reach the parser."""
    return falcon.testing.TestClient(create_app(dataclasses.replace(settings, max_body_size=1 << 20), store=store))


# --- health ----------------------------------------------------------------------------


def test_health_is_public_and_ok(client):
    res = client.simulate_get("/health")
    assert res.status_code == 200
    assert res.json == {"status": "ok"}


def test_healthz_is_public_and_reports_redis_up(client, r):
    r.set("probe", "1")
    res = client.simulate_get("/healthz")
    assert res.status_code == 200
    assert res.json == {"status": "ok", "redis": True}
    assert r.get("probe") == b"1"


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
    assert (fields[b"ttl_completed"], fields[b"ttl_archived"], fields[b"pending_timeout"]) == (
        b"86400", b"259200", b"0")
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
    assert (info["queue"], info["timeout"], info["max_retry"]) == ("simple.default", 1800, 1)
    assert_enqueued(r, "simple.default", info["id"], b'{"prompt":"x"}', 1800, 1)


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
                    b'{"payload":{"iterations":3,"sleep":0.1}}', 1800, 1)


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
    assert_enqueued(r, "simple.default", res.json["info"]["id"], raw, 1800, 1)


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
    assert errors_of(res) == ["queue not found: nope.default"]
    res = add(client, {"queue": "inference.medium", "data": {}})
    assert res.status_code == 404
    assert errors_of(res) == ["queue not found: inference.medium"]
    res = add(client, {"queue": "nope.x", "task_id": "mine", "data": {}})
    assert res.status_code == 404
    assert errors_of(res) == ["queue not found: nope.x"]
    assert snapshot(r) == before


@pytest.mark.parametrize("extra", [
    {"process_at": "2030-01-01T00:00:00Z"},
    {"delay": 60},
    {"unique_for": 300},
])
def test_enqueue_scheduled_or_unique_is_400_not_supported_and_writes_nothing(client, r, extra):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": {}, **extra})
    assert res.status_code == 400
    (message,) = errors_of(res)
    assert "$.%s" % next(iter(extra)) in message and "not supported" in message
    assert snapshot(r) == before


def test_admin_cli_tasks_enqueues_like_queue_add(client, r):
    res = client.simulate_post("/api/cli/tasks", json={"queue": "simple", "data": [1]}, headers=ADMIN)
    assert res.status_code == 200, res.text
    assert res.json["info"]["queue"] == "simple.default"
    assert_enqueued(r, "simple.default", res.json["info"]["id"], b"[1]", 1800, 1)


# --- POST /queue/add-batch ----------------------------------------------------------------------


def batch(client, body, headers=ADMIN):
    return client.simulate_post("/queue/add-batch", json=body, headers=headers)


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
        assert_enqueued(r, "simple.default", task_id, payload, 1800, 1)


def test_batch_of_1000_jobs_is_accepted_and_all_are_written(client, r):
    res = batch(client, {"queue": "simple", "jobs": [{"n": i} for i in range(1000)]})
    assert res.status_code == 200, res.text
    ids = res.json["task_ids"]
    assert res.json["enqueued"] == 1000 and len(set(ids)) == 1000
    assert r.llen(keys.pending("simple.default")) == 1000
    assert len(list(r.scan_iter(keys.task_prefix("simple.default") + "*", count=1000))) == 1000
    assert stored(r, "simple.default", ids[999])[1].payload == b'{"n":999}'


def test_batch_of_1001_jobs_is_400_naming_the_limit_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "jobs": list(range(1001))})
    assert res.status_code == 400
    (message,) = errors_of(res)
    assert "$.jobs" in message and "1000" in message
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
    assert errors_of(res) == ["queue not found: ghost.default"]
    assert snapshot(r) == before


def test_batch_bad_request_timeout_is_400_and_writes_nothing(client, r):
    before = snapshot(r)
    res = batch(client, {"queue": "simple", "timeout": "300", "jobs": [1]})
    assert res.status_code == 400
    assert any(m.startswith("$.timeout") for m in errors_of(res))
    assert snapshot(r) == before


# --- GET /queue/{id} ----------------------------------------------------------------------------


def status(client, path, headers=ADMIN):
    return client.simulate_get(path, headers=headers)


def enqueue_one(client, queue="inference.high", data=None) -> str:
    res = add(client, {"queue": queue, "data": {"q": 1} if data is None else data})
    assert res.status_code == 200, res.text
    return res.json["info"]["id"]


def test_status_of_a_pending_task_reads_every_field(client, r):
    task_id = enqueue_one(client, data={"q": [1, "a"]})
    res = status(client, "/queue/" + task_id)
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
    task_id = enqueue_one(client)
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    # what the worker does on success (docs/worker-protocol.md §2.9)
    r.lrem(keys.pending("inference.high"), 0, task_id)
    r.hdel(key, "pending_since")
    r.hset(key, mapping={"state": "completed", "completed_at": now, "result": '{"answer": 42, "ok": true}'})
    r.zadd(keys.completed("inference.high"), {task_id: now + 86400})
    info = status(client, "/queue/" + task_id).json["info"]
    assert (info["state"], info["result"], info["completed_at"]) == ("completed", {"answer": 42, "ok": True},
                                                                      rfc3339(now))
    assert info["payload"] == {"q": 1}


def test_status_of_a_completed_task_with_a_null_or_text_result(client, r):
    task_id = enqueue_one(client)
    key = keys.task("inference.high", task_id)
    r.hset(key, mapping={"state": "completed", "result": "null"})
    assert status(client, "/queue/" + task_id).json["info"]["result"] is None
    r.hset(key, "result", "not json")
    assert status(client, "/queue/" + task_id).json["info"]["result"] == "not json"


def test_status_of_an_archived_task_shows_error_msg_as_last_err(client, r):
    task_id = enqueue_one(client)
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    r.hset(key, mapping={"state": "archived", "error_msg": "permanent failure: boom", "last_failed_at": now})
    r.zadd(keys.archived("inference.high"), {task_id: now + 259200})
    info = status(client, "/queue/" + task_id).json["info"]
    assert (info["state"], info["last_err"], info["last_failed_at"]) == (
        "archived", "permanent failure: boom", rfc3339(now))


def test_status_of_a_retry_task_shows_the_next_attempt_from_the_retry_zset(client, r):
    task_id = enqueue_one(client)
    key = keys.task("inference.high", task_id)
    now = int(time.time())
    r.hincrby(key, "retried", 1)
    r.hset(key, mapping={"state": "retry", "last_failed_at": now})
    r.zadd(keys.retry("inference.high"), {task_id: now + 10})
    info = status(client, "/queue/" + task_id).json["info"]
    assert (info["state"], info["retried"], info["next_process_at"], info["last_failed_at"]) == (
        "retry", 1, rfc3339(now + 10), rfc3339(now))
    assert info["last_err"] is None


def test_status_retried_is_the_larger_of_hash_field_and_msg_field(client, r):
    task_id = enqueue_one(client)
    key = keys.task("inference.high", task_id)
    msg = protobuf.decode(r.hget(key, "msg"))
    msg.retried = 2
    r.hset(key, mapping={"msg": protobuf.encode(msg), "retried": 1, "state": "retry"})
    assert status(client, "/queue/" + task_id).json["info"]["retried"] == 2


def test_status_in_seed_form_normalises_a_bare_parent_name(client, r):
    task_id = enqueue_one(client, queue="simple")
    for name in ("simple", "simple.default"):
        res = status(client, "/queue/%s/%s" % (task_id, name))
        assert res.status_code == 200, res.text
        assert (res.json["info"]["id"], res.json["info"]["queue"]) == (task_id, "simple.default")


def test_status_in_seed_form_finds_a_task_whose_reverse_key_is_gone(client, r):
    task_id = enqueue_one(client)
    r.delete(keys.task_queue(task_id))
    assert status(client, "/queue/" + task_id).status_code == 404
    res = status(client, "/queue/%s/inference.high" % task_id)
    assert res.status_code == 200 and res.json["info"]["state"] == "pending"


def test_status_in_seed_form_with_the_wrong_queue_is_404(client, r):
    task_id = enqueue_one(client, queue="inference.high")
    for name in ("inference.low", "inference", "simple"):
        res = status(client, "/queue/%s/%s" % (task_id, name))
        assert res.status_code == 404, name
        assert errors_of(res) == ["task not found: %s" % task_id]


@pytest.mark.parametrize("name", ["-bad", "a.b.c", "has space", "x" * 65, "a..b", "_x", "q.%C3%BC"])
def test_status_in_seed_form_with_a_malformed_queue_name_is_400(client, r, name):
    task_id = enqueue_one(client)
    res = status(client, "/queue/%s/%s" % (task_id, name))
    assert res.status_code == 400, res.text
    assert any("queue" in m and "not a valid queue name" in m for m in errors_of(res)), res.text


@pytest.mark.parametrize("task_id", ["no-such-task", str(uuid.uuid4()), "x" * 300])
def test_status_of_an_unknown_task_is_404(client, r, task_id):
    res = status(client, "/queue/" + task_id)
    assert res.status_code == 404
    assert errors_of(res)[0].startswith("task not found: ")


def test_status_of_a_task_whose_hash_expired_is_404(client, r):
    task_id = enqueue_one(client)
    r.delete(keys.task("inference.high", task_id))
    assert r.exists(keys.task_queue(task_id))
    res = status(client, "/queue/" + task_id)
    assert res.status_code == 404
    assert errors_of(res) == ["task not found: %s" % task_id]


def test_status_of_a_deeply_nested_payload_reads_it_back(roomy_client, r):
    """A payload the server accepted must be readable again, not a 500."""
    deep: list = []
    for _ in range(600):
        deep = [deep]
    task_id = enqueue_one(roomy_client, queue="simple", data=deep)
    res = status(roomy_client, "/queue/" + task_id)
    assert res.status_code == 200, res.text
    assert res.json["info"]["payload"] == deep


@pytest.mark.parametrize("depth", [600, 900, 990, 5000])
def test_status_of_a_deeply_nested_worker_result_is_200_not_500(client, r, depth):
    """The worker stores whatever JSON text the task returned; reading it back must not fail."""
    task_id = enqueue_one(client)
    r.hset(keys.task("inference.high", task_id),
           mapping={"state": "completed", "result": "[" * depth + "]" * depth})
    res = status(client, "/queue/" + task_id)
    assert res.status_code == 200, res.text
    result = res.json["info"]["result"]
    assert result == "[" * depth + "]" * depth or json.dumps(result).replace(" ", "") == "[" * depth + "]" * depth


# --- POST /worker/register ---------------------------------------------------------------------


def register(client, body, headers=WORKER):
    return client.simulate_post("/worker/register", json=body, headers=headers)


def assert_registration_types(answer: dict, queue: str) -> None:
    """Every field the worker's Go decoder reads has the type it expects (docs/worker-protocol.md §1.4)."""
    redis_, q, dep = answer["redis"], answer["queue"], answer["deployment"]
    assert isinstance(redis_["addr"], str) and redis_["addr"]
    assert isinstance(redis_["password"], str)
    assert isinstance(redis_["db"], int) and not isinstance(redis_["db"], bool)
    assert isinstance(redis_["use_tls"], bool)
    assert q["name"] == queue
    assert isinstance(q["priority"], int) and not isinstance(q["priority"], bool) and q["priority"] >= 1
    subs = answer["sub_queues"]
    assert subs and all(set(s) == {"name", "priority"} for s in subs)
    assert all(isinstance(s["name"], str) and "." in s["name"] for s in subs)
    assert all(isinstance(s["priority"], int) and not isinstance(s["priority"], bool) and s["priority"] >= 1
               for s in subs)
    assert [s["priority"] for s in subs] == sorted((s["priority"] for s in subs), reverse=True)
    for name in ("git_url", "branch", "startup_cmd"):
        assert isinstance(dep[name], str) and dep[name], name
    for name in ("code_path", "requirements_file", "mode"):
        assert isinstance(dep[name], str), name
    assert isinstance(dep["startup_timeout_secs"], int) and not isinstance(dep["startup_timeout_secs"], bool)
    assert dep["redis_storage"] is True
    assert isinstance(dep["vaults"], list)
    assert isinstance(answer["vaults"], dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer["vaults"].items())
    assert isinstance(answer.get("git_token", ""), str)


def test_register_worker_body_for_a_parent_gets_all_its_sub_queues(client, r, settings):
    before = snapshot(r)
    res = register(client, {"queue": "inference", "hostname": "gpu-01", "os": "linux", "version": "1.4.0"})
    assert res.status_code == 200, res.text
    answer = res.json
    assert_registration_types(answer, "inference")
    assert answer["redis"] == {"addr": "127.0.0.1:%d" % settings.redis_port, "password": "", "db": 0,
                               "use_tls": False}
    assert answer["sub_queues"] == [{"name": "inference.high", "priority": 10},
                                    {"name": "inference.low", "priority": 2}]
    dep = answer["deployment"]
    assert (dep["git_url"], dep["branch"], dep["startup_cmd"], dep["startup_timeout_secs"],
            dep["requirements_file"], dep["mode"]) == (
        "https://github.com/example/inference-worker.git", "main", "python main.py", 300, "requirements.txt",
        "long_running")
    assert "git_token" not in answer
    assert snapshot(r) == before


def test_register_seed_body_with_worker_id_is_accepted(client, r):
    res = register(client, {"worker_id": "worker-abc123", "queue": "inference"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "inference")


def test_register_one_sub_queue_gets_only_that_one(client, r):
    res = register(client, {"queue": "inference.high", "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "inference.high")
    assert res.json["sub_queues"] == [{"name": "inference.high", "priority": 10}]
    assert res.json["queue"]["priority"] == 10


def test_register_plain_queue_gets_its_default_sub_queue_and_redis_storage_true(client, r):
    res = register(client, {"queue": "simple", "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 200, res.text
    assert_registration_types(res.json, "simple")
    assert res.json["sub_queues"] == [{"name": "simple.default", "priority": 1}]
    assert res.json["deployment"]["mode"] == "one_shot"
    assert res.json["deployment"]["redis_storage"] is True


def test_register_hands_out_the_public_redis_address_when_set(settings, store, r):
    public = falcon.testing.TestClient(create_app(
        dataclasses.replace(settings, redis_public_addr="redis.example.net:6380"), store=store))
    res = register(public, {"queue": "inference"})
    assert res.status_code == 200, res.text
    assert res.json["redis"]["addr"] == "redis.example.net:6380"


@pytest.mark.parametrize("queue", ["nope", "inference.medium", "nope.default"])
def test_register_unknown_queue_is_404(client, r, queue):
    res = register(client, {"queue": queue, "hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 404
    assert errors_of(res) == ["queue not found: %s" % queue]


@pytest.mark.parametrize("queue", ["", "-x", "a.b.c", "bad name", "x" * 65, 7, None])
def test_register_malformed_queue_name_is_400(client, r, queue):
    res = register(client, {"queue": queue, "hostname": "h"})
    assert res.status_code == 400
    assert any(m.startswith("$.queue") for m in errors_of(res))


def test_register_without_queue_is_400(client, r):
    res = register(client, {"hostname": "h", "os": "linux", "version": "dev"})
    assert res.status_code == 400
    assert any("queue" in m for m in errors_of(res))


def test_register_with_a_non_string_hostname_is_400(client, r):
    res = register(client, {"queue": "inference", "hostname": 12})
    assert res.status_code == 400
    assert any(m.startswith("$.hostname") for m in errors_of(res))


# --- auth ------------------------------------------------------------------------------------------

ROUTES = [
    ("POST", "/queue/add", {"queue": "simple", "data": 1}),
    ("POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    ("GET", "/queue/some-id", None),
    ("GET", "/queue/some-id/simple", None),
    ("POST", "/worker/register", {"queue": "simple"}),
    ("POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    ("GET", "/healthz", None),
]


def call(client, method, path, body, headers):
    return client.simulate_request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("method, path, body", [route for route in ROUTES if route[1] != "/healthz"])
def test_missing_key_is_401_with_www_authenticate_and_writes_nothing(client, r, method, path, body):
    before = snapshot(r)
    res = call(client, method, path, body, {})
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    assert errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"}, {"X-API-Key": "wrong"},
                                     {"Authorization": "Basic " + ADMIN_KEY}, {"Authorization": "Bearer"},
                                     {"Authorization": "Bearer " + ADMIN_KEY + "x"}])
def test_unknown_key_is_401_and_writes_nothing(client, r, headers):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": 1}, headers=headers)
    assert res.status_code == 401
    assert res.headers["www-authenticate"] == "Bearer"
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer " + CLIENT_KEY}, {"X-API-Key": CLIENT_KEY}])
def test_bearer_and_x_api_key_both_authenticate(client, r, headers):
    res = add(client, {"queue": "simple", "data": 1}, headers=headers)
    assert res.status_code == 200, res.text
    assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.parametrize("headers, method, path, body", [
    (WORKER, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (WORKER, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (WORKER, "GET", "/queue/some-id", None),
    (WORKER, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    (CLIENT, "POST", "/worker/register", {"queue": "simple"}),
    (CLIENT, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
])
def test_known_key_on_a_route_of_another_role_is_403_and_writes_nothing(client, r, headers, method, path, body):
    before = snapshot(r)
    res = call(client, method, path, body, headers)
    assert res.status_code == 403
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("headers, method, path, body", [
    (WORKER, "POST", "/worker/register", {"queue": "simple"}),
    (CLIENT, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (CLIENT, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (ADMIN, "POST", "/queue/add", {"queue": "simple", "data": 1}),
    (ADMIN, "POST", "/queue/add-batch", {"queue": "simple", "jobs": [1]}),
    (ADMIN, "POST", "/worker/register", {"queue": "simple"}),
    (ADMIN, "POST", "/api/cli/tasks", {"queue": "simple", "data": 1}),
    ({"X-API-Key": WORKER_KEY}, "POST", "/worker/register", {"queue": "simple"}),
])
def test_key_of_an_allowed_role_is_served(client, r, headers, method, path, body):
    res = call(client, method, path, body, headers)
    assert res.status_code == 200, res.text
    if path != "/worker/register":
        assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.parametrize("headers", [ADMIN, CLIENT])
def test_task_status_is_served_to_admin_and_client_keys(client, r, headers):
    task_id = enqueue_one(client)
    res = status(client, "/queue/" + task_id, headers=headers)
    assert res.status_code == 200 and res.json["info"]["id"] == task_id


def test_health_routes_need_no_key(client, r):
    assert client.simulate_get("/health").status_code == 200
    assert client.simulate_get("/healthz").status_code == 200


# --- bad input -------------------------------------------------------------------------------------


def post_raw(client, path, body: bytes | str, headers=ADMIN):
    return client.simulate_post(path, body=body, headers={**headers, "Content-Type": "application/json"})


@pytest.mark.parametrize("path", ["/queue/add", "/queue/add-batch", "/worker/register"])
def test_malformed_json_is_400_naming_line_and_column_and_writes_nothing(client, r, path):
    before = snapshot(r)
    res = post_raw(client, path, '{\n  "queue": "simple",\n  "data": [1, 2,\n}')
    assert res.status_code == 400
    (message,) = errors_of(res)
    assert "line 4 column 1" in message
    assert snapshot(r) == before


@pytest.mark.parametrize("body", [b"", b"   \n"])
@pytest.mark.parametrize("path", ["/queue/add", "/queue/add-batch", "/worker/register"])
def test_empty_body_is_400(client, r, path, body):
    before = snapshot(r)
    res = post_raw(client, path, body)
    assert res.status_code == 400
    assert any("empty" in m for m in errors_of(res))
    assert snapshot(r) == before


@pytest.mark.parametrize("body", ['[{"queue": "simple"}]', '"simple"', "42", "null", "true"])
@pytest.mark.parametrize("path", ["/queue/add", "/queue/add-batch", "/worker/register"])
def test_a_body_that_is_not_an_object_is_400(client, r, path, body):
    before = snapshot(r)
    res = post_raw(client, path, body)
    assert res.status_code == 400
    assert any(m.startswith("$") and "object" in m for m in errors_of(res)), res.text
    assert snapshot(r) == before


def test_a_body_that_is_not_utf8_is_400(client, r):
    before = snapshot(r)
    res = post_raw(client, "/queue/add", b'{"queue": "simple", "data": "\xff\xfe"}')
    assert res.status_code == 400
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("timeout", ["300", 1.5, 0, -5, True, 2592001, None])
def test_wrong_timeout_is_400_naming_the_field_and_writes_nothing(client, r, timeout):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": {}, "timeout": timeout})
    assert res.status_code == 400
    assert any(m.startswith("$.timeout") for m in errors_of(res)), res.text
    assert snapshot(r) == before


@pytest.mark.parametrize("field, value", [("max_retry", "3"), ("max_retry", -1), ("task_id", "has space"),
                                          ("task_id", "x" * 129), ("task_id", 5), ("task_id", "")])
def test_wrong_optional_field_is_400_naming_it_and_writes_nothing(client, r, field, value):
    before = snapshot(r)
    res = add(client, {"queue": "simple", "data": {}, field: value})
    assert res.status_code == 400
    assert any(m.startswith("$." + field) for m in errors_of(res)), res.text
    assert snapshot(r) == before


def test_several_problems_are_each_reported(client, r):
    res = add(client, {"queue": "-bad", "timeout": "x", "max_retry": -1})
    assert res.status_code == 400
    messages = errors_of(res)
    for path in ("$.queue", "$.timeout", "$.max_retry"):
        assert any(m.startswith(path) for m in messages), (path, messages)


@pytest.mark.parametrize("queue", ["", "-x", "a.b.c", "has space", "x" * 65, "ünï", 5, None, ["simple"]])
def test_invalid_queue_name_on_enqueue_is_400_and_writes_nothing(client, r, queue):
    before = snapshot(r)
    res = add(client, {"queue": queue, "data": {}})
    assert res.status_code == 400
    assert any(m.startswith("$.queue") for m in errors_of(res)), res.text
    res = batch(client, {"queue": queue, "jobs": [1]})
    assert res.status_code == 400
    assert any(m.startswith("$.queue") for m in errors_of(res)), res.text
    assert snapshot(r) == before


def test_missing_queue_on_enqueue_is_400(client, r):
    before = snapshot(r)
    res = add(client, {"data": {}})
    assert res.status_code == 400
    assert any("queue" in m for m in errors_of(res))
    assert snapshot(r) == before


def test_body_over_the_limit_is_413_and_writes_nothing(client, r, settings):
    before = snapshot(r)
    big = {"queue": "simple", "data": "x" * settings.max_body_size}
    for path in ("/queue/add", "/queue/add-batch", "/worker/register"):
        res = client.simulate_post(path, json=big, headers=ADMIN)
        assert res.status_code == 413, path
        assert any(str(settings.max_body_size) in m for m in errors_of(res))
    assert snapshot(r) == before


def test_body_just_under_the_limit_is_accepted(client, r, settings):
    prefix = '{"queue":"simple","data":"'
    body = prefix + "x" * (settings.max_body_size - len(prefix) - 2) + '"}'
    assert len(body) == settings.max_body_size
    res = post_raw(client, "/queue/add", body)
    assert res.status_code == 200, res.text[:200]
    assert r.llen(keys.pending("simple.default")) == 1


@pytest.mark.parametrize("path", ["/nope", "/queue", "/api/cli/nothing", "/queue/a/b/c"])
def test_unknown_route_is_a_json_404(client, r, path):
    res = client.simulate_get(path, headers=ADMIN)
    assert res.status_code == 404
    errors_of(res)


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", "/queue/add", {"POST"}),
    ("PUT", "/queue/add-batch", {"POST"}),
    ("GET", "/worker/register", {"POST"}),
    ("DELETE", "/queue/some-id", {"GET"}),
    ("POST", "/health", {"GET"}),
])
def test_wrong_method_is_a_json_405_with_allow(client, r, method, path, allowed):
    before = snapshot(r)
    res = client.simulate_request(method, path, headers=ADMIN, json={"queue": "simple", "data": 1})
    assert res.status_code == 405
    assert allowed <= {m.strip() for m in res.headers["allow"].split(",")}
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("depth", [30000])
def test_deeply_nested_json_within_the_limit_is_400(client, r, depth):
    before = snapshot(r)
    res = post_raw(client, "/queue/add", '{"queue":"simple","data":' + "[" * depth + "]" * depth + "}")
    assert res.status_code == 400
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("body", [
    "[" * 100000 + "]" * 100000,
    '{"queue":"simple","data":' + "[" * 100000 + "]" * 100000 + "}",
    '{"queue":"simple","jobs":[' + '{"a":' * 50000 + "1" + "}" * 50000 + "]}",
])
@pytest.mark.parametrize("path", ["/queue/add", "/queue/add-batch", "/worker/register"])
def test_100000_nested_levels_are_400_not_500(roomy_client, r, path, body):
    before = snapshot(r)
    res = post_raw(roomy_client, path, body)
    assert res.status_code == 400
    errors_of(res)
    assert snapshot(r) == before


@pytest.mark.parametrize("depth", range(850, 1000, 10))
def test_nesting_near_the_parser_limit_is_200_or_400_never_500(roomy_client, r, depth):
    res = post_raw(roomy_client, "/queue/add", '{"queue":"simple","data":' + "[" * depth + "]" * depth + "}")
    assert res.status_code in (200, 400), res.text
    assert r.llen(keys.pending("simple.default")) == (1 if res.status_code == 200 else 0)


# --- hostile JSON ----------------------------------------------------------------------------------

VAULT_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
DEPLOYMENT = '{"git_url": "https://github.com/example/w.git", "startup_cmd": "run"}'
#: Every route that reads a body: a body it accepts with ``GOOD`` in place of ``%s``, and ``GOOD``.
BODY_ROUTES = [
    ("/queue/add", '{"queue": "simple", "data": {"x": %s}}', "1"),
    ("/api/cli/tasks", '{"queue": "simple", "data": {"x": %s}}', "1"),
    ("/queue/add-batch", '{"queue": "simple", "jobs": [{"x": %s}]}', "1"),
    ("/worker/register", '{"queue": "simple", "extra": %s}', "1"),
    ("/api/cli/configs", '{"name": "fresh", "priority": %s, "deployment": ' + DEPLOYMENT + "}", "1"),
    ("/api/vaults", '{"name": "fresh", "description": %s}', '"new"'),
    ("/api/vaults/prod/entries", '{"key": "TOKEN", "value": %s}', '"s3cret"'),
]
#: Numbers strict JSON parsers refuse or Python cannot read, and what the 400 must name.
HOSTILE_NUMBERS = [
    pytest.param("1" * 4301, "more than 4300 digits", id="4301 digits"),
    pytest.param("-" + "9" * 5000, "more than 4300 digits", id="-5000 digits"),
    pytest.param("NaN", "NaN", id="NaN"),
    pytest.param("Infinity", "Infinity", id="Infinity"),
    pytest.param("-Infinity", "-Infinity", id="-Infinity"),
    pytest.param("1e400", "too large for a double: 1e400", id="1e400"),
    pytest.param("-1e400", "too large for a double: -1e400", id="-1e400"),
    pytest.param("1" * 5000 + ".5", "too large for a double", id="5000-digit decimal"),
    pytest.param('[1, {"deeper": [NaN]}]', "NaN", id="nested NaN"),
]


@pytest.fixture
def body_client(settings, store) -> falcon.testing.TestClient:
    """A client with vaults on and a vault "prod" to add entries to."""
    client = falcon.testing.TestClient(
        create_app(dataclasses.replace(settings, vault_master_key=VAULT_MASTER_KEY), store=store))
    assert client.simulate_post("/api/vaults", json={"name": "prod"}, headers=ADMIN).status_code == 201
    return client


@pytest.mark.parametrize("path, body, good", BODY_ROUTES, ids=[route[0] for route in BODY_ROUTES])
def test_each_body_route_accepts_its_body_with_an_ordinary_value(body_client, r, path, body, good):
    res = post_raw(body_client, path, body % good)
    assert res.status_code in (200, 201), res.text


@pytest.mark.parametrize("number, named", HOSTILE_NUMBERS)
@pytest.mark.parametrize("path, body, good", BODY_ROUTES, ids=[route[0] for route in BODY_ROUTES])
def test_a_nan_infinity_or_oversized_number_is_400_naming_it_and_writes_nothing(
        body_client, r, path, body, good, number, named):
    before = snapshot(r)
    res = post_raw(body_client, path, body % number)
    assert res.status_code == 400, res.text[:300]
    assert any(named in m for m in errors_of(res)), res.text[:300]
    assert snapshot(r) == before


def test_numbers_strict_json_accepts_are_stored_and_read_back_exactly(client, r):
    numbers = "[%s, -%s, 1.7976931348623157e308, 5e-324, -0.0, 1.5, 0.1]" % ("1" * 4300, "9" * 4300)
    res = post_raw(client, "/queue/add", '{"queue": "simple", "data": %s}' % numbers)
    assert res.status_code == 200, res.text[:300]
    task_id = res.json["info"]["id"]
    _, msg = stored(r, "simple.default", task_id)
    assert json.loads(msg.payload) == json.loads(numbers)

    info = strict_json(status(client, "/queue/" + task_id).text)["info"]
    assert info["payload"] == [int("1" * 4300), -int("9" * 4300), 1.7976931348623157e308, 5e-324, -0.0, 1.5, 0.1]


def test_stored_nan_and_infinity_are_answered_as_null(client, r):
    """A worker (or an asynq client of another language) may write them straight into Redis."""
    task_id = enqueue_one(client, queue="simple")
    r.hset(keys.task("simple.default", task_id), mapping={
        "state": "completed", "result": '{"x": NaN, "y": [Infinity, -Infinity, 1e400, -1e400], "ok": 1.5}'})
    r.hset(keys.worker("w-1"), mapping={"worker_id": "w-1", "status": "running", "last_beat": int(time.time()),
                                        "metrics": '{"load": NaN}'})
    r.rpush(keys.worker_logs("w-1"), '{"level": "info", "took": Infinity}')
    expected = {"x": None, "y": [None, None, None, None], "ok": 1.5}

    task = strict_json(status(client, "/queue/" + task_id).text)["info"]
    listed = strict_json(status(client, "/api/cli/queues/simple/tasks?state=pending").text)["tasks"]
    one = strict_json(status(client, "/api/cli/queues/simple/tasks/" + task_id).text)["task"]
    workers = strict_json(status(client, "/api/cli/workers").text)["workers"]
    worker = strict_json(status(client, "/api/cli/workers/w-1").text)

    assert task["result"] == expected and one["result"] == expected
    assert [t["result"] for t in listed] == [expected]
    assert [w["metrics"] for w in workers] == [{"load": None}]
    assert worker["metrics"] == {"load": None} and worker["logs"] == [{"level": "info", "took": None}]
