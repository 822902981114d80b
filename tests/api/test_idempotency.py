"""Idempotent enqueue: the Idempotency-Key header (runqy/resources/tasks.py, the enqueue script's
record), in the store, over HTTP, and under 32 identical requests at once."""

import concurrent.futures

import falcon.testing
import pytest
import requests

from runqy import defaults, keys
from runqy.app import create_app
from runqy.errors import IdempotencyKeyReused
from runqy.store import Idempotency, NewTask
from tests.conftest import ADMIN, CLIENT

Q = "simple.default"
RECORD = keys.idempotency("admin", "0" * 64)


@pytest.fixture
def api(settings, store):
    return falcon.testing.TestClient(create_app(settings, store=store))


def task_keys(r) -> list[bytes]:
    return sorted(k for k in r.keys("asynq:{%s}:t:*" % Q))


def test_the_first_call_records_its_answer_and_a_repeat_writes_nothing(store, r):
    first = store.tasks.enqueue(Q, [NewTask(b"1"), NewTask(b"2")], idempotency=Idempotency(RECORD, "fp"))
    assert not first[0].replayed
    assert r.hget(RECORD, "fingerprint") == b"fp"
    assert defaults.IDEMPOTENCY_TTL - 10 < r.ttl(RECORD) <= defaults.IDEMPOTENCY_TTL
    written = task_keys(r)

    again = store.tasks.enqueue(Q, [NewTask(b"1"), NewTask(b"2")], idempotency=Idempotency(RECORD, "fp"))

    assert [t.id for t in again] == [t.id for t in first] and all(t.replayed for t in again)
    assert [(t.state, t.max_retry, t.timeout) for t in again] == [(t.state, t.max_retry, t.timeout) for t in first]
    assert task_keys(r) == written and r.llen(keys.pending(Q)) == 2


def test_a_repeat_of_a_delayed_enqueue_answers_the_first_calls_time(store, r):
    (first,) = store.tasks.enqueue(Q, [NewTask(b"1")], process_at=2_000_000_030,
                                   idempotency=Idempotency(RECORD, "fp"))
    # the same body with "delay" some seconds later: the server computes a later time
    (again,) = store.tasks.enqueue(Q, [NewTask(b"1")], process_at=2_000_000_045,
                                   idempotency=Idempotency(RECORD, "fp"))
    assert (again.id, again.state, again.process_at, again.replayed) == (first.id, "scheduled", 2_000_000_030, True)
    assert r.zrange(keys.scheduled(Q), 0, -1, withscores=True) == [(first.id.encode(), 2_000_000_030)]


def test_the_same_key_with_another_request_is_refused_and_writes_nothing(store, r):
    store.tasks.enqueue(Q, [NewTask(b"1")], idempotency=Idempotency(RECORD, "fp"))
    with pytest.raises(IdempotencyKeyReused) as caught:
        store.tasks.enqueue(Q, [NewTask(b"2")], idempotency=Idempotency(RECORD, "other"))
    assert caught.value.status == 422
    assert r.llen(keys.pending(Q)) == 1


def test_a_refused_first_call_records_nothing(store, r):
    with pytest.raises(Exception):
        store.tasks.enqueue("nope.default", [NewTask(b"1")], idempotency=Idempotency(RECORD, "fp"))
    assert not r.exists(RECORD)


def test_over_http_a_repeat_gets_the_same_status_and_body_marked_replayed(api, r):
    headers = {**ADMIN, "Idempotency-Key": "order-42"}
    first = api.simulate_post("/queue/add", json={"queue": "simple", "data": {"n": 1}}, headers=headers)
    again = api.simulate_post("/queue/add", json={"data": {"n": 1}, "queue": "simple"}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == first.json
    assert first.headers.get("Idempotent-Replayed") is None and again.headers["Idempotent-Replayed"] == "true"
    assert r.llen(keys.pending(Q)) == 1

    other = api.simulate_post("/queue/add", json={"queue": "simple", "data": {"n": 2}}, headers=headers)
    assert other.status_code == 422
    assert other.json["errors"][0].startswith("Idempotency-Key was already used with a different request")
    batch = api.simulate_post("/queue/add-batch", json={"queue": "simple", "jobs": [{"n": 1}]}, headers=headers)
    assert batch.status_code == 422  # another route is another request


def test_keys_are_per_role_and_a_batch_replays_its_ids(api, r):
    body = {"queue": "simple", "jobs": [1, 2, 3]}
    admin = api.simulate_post("/queue/add-batch", json=body, headers={**ADMIN, "Idempotency-Key": "k"})
    client = api.simulate_post("/queue/add-batch", json=body, headers={**CLIENT, "Idempotency-Key": "k"})
    assert admin.json["task_ids"] != client.json["task_ids"]
    again = api.simulate_post("/queue/add-batch", json=body, headers={**CLIENT, "Idempotency-Key": "k"})
    assert again.json == client.json and again.headers["Idempotent-Replayed"] == "true"
    assert r.llen(keys.pending(Q)) == 6


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
def test_a_bad_idempotency_key_is_400(api, r, key):
    res = api.simulate_post("/queue/add", json={"queue": "simple", "data": 1},
                            headers={**ADMIN, "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert res.status_code == 400, res.text
    assert res.json["errors"] == ["Idempotency-Key: must be 1 to 255 printable ASCII characters"]
    assert r.llen(keys.pending(Q)) == 0


@pytest.mark.e2e
@pytest.mark.parametrize("extra, headers", [
    ({}, {"Idempotency-Key": "same-moment"}),
    ({"unique_for": 60}, {}),
])
def test_32_identical_requests_at_once_write_exactly_one_task(server, r, extra, headers):
    body = {"queue": "simple", "data": {"charge": 42}, **extra}

    def send(_: int) -> requests.Response:
        return requests.post(server.url + "/queue/add", json=body, headers={**ADMIN, **headers}, timeout=10)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(send, range(32)))

    assert r.llen(keys.pending(Q)) == 1
    (task_id,) = r.lrange(keys.pending(Q), 0, -1)
    if headers:  # every answer names the one task
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["info"]["id"] for a in answers} == {task_id.decode()}
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == 31
    else:  # one is written, the others are duplicates naming it
        assert sorted(a.status_code for a in answers) == [200] + [409] * 31
        assert all(task_id.decode() in a.json()["errors"][0] for a in answers if a.status_code == 409)
