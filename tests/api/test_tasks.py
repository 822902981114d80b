"""Task administration under /api/cli: enqueue, listing, details, cancel and delete
(docs/product.md §5, docs/worker-protocol.md §3.1-§3.2).

Tasks in states only a worker produces are seeded by hand as runqy-worker writes
them; every mutating call is followed by a look at the raw Redis keys.
"""

import json

import falcon.testing
import pytest

from runqy import keys, protobuf
from runqy.app import create_app
from runqy.store import Store, connect
from tests.admin_helpers import NOW, TTL_ARCHIVED, errors_of, pinned_client, rfc3339, seed_task, task_traces
from tests.conftest import ADMIN, CLIENT, WORKER, wait_for

STATES = ("pending", "active", "scheduled", "retry", "archived", "completed")


@pytest.fixture
def admin(settings, store):
    return pinned_client(settings)


def enqueue(client, queue: str, n: int = 1, path: str = "/api/cli/tasks") -> list[str]:
    ids = []
    for i in range(n):
        result = client.simulate_post(path, json={"queue": queue, "data": {"i": i}}, headers=ADMIN)
        assert result.status_code == 200, result.text
        ids.append(result.json["info"]["id"])
    return ids


def listed(client, queue: str, **params) -> falcon.testing.Result:
    query = "&".join("%s=%s" % item for item in params.items())
    return client.simulate_get("/api/cli/queues/%s/tasks" % queue, query_string=query, headers=ADMIN)


# --- enqueue ----------------------------------------------------------------------------------


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
    assert 0 < r.ttl(keys.task_queue("task-via-admin")) <= 30 * 24 * 3600


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
    assert errors_of(result) == ["queue not found: nosuch.high"]
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
        "queue": "inference.high", "state": "pending", "total": 3, "limit": 20, "offset": 0}
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
    ids = enqueue(admin, "simple", 25)

    default = listed(admin, "simple").json
    most = listed(admin, "simple", limit=1000).json

    assert ([t["id"] for t in default["tasks"]], default["total"]) == (ids[:20], 25)
    assert ([t["id"] for t in most["tasks"]], most["limit"]) == (ids, 1000)


def test_task_list_with_a_bad_parameter_is_400(admin, r):
    enqueue(admin, "simple", 1)

    for query in ("limit=0", "limit=1001", "limit=abc", "limit=-1", "limit=1.5", "offset=-1", "offset=abc",
                  "state=paused", "state=PENDING", "state=%00", "state=%C3%A9", "limit=99999999999999999999999"):
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
    assert errors_of(result) == ["task not found: " + task_id]


def test_task_details_of_an_unknown_or_odd_id_are_404(admin, r):
    enqueue(admin, "inference.high")

    for task_id in ("nosuch", "%00", "x" * 5000, "%E2%9C%93", "a.b", "*", "..", "%FF"):
        result = admin.simulate_get("/api/cli/queues/inference.high/tasks/" + task_id, headers=ADMIN)

        assert result.status_code == 404, task_id
        errors_of(result)


# --- cancel -----------------------------------------------------------------------------------


def assert_canceled(r, queue: str, task_id: str, before: dict) -> None:
    traces = task_traces(r, queue, task_id)
    h = traces["hash"]
    assert (h[b"state"], h[b"error_msg"], h[b"last_failed_at"]) == (b"archived", b"canceled", str(NOW).encode())
    assert b"pending_since" not in h
    assert h[b"msg"] == before["hash"][b"msg"]
    assert traces["archived"] == NOW + TTL_ARCHIVED
    assert not any(traces[k] for k in ("pending", "held", "active", "scheduled", "retry", "completed"))
    assert TTL_ARCHIVED - 5 <= r.ttl(keys.task(queue, task_id)) <= TTL_ARCHIVED
    assert traces["reverse"] == {b"queue": queue.encode()}
    assert TTL_ARCHIVED - 5 <= r.ttl(keys.task_queue(task_id)) <= TTL_ARCHIVED


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
    pubsub = redis_server.client().pubsub()
    pubsub.subscribe(keys.CANCEL_CHANNEL)
    wait_for(lambda: pubsub.get_message(timeout=1)["type"] == "subscribe", what="the subscription")

    result = admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    assert result.status_code == 202, result.text
    assert (result.json["state"], result.json["canceled"]) == ("active", False)
    assert "runqy-worker cannot interrupt" in result.json["message"]
    message = wait_for(lambda: pubsub.get_message(timeout=1), what="the cancel message")
    pubsub.close()
    assert (message["channel"], message["data"]) == (keys.CANCEL_CHANNEL.encode(), task_id.encode())
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


# --- auth --------------------------------------------------------------------------------------

ROUTES = [("POST", "/api/cli/tasks"), ("GET", "/api/cli/queues/simple/tasks"),
          ("GET", "/api/cli/queues/simple/tasks/{id}"), ("DELETE", "/api/cli/tasks/{id}"),
          ("DELETE", "/api/cli/queues/simple/tasks/{id}")]


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
        result = admin.simulate_request(method, path, headers=ADMIN)
        assert result.status_code == 405, (method, path)
        errors_of(result)


def test_canceled_task_reads_as_archived_with_last_err_canceled_through_the_seed_route(admin, r):
    (task_id,) = enqueue(admin, "simple")
    admin.simulate_delete("/api/cli/tasks/" + task_id, headers=ADMIN)

    info = admin.simulate_get("/queue/%s/simple" % task_id, headers=ADMIN).json["info"]

    assert (info["state"], info["last_err"], info["last_failed_at"]) == ("archived", "canceled", rfc3339(NOW))
