"""Requests the app refuses before any resource runs, and JSON no strict parser would take
(runqy/app.py, runqy/jsontext.py, runqy/validation.py): malformed, empty, non-object, non-UTF-8,
oversized and too deeply nested bodies, fields of the wrong type, unknown routes and methods,
NaN, Infinity and numbers too large, in and out.

Every refused call is followed by a check that Redis holds exactly what it held before.
"""

import base64
import dataclasses
import json
import time

import falcon.testing
import pytest

from runqy import keys
from runqy.app import create_app
from tests.conftest import ADMIN, snapshot, strict_json
from tests.helpers import add, batch, enqueue, errors_of, stored


def post_raw(client, path, body: bytes | str, headers=ADMIN):
    return client.simulate_post(path, body=body, headers={**headers, "Content-Type": "application/json"})


def read(client, path: str):
    """An admin GET of ``path``, its body parsed the way strict clients parse JSON."""
    return strict_json(client.simulate_get(path, headers=ADMIN).text)


# --- bad input -------------------------------------------------------------------------------------


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
def test_unknown_route_is_a_json_404_that_points_at_the_list_of_routes(client, r, path):
    res = client.simulate_get(path, headers=ADMIN)
    assert res.status_code == 404
    assert errors_of(res) == ["no route for GET %s: the routes are listed at /swagger/index.html "
                              "(and in /openapi.yaml)" % path]


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

    info = read(client, "/queue/" + task_id)["info"]
    assert info["payload"] == [int("1" * 4300), -int("9" * 4300), 1.7976931348623157e308, 5e-324, -0.0, 1.5, 0.1]


def test_stored_nan_and_infinity_are_answered_as_null(client, r):
    """A worker (or an asynq client of another language) may write them straight into Redis."""
    (task_id,) = enqueue(client, "simple")
    r.hset(keys.task("simple.default", task_id), mapping={
        "state": "completed", "result": '{"x": NaN, "y": [Infinity, -Infinity, 1e400, -1e400], "ok": 1.5}'})
    r.hset(keys.worker("w-1"), mapping={"worker_id": "w-1", "status": "running", "last_beat": int(time.time()),
                                        "metrics": '{"load": NaN}'})
    r.rpush(keys.worker_logs("w-1"), '{"level": "info", "took": Infinity}')
    expected = {"x": None, "y": [None, None, None, None], "ok": 1.5}

    task = read(client, "/queue/" + task_id)["info"]
    listed = read(client, "/api/cli/queues/simple/tasks?state=pending")["tasks"]
    one = read(client, "/api/cli/queues/simple/tasks/" + task_id)["task"]
    workers = read(client, "/api/cli/workers")["workers"]
    worker = read(client, "/api/cli/workers/w-1")

    assert task["result"] == expected and one["result"] == expected
    assert [t["result"] for t in listed] == [expected]
    assert [w["metrics"] for w in workers] == [{"load": None}]
    assert worker["metrics"] == {"load": None} and worker["logs"] == [{"level": "info", "took": None}]
