"""The existing clients against a real gunicorn: the Python SDK from PyPI (``runqy-python``,
docs/clients.md §1) with its own ``RunqyClient``, the example task of ``examples/hello`` run by
the SDK's ``run()`` under the worker's stdio protocol, and the seed's curl examples verbatim."""

import json
import subprocess
import sys

import pytest
import requests
from runqy_python import AuthenticationError, RunqyClient, RunqyError, TaskNotFoundError

from runqy import keys, protobuf
from runqy.queue_names import full_queue_name
from tests.conftest import ADMIN_KEY, CLIENT_KEY, ROOT, WORKER_KEY
from tests.worker_sim import SimWorker, StdioChild, register

pytestmark = pytest.mark.e2e
#: The example configs: the quick-start's "hello" queue and the seed's queues (tests/e2e/conftest.py).
SERVED_CONFIG_DIR = ROOT / "config"


@pytest.fixture
def sdk(served) -> RunqyClient:
    return RunqyClient(served.url, CLIENT_KEY)


def error_body(exc: RunqyError) -> dict:
    """The JSON body the SDK puts after ``: `` in its message."""
    return json.loads(str(exc).split(": ", 1)[1])


def task_keys(r) -> list[bytes]:
    return sorted(r.scan_iter("asynq:*t:*"))


# --- enqueue and get_task ------------------------------------------------------------


def test_sdk_enqueue_writes_the_task_with_the_sdk_timeout_and_reads_id_queue_state(sdk, r):
    task = sdk.enqueue("inference.high", {"prompt": "Hello world", "width": 1024})

    assert (task.queue, task.state) == ("inference.high", "pending")
    assert r.lrange(keys.pending("inference.high"), 0, -1) == [task.task_id.encode()]
    h = r.hgetall(keys.task("inference.high", task.task_id))
    msg = protobuf.decode(h[b"msg"])
    assert (msg.id, msg.queue, msg.timeout, json.loads(msg.payload)) == (
        task.task_id, "inference.high", 300, {"prompt": "Hello world", "width": 1024})
    assert (h[b"state"], h[b"active_timeout"]) == (b"pending", b"300")
    assert r.hget(keys.task_queue(task.task_id), "queue") == b"inference.high"


def test_sdk_enqueue_to_a_parent_name_uses_its_default_sub_queue(sdk, r):
    task = sdk.enqueue("simple", "just a string", timeout=30)

    assert task.queue == "simple.default"
    assert r.lrange(keys.pending("simple.default"), 0, -1) == [task.task_id.encode()]
    assert sdk.get_task(task.task_id).payload == "just a string"


def test_sdk_get_task_reads_a_pending_task_back(sdk):
    task = sdk.enqueue("inference.low", {"n": [1, 2, 3]})

    got = sdk.get_task(task.task_id)

    assert (got.task_id, got.queue, got.state, got.error, got.result, got.payload) == (
        task.task_id, "inference.low", "pending", None, None, {"n": [1, 2, 3]})


@pytest.mark.parametrize("stored, expected", [(b'{"text": "hi"}', {"text": "hi"}), (b'"hello"', "hello"),
                                              (b"1234", 1234), (b"null", None)])
def test_sdk_get_task_reads_the_result_a_worker_stored(sdk, r, stored, expected):
    task = sdk.enqueue("inference.high", {})
    # what runqy-worker writes on success (docs/worker-protocol.md §2.9)
    r.hset(keys.task("inference.high", task.task_id),
           mapping={"state": "completed", "result": stored, "completed_at": 1760000000})

    got = sdk.get_task(task.task_id)
    assert (got.state, got.result, got.error) == ("completed", expected, None)


def test_sdk_get_task_reads_the_error_of_an_archived_task(sdk, r):
    task = sdk.enqueue("inference.high", {})
    r.hset(keys.task("inference.high", task.task_id),
           mapping={"state": "archived", "error_msg": "permanent failure: boom", "last_failed_at": 1760000000})

    got = sdk.get_task(task.task_id)
    assert (got.state, got.error, got.result) == ("archived", "permanent failure: boom", None)


def test_sdk_enqueue_batch_reads_enqueued_failed_and_task_ids_in_job_order(sdk, r):
    batch = sdk.enqueue_batch("inference.low", [{"n": 1}, {"n": 2}, "three"], timeout=60)

    assert (batch.enqueued, batch.failed, len(batch.task_ids), batch.errors) == (3, 0, 3, [])
    # LPUSH onto pending: the list holds the ids newest first
    assert r.lrange(keys.pending("inference.low"), 0, -1) == [i.encode() for i in reversed(batch.task_ids)]
    assert [sdk.get_task(i).payload for i in batch.task_ids] == [{"n": 1}, {"n": 2}, "three"]
    assert {protobuf.decode(r.hget(keys.task("inference.low", i), "msg")).timeout for i in batch.task_ids} == {60}


# --- the SDK's status handling -------------------------------------------------------------


def test_sdk_with_a_bad_key_gets_401_as_authentication_error_and_nothing_is_written(served, r):
    bad = RunqyClient(served.url, "not-a-key")
    with pytest.raises(AuthenticationError) as enqueue_error:
        bad.enqueue("inference.high", {"x": 1})
    with pytest.raises(AuthenticationError):
        bad.get_task("00000000-0000-4000-8000-000000000000")

    assert error_body(enqueue_error.value) == {"errors": ["invalid API key"]}
    assert r.llen(keys.pending("inference.high")) == 0 and task_keys(r) == []


@pytest.mark.parametrize("queue", ["nope", "inference", "inference.medium", "inference_default"])
def test_sdk_enqueue_to_an_unknown_queue_is_404_as_task_not_found(sdk, r, queue):
    full = full_queue_name(queue)
    with pytest.raises(TaskNotFoundError) as error:
        sdk.enqueue(queue, {"x": 1})

    assert error_body(error.value)["errors"][0].startswith("queue not found: " + full)
    assert task_keys(r) == [] and r.exists(keys.pending(full)) == 0


def test_sdk_get_of_an_unknown_task_is_404_as_task_not_found(sdk):
    with pytest.raises(TaskNotFoundError) as error:
        sdk.get_task("00000000-0000-4000-8000-000000000000")

    assert error_body(error.value)["errors"][0].startswith("task not found: 00000000-0000-4000-8000-000000000000")


def test_sdk_enqueue_with_an_invalid_timeout_is_400_with_a_json_body_naming_the_field(sdk, r):
    with pytest.raises(RunqyError) as error:
        sdk.enqueue("inference.high", {"x": 1}, timeout=0)

    assert str(error.value).startswith("HTTP 400: ")
    (message,) = error_body(error.value)["errors"]
    assert "timeout" in message
    assert task_keys(r) == []


def test_sdk_with_the_worker_key_is_403_with_a_json_body(served, r):
    with pytest.raises(RunqyError) as error:
        RunqyClient(served.url, WORKER_KEY).enqueue("inference.high", {"x": 1})

    assert str(error.value).startswith("HTTP 403: ")
    assert len(error_body(error.value)["errors"]) == 1
    assert task_keys(r) == []


def test_sdk_on_a_server_that_is_not_there_raises_runqy_error():
    with pytest.raises(RunqyError) as error:
        RunqyClient("http://127.0.0.1:9", CLIENT_KEY, timeout=5).enqueue("inference.high", {"x": 1})
    assert str(error.value).startswith("Connection error")


# --- examples/hello, run by the SDK's run() as runqy-worker runs it ------------------------


@pytest.fixture
def hello_worker(served):
    """The in-test worker on the "hello" queue, whose task process is examples/hello/main.py
    started as runqy-worker starts it (long-running: once, then a task line at a time)."""
    registration = register(served.url, WORKER_KEY, "hello")
    deployment = registration["deployment"]
    child = StdioChild([sys.executable, *deployment["startup_cmd"].split()[1:]],
                       cwd=str(ROOT / deployment["code_path"]))
    worker = SimWorker(registration, child).start()
    yield worker
    worker.stop()
    child.stop()
    assert worker.errors == []


def waited(sdk: RunqyClient, task_id: str) -> str:
    """The state of a task once it has run: ``GET /queue/{id}?wait=`` as the quick-start shows it."""
    answer = requests.get("%s/queue/%s" % (sdk.server_url, task_id), params={"wait": 10}, timeout=15,
                          headers={"Authorization": "Bearer " + sdk.api_key})
    assert answer.status_code == 200, answer.text
    return answer.json()["info"]["state"]


def test_the_hello_example_greets_and_the_sdk_reads_the_result(sdk, hello_worker):
    task = sdk.enqueue("hello", {"name": "Ada"})

    assert waited(sdk, task.task_id) == "completed"
    got = sdk.get_task(task.task_id)
    assert (got.queue, got.state, got.result, got.error) == ("hello.default", "completed",
                                                            {"message": "Hello, Ada!"}, None)


def test_the_hello_example_fails_a_task_without_a_name_and_the_sdk_reads_its_message(sdk, hello_worker):
    # the SDK cannot set max_retry; with retries left a failed task waits in retry with no error yet
    # (docs/worker-protocol.md §2.9), so this one is enqueued with none
    answer = requests.post(sdk.server_url + "/queue/add", timeout=5, headers={"Authorization": "Bearer " + CLIENT_KEY},
                           json={"queue": "hello", "data": {"nom": "Ada"}, "max_retry": 0})
    task_id = answer.json()["info"]["id"]

    assert waited(sdk, task_id) == "archived"
    got = sdk.get_task(task_id)
    assert got.error.startswith("permanent failure: Traceback")  # the SDK sends the whole traceback
    assert 'ValueError: the payload needs a "name" string' in got.error


# --- the seed's examples, verbatim, with curl ------------------------------------------------


def curl(served, method: str, path: str, key: str, body: str | None = None) -> tuple[int, str, dict]:
    """``curl -X METHOD URL -H 'Authorization: Bearer KEY' -H 'Content-Type: application/json' [-d BODY]``."""
    args = ["curl", "-sS", "-X", method, served.url + path, "-H", "Authorization: Bearer " + key,
            "-H", "Content-Type: application/json", "-w", "\n%{http_code} %{content_type}"]
    if body is not None:
        args += ["-d", body]
    out = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout
    text, _, trailer = out.rpartition("\n")
    code, content_type = trailer.split(" ", 1)
    assert content_type.startswith("application/json"), content_type
    return int(code), content_type, json.loads(text)


SEED_ENQUEUE = """{
  "queue": "%s",
  "timeout": 300,
  "data": {
    "prompt": "Hello world",
    "width": 1024
  }
}"""


def test_seed_enqueue_example_with_curl_answers_info_id_queue_state(served, r):
    code, _, body = curl(served, "POST", "/queue/add", ADMIN_KEY, SEED_ENQUEUE % "inference.high")

    assert code == 200
    info = body["info"]
    assert (info["queue"], info["state"]) == ("inference.high", "pending")
    msg = protobuf.decode(r.hget(keys.task("inference.high", info["id"]), "msg"))
    assert json.loads(msg.payload) == {"prompt": "Hello world", "width": 1024}


def test_seed_enqueue_example_verbatim_enqueues_onto_its_inference_high_queue(served, r):
    code, _, body = curl(served, "POST", "/queue/add", ADMIN_KEY, SEED_ENQUEUE % "inference_high")

    assert code == 200
    assert (body["info"]["queue"], body["info"]["state"]) == ("inference_high.default", "pending")
    assert r.lrange(keys.pending("inference_high.default"), 0, -1) == [body["info"]["id"].encode()]


def test_seed_status_form_with_queue_name_reads_the_task_and_its_result(served, r):
    _, _, body = curl(served, "POST", "/queue/add", CLIENT_KEY, SEED_ENQUEUE % "simple")
    task_id = body["info"]["id"]
    r.hset(keys.task("simple.default", task_id), mapping={"state": "completed", "result": '"done"'})

    for queue_name in ("simple.default", "simple"):  # a parent name means its .default
        code, _, got = curl(served, "GET", "/queue/%s/%s" % (task_id, queue_name), CLIENT_KEY)
        assert code == 200
        assert (got["info"]["id"], got["info"]["state"], got["info"]["result"]) == (task_id, "completed", "done")


def test_seed_status_form_with_another_queue_is_404_and_a_malformed_name_400(served):
    _, _, body = curl(served, "POST", "/queue/add", CLIENT_KEY, SEED_ENQUEUE % "simple")
    task_id = body["info"]["id"]

    assert curl(served, "GET", "/queue/%s/inference.high" % task_id, CLIENT_KEY)[0] == 404
    assert curl(served, "GET", "/queue/%s/unknown" % task_id, CLIENT_KEY)[0] == 404
    code, _, error = curl(served, "GET", "/queue/%s/bad..name" % task_id, CLIENT_KEY)
    assert code == 400 and len(error["errors"]) == 1


def test_seed_register_example_with_curl_answers_redis_queue_and_deployment(served, redis_server):
    code, _, body = curl(served, "POST", "/worker/register", WORKER_KEY,
                         '{\n  "worker_id": "worker-abc123",\n  "queue": "inference"\n}')

    assert code == 200
    assert body["redis"] == {"addr": "127.0.0.1:%d" % redis_server.port, "password": "", "db": 0, "use_tls": False}
    assert (body["queue"]["name"], body["queue"]["priority"], body["queue"]["mode"]) == ("inference", 5, "long_running")
    deployment = body["deployment"]
    assert (deployment["git_url"], deployment["branch"], deployment["startup_cmd"]) == (
        "https://github.com/example/inference-worker.git", "main", "python main.py")
    assert (deployment["startup_timeout_secs"], deployment["requirements_file"]) == (300, "requirements.txt")
