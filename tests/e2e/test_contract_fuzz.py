"""Contract fuzzing: generated requests against a live gunicorn must get documented answers.

Every operation of openapi.yaml is called with requests generated from the
document itself (valid and invalid bodies and parameters, odd unicode, huge
values), authenticated with the admin key. Each answer must not be a 5xx and
must have a status code, a content type and a body that the document lists for
that operation. The generator never puts an encoded '/' or an over-long value
into a path segment, nor the literal words of neighbouring routes, so a table
of such segments is sent to every operation with path parameters as well. Nor
does it write bodies that are not strict JSON (NaN, Infinity, numbers beyond a
double or beyond Python's digit limit) or a broken chunked coding: those are
sent to every operation with a body, and must get a 400 that writes nothing.

With ``-s`` the number of requests sent is printed at the end.
"""

import base64
import json
from collections import Counter

import pytest
import redis
import requests
import schemathesis
import yaml
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from runqy import keys
from tests.conftest import ADMIN, ROOT, Gunicorn, raw_post, served_env, snapshot, strict_json

pytestmark = pytest.mark.e2e

DOCUMENT = yaml.safe_load((ROOT / "openapi.yaml").read_text())
#: A fixed 32-byte vault master key, so that the vault routes answer.
VAULT_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
#: Generated cases per operation and phase: enough to reach the odd corners
#: while the whole file stays within about a minute on two cores.
MAX_EXAMPLES = 30
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TIMEOUT = 15

# the ids and names the document's examples use, seeded so that their 200 answers are checked too
TASK_ID = "0b0a6f8e-5b43-4c36-9f0e-2a4d3d0e9a11"
DONE_ID = "report-2026-01-05"
WORKER_ID = "gpu-7:4242"

#: Path segments as they go on the wire (already percent-encoded where it matters).
HOSTILE_SEGMENTS = (
    "a%2Fb",                # an encoded slash
    "simple%2Ftasks",       # an encoded slash that spells a neighbouring route
    "x%2F%21",
    "%2F",
    "%2e%2e", "%2e",        # dot segments, encoded so that the client does not resolve them
    "%25", "%25zz", "%00", "%FF%FE", "%20", "a%3Fb", "a%23b", "%0D%0A",
    "%C3%A9%E2%80%AE%F0%9F%92%A9",
    "add", "add-batch", "reload", "pause", "tasks", "entries",  # literal words of neighbouring routes
    "x" * 9000,             # over the request line limit
)

schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml")
# Credentials are not generated: every case carries the admin key (below), so
# that the fuzzer reaches the handlers instead of stopping at 401.
schema.config.generation.update(max_examples=MAX_EXAMPLES, no_shrink=True, database="none",
                                with_security_parameters=False)
schema.config.update(request_timeout=TIMEOUT)


class RequestCounter:
    """Counts every request sent to the server, through one shared session."""

    def __init__(self) -> None:
        self.count = 0
        self.generated = 0
        self.by_status: Counter[int] = Counter()
        self.session = requests.Session()
        self.session.hooks["response"].append(self._seen)

    def _seen(self, response: requests.Response, *args, **kwargs) -> None:
        self.count += 1
        self.by_status[response.status_code] += 1

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        return self.session.request(method, url, headers=ADMIN, timeout=TIMEOUT, **kwargs)


def seed(url: str, client: redis.Redis) -> None:
    """A vault with an entry, a pending and a completed task, and a worker heartbeat with logs."""
    session = requests.Session()
    session.headers.update(ADMIN)
    res = session.post(url + "/api/vaults", json={"name": "prod", "description": "production secrets"})
    assert res.status_code == 201, res.text
    res = session.post(url + "/api/vaults/prod/entries",
                       json={"key": "OPENAI_API_KEY", "value": "sk-live-0123456789yz"})
    assert res.status_code == 201, res.text
    for task_id in (TASK_ID, DONE_ID):
        res = session.post(url + "/queue/add", json={"queue": "inference.high", "task_id": task_id,
                                                      "data": {"prompt": "Hello world"}})
        assert res.status_code == 200, res.text
    # DONE_ID as the worker leaves a completed task
    queue = "inference.high"
    client.lrem(keys.pending(queue), 0, DONE_ID)
    client.zadd(keys.completed(queue), {DONE_ID: 1_900_000_000})
    result = json.dumps({"image_url": "https://cdn.example.com/x.png"})
    client.hset(keys.task(queue, DONE_ID), mapping={"state": "completed", "completed_at": 1_767_607_207,
                                                   "result": result})
    client.hset(keys.worker(WORKER_ID), mapping={
        "worker_id": WORKER_ID, "status": "running", "healthy": "1", "queues": "map[inference.high:10 inference.low:2]",
        "concurrency": "2", "started_at": "1767607200", "last_beat": "1767607230",
        "metrics": json.dumps({"tasks_done": 3})})
    client.rpush(keys.worker_logs(WORKER_ID), json.dumps({"level": "info", "msg": "ready"}), "plain text line")


@pytest.fixture(scope="module")
def counter():
    counter = RequestCounter()
    yield counter
    print("\ncontract fuzzing: %d requests (%d generated cases), by status %s" % (
        counter.count, counter.generated, dict(sorted(counter.by_status.items()))))


@pytest.fixture(scope="module")
def live(redis_server):
    """A gunicorn-served runqy with vaults on, the example configs loaded and the examples seeded."""
    if redis_server.process is None:
        redis_server.start()
    client = redis_server.client()
    client.flushdb()
    process = Gunicorn(served_env(redis_server, RUNQY_VAULT_MASTER_KEY=VAULT_MASTER_KEY))
    try:
        seed(process.url, client)
        yield process
    finally:
        output = process.output()
        process.stop()
        client.flushdb()
    assert "Traceback" not in output, output[-4000:]


@pytest.fixture
def fresh_configs(live, counter):
    """The example configs as the YAML files say, whatever the fuzzing did to them."""
    assert counter.request("POST", live.url + "/api/cli/configs/reload").status_code == 200


def test_seeded_examples_are_readable(live, counter):
    res = counter.request("GET", live.url + "/queue/" + DONE_ID)
    assert res.status_code == 200
    assert res.json()["info"]["result"] == {"image_url": "https://cdn.example.com/x.png"}
    assert counter.request("GET", live.url + "/api/cli/workers/" + WORKER_ID).json()["logs"] == [
        {"level": "info", "msg": "ready"}, "plain text line"]


def _waits(query: dict | None) -> bool:
    """True for a ``wait`` the server accepts: it would hold the case for up to a minute."""
    value = str((query or {}).get("wait", ""))
    return value == "true" or (value.isdigit() and 1 <= int(value) <= 60)


@schema.parametrize()
def test_every_generated_request_gets_a_documented_answer(case, live, counter):
    counter.generated += 1
    if _waits(case.query):  # waiting is tested in tests/test_waiting.py; its refusals are fuzzed here
        del case.query["wait"]
    case.call_and_validate(base_url=live.url, session=counter.session, headers=dict(ADMIN), checks=CHECKS)


# --- what the generator does not reach -------------------------------------------------------


def _parameters(operation: dict) -> list[dict]:
    found = []
    for parameter in operation.get("parameters", []):
        if "$ref" in parameter:
            parameter = DOCUMENT["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
        found.append(parameter)
    return found


def _body_example(operation: dict):
    body = operation.get("requestBody")
    if body is None:
        return None
    if "$ref" in body:
        body = DOCUMENT["components"]["requestBodies"][body["$ref"].rsplit("/", 1)[1]]
    media = body["content"]["application/json"]
    return media["example"] if "example" in media else next(iter(media["examples"].values()))["value"]


PATH_OPERATIONS = [(path, method) for path, item in DOCUMENT["paths"].items() for method in item
                   if "{" in path and method in ("get", "post", "delete")]


@pytest.mark.parametrize("path, method", PATH_OPERATIONS, ids=["%s %s" % (m.upper(), p) for p, m in PATH_OPERATIONS])
def test_odd_path_segments_get_documented_answers(live, counter, fresh_configs, path, method):
    """Each path parameter in turn gets each odd segment; the others keep their examples."""
    operation = DOCUMENT["paths"][path][method]
    examples = {p["name"]: p["example"] for p in _parameters(operation) if p["in"] == "path"}
    body = _body_example(operation)
    api_operation = schema[path][method.upper()]
    wrong = []
    for name in examples:
        for segment in HOSTILE_SEGMENTS:
            values = {**examples, name: segment}
            concrete = path
            for key, value in values.items():
                concrete = concrete.replace("{%s}" % key, str(value))
            if concrete != path and concrete in DOCUMENT["paths"]:
                continue  # e.g. /queue/add: that is another route, whose answers are checked there
            kwargs = {"path_parameters": values}
            if body is not None:
                kwargs.update(body=body, media_type="application/json")
            case = api_operation.Case(**kwargs)
            response = case.call(base_url=live.url, session=counter.session, headers=dict(ADMIN))
            try:
                case.validate_response(response, checks=CHECKS)
            except (Failure, FailureGroup) as exc:
                wrong.append("%s %s -> %d %s %s: %s" % (
                    method.upper(), _short(case.formatted_path), response.status_code,
                    (response.headers.get("content-type") or ["-"])[0], _short(response.text), _problems(exc)))
    if wrong:
        pytest.fail("%d wrong answers:\n%s" % (len(wrong), "\n".join(wrong)), pytrace=False)


def _short(text: str, size: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[:size] + "..."


def _problems(exc: BaseException) -> str:
    failures = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
    return "; ".join("%s (%s)" % (f.title, _short(f.message, 160)) for f in failures)


@pytest.mark.parametrize("word", ["add", "add-batch"])
def test_a_task_id_enqueue_accepts_is_readable_at_its_status_route(live, counter, fresh_configs, word):
    """A client-chosen id may be any name-like text, also a literal word after /queue/.

    Either enqueue refuses such an id, or GET /queue/{task_id} must answer it.
    """
    res = counter.request("POST", live.url + "/queue/add", json={"queue": "simple", "task_id": word, "data": 1})
    if res.status_code != 400:
        assert res.status_code in (200, 409), res.text
        status = counter.request("GET", live.url + "/queue/" + word)
        assert status.status_code == 200, "GET /queue/%s answered %d %s" % (word, status.status_code, status.text)
        assert status.json()["info"]["id"] == word


def test_a_config_name_create_accepts_can_be_deleted(live, counter, fresh_configs):
    """A config may be named like the literal /api/cli/configs/reload; then DELETE must reach it."""
    config = {"name": "reload", "deployment": {"git_url": "https://github.com/example/w.git", "startup_cmd": "run"}}
    res = counter.request("POST", live.url + "/api/cli/configs?force=true", json=config)
    if res.status_code != 400:
        assert res.status_code in (200, 201), res.text
        deleted = counter.request("DELETE", live.url + "/api/cli/configs/reload")
        assert deleted.status_code == 200, "DELETE /api/cli/configs/reload answered %d %s" % (
            deleted.status_code, deleted.text)


@pytest.mark.parametrize("state", ["pending", "active", "scheduled", "retry", "archived", "completed"])
def test_a_huge_offset_is_an_empty_page_or_a_400_never_a_5xx(live, counter, fresh_configs, state):
    for offset in (2**63 - 1, 10**20):
        res = counter.request("GET", live.url + "/api/cli/queues/simple/tasks",
                              params={"state": state, "offset": offset})
        assert res.status_code in (200, 400), "offset %d: %d %s" % (offset, res.status_code, res.text)
        if res.status_code == 200:
            assert res.json()["tasks"] == []


def _numbers(value, where="$"):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, "%s.%s" % (where, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, "%s[%d]" % (where, i))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield where, value


def test_integers_sent_as_whole_floats_are_answered_as_integers(live, counter, fresh_configs):
    """JSON Schema's "integer" admits 2.0; runqy-worker's Go decoder does not accept 2.0 for an int."""
    config = {"name": "floaty", "priority": 2.0, "timeout": 60.0, "max_retry": 1.0,
              "sub_queues": [{"name": "a", "priority": 3.0}],
              "deployment": {"git_url": "https://github.com/example/w.git", "startup_cmd": "run",
                             "startup_timeout_secs": 30.0}}
    assert counter.request("POST", live.url + "/api/cli/configs?force=true", json=config).status_code in (200, 201)
    answers = {
        "register": counter.request("POST", live.url + "/worker/register", json={"queue": "floaty"}).json(),
        "enqueue": counter.request("POST", live.url + "/queue/add",
                                   json={"queue": "floaty.a", "timeout": 5.0, "max_retry": 2.0, "data": 1}).json(),
        "configs": [c for c in counter.request("GET", live.url + "/api/cli/configs").json()["configs"]
                    if c["name"] == "floaty"],
    }
    floats = ["%s %s = %r" % (name, where, value) for name, answer in answers.items()
              for where, value in _numbers(answer) if isinstance(value, float)]
    if floats:
        pytest.fail("whole floats in answers:\n" + "\n".join(floats), pytrace=False)


# --- bodies the generator does not write --------------------------------------------------------

BODY_OPERATIONS = [path for path, item in DOCUMENT["paths"].items() if "requestBody" in item.get("post", {})]
#: Numbers strict JSON parsers refuse (or Python will not convert), sent inside each operation's example body.
HOSTILE_NUMBERS = {"4301 digits": "1" * 4301, "NaN": "NaN", "Infinity": "Infinity", "-Infinity": "-Infinity",
                   "1e400": "1e400"}


@pytest.fixture
def example_vault(live, counter):
    """The vault the document's examples name, whatever the fuzzing did to it."""
    res = counter.request("POST", live.url + "/api/vaults", json={"name": "prod"})
    assert res.status_code in (201, 409), res.text


def _example_request(path: str) -> tuple[str, str]:
    """The path with its parameters' examples, and the example body as JSON text."""
    operation = DOCUMENT["paths"][path]["post"]
    for parameter in _parameters(operation):
        if parameter["in"] == "path":
            path = path.replace("{%s}" % parameter["name"], parameter["example"])
    return path, json.dumps(_body_example(operation))


@pytest.mark.parametrize("number", HOSTILE_NUMBERS.values(), ids=HOSTILE_NUMBERS)
@pytest.mark.parametrize("path", BODY_OPERATIONS)
def test_a_body_holding_nan_infinity_or_an_oversized_number_gets_a_documented_400_and_writes_nothing(
        live, counter, fresh_configs, example_vault, redis_server, path, number):
    client = redis_server.client()
    concrete, example = _example_request(path)
    body = '{"hostile": [%s], %s' % (number, example[1:])
    before = snapshot(client)
    response = counter.session.post(live.url + concrete, data=body.encode(), timeout=TIMEOUT,
                                    headers={**ADMIN, "Content-Type": "application/json"})
    assert response.status_code == 400, response.text[:300]
    schema[path]["POST"].validate_response(response)
    assert snapshot(client) == before


@pytest.mark.parametrize("path", BODY_OPERATIONS)
def test_a_body_with_a_chunk_size_that_is_not_hex_gets_a_json_400_and_writes_nothing(
        live, fresh_configs, example_vault, redis_server, path):
    client = redis_server.client()
    concrete, example = _example_request(path)
    before = snapshot(client)
    status, content_type, answer = raw_post(live.port, concrete, "Transfer-Encoding: chunked\r\n",
                                            b"zz\r\n" + example.encode() + b"\r\n0\r\n\r\n")
    assert (status, content_type.split(";")[0]) == (400, "application/json"), answer
    assert "400" in DOCUMENT["paths"][path]["post"]["responses"]
    errors = json.loads(answer)
    assert list(errors) == ["errors"] and errors["errors"], errors
    assert snapshot(client) == before


def test_a_result_a_worker_wrote_with_nan_reads_back_as_strict_json(live, counter, fresh_configs, redis_server):
    """A worker may write any text as a result; answers must parse with JSON.parse all the same."""
    queue, task_id = "inference.high", "nan-result"
    added = counter.request("POST", live.url + "/queue/add", json={"queue": queue, "task_id": task_id, "data": 1})
    assert added.status_code == 200, added.text
    redis_server.client().hset(keys.task(queue, task_id), "result", '{"score": NaN, "range": [-Infinity, 1e400]}')
    admin_path = "/api/cli/queues/%s/tasks/%s" % (queue, task_id)
    try:
        status = counter.request("GET", live.url + "/queue/" + task_id)
        admin = counter.request("GET", live.url + admin_path)
    finally:
        counter.request("DELETE", live.url + admin_path)

    schema["/queue/{task_id}"]["GET"].validate_response(status)
    schema["/api/cli/queues/{queue}/tasks/{task_id}"]["GET"].validate_response(admin)
    assert strict_json(status.text)["info"]["result"] == {"score": None, "range": [None, None]}
    assert strict_json(admin.text)["task"]["result"] == {"score": None, "range": [None, None]}
